"""Failover routes (docs/architecture.md, "Failover through a route"): a campaign's ordered providers, a chunk's own provider/account/sender once
it was re-planned for another provider, and one circuit row per provider account (`account_health`).

All new columns are nullable: campaigns and chunks stored before this revision keep their campaign's
one provider.

Revision ID: 0009_routes
Revises: 0008_contacts
Create Date: 2026-11-29
"""

import sqlalchemy as sa
from alembic import op

from campaigns.models import UTCDateTime

revision = "0009_routes"
down_revision = "0008_contacts"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("campaigns") as batch:
        batch.add_column(sa.Column("route", sa.Text(), nullable=True))
    with op.batch_alter_table("chunks") as batch:
        batch.add_column(sa.Column("provider", sa.String(32), nullable=True))
        batch.add_column(sa.Column("account", sa.String(64), nullable=True))
        batch.add_column(sa.Column("sender", sa.String(64), nullable=True))
    op.create_table(
        "account_health",
        sa.Column("account", sa.String(64), primary_key=True),
        sa.Column("provider", sa.String(32), nullable=False),
        sa.Column("circuit", sa.String(16), nullable=False, server_default="closed"),
        sa.Column("failures", sa.Integer(), nullable=False, server_default="0"),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.Column("opened_at", UTCDateTime, nullable=True),
        sa.Column("probe_at", UTCDateTime, nullable=True),
        sa.Column("updated_at", UTCDateTime, nullable=False),
    )


def downgrade() -> None:
    op.drop_table("account_health")
    with op.batch_alter_table("chunks") as batch:
        batch.drop_column("sender")
        batch.drop_column("account")
        batch.drop_column("provider")
    with op.batch_alter_table("campaigns") as batch:
        batch.drop_column("route")
