"""Test campaigns: `send --test-to` stores the previews sent to a few numbers as a small campaign marked
`test` (`send --test-to`), so that `list` and `summary` tell it from a real one and the preflight's
frequency cap does not count it.

Revision ID: 0006_test_campaigns
Revises: 0005_heartbeats
Create Date: 2026-11-29
"""

import sqlalchemy as sa
from alembic import op

revision = "0006_test_campaigns"
down_revision = "0005_heartbeats"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("campaigns") as batch:
        batch.add_column(sa.Column("test", sa.Boolean(), nullable=False, server_default=sa.false()))


def downgrade() -> None:
    with op.batch_alter_table("campaigns") as batch:
        batch.drop_column("test")
