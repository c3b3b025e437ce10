"""Campaign fingerprint: sha256 of the normalised recipients and the text (campaigns.preflight.tally), so
that `send` can refuse the same list and text as a campaign that has not finished (the preflight's duplicate check).

Nullable: campaigns stored before this revision have none and are never taken for a duplicate.

Revision ID: 0004_preflight
Revises: 0003_sent_index
Create Date: 2026-11-29
"""

import sqlalchemy as sa
from alembic import op

revision = "0004_preflight"
down_revision = "0003_sent_index"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("campaigns") as batch:
        batch.add_column(sa.Column("fingerprint", sa.String(64), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("campaigns") as batch:
        batch.drop_column("fingerprint")
