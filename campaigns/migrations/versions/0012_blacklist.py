"""Money and memory: a campaign's `--type` (`campaign_type`), which the operator blacklist memory reads
(only promotional campaigns learn from their delivery reports and skip what they learnt), and the
route's price tables (`route_prices`), so that a chunk moved by failover is priced at the provider
that sends it.

Both columns are nullable: campaigns stored before this revision have no known type (they teach the
blacklist memory nothing) and no price tables (a moved chunk keeps its share of the first estimate).

Revision ID: 0012_blacklist
Revises: 0011_identity
Create Date: 2026-12-01
"""

import sqlalchemy as sa
from alembic import op

revision = "0012_blacklist"
down_revision = "0011_identity"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("campaigns") as batch:
        batch.add_column(sa.Column("campaign_type", sa.String(16), nullable=True))
        batch.add_column(sa.Column("route_prices", sa.Text(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("campaigns") as batch:
        batch.drop_column("route_prices")
        batch.drop_column("campaign_type")
