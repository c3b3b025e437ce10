"""Budget and cost (README, "Budget and cost"): the caps and what the claims committed.

campaigns: `budget_rial` and `max_parts` (the caps, NULL: none), `spent_rial` and `spent_parts` (what the
claims have committed so far, charged in the claim's transaction and given back when a chunk is refunded),
`estimated_rial` (the chunks' estimate at creation, NULL when no price was known).
chunks: `cost_rial`, the chunk's estimated rial (0 when no price was known).
recipients: `cost_rial`, what the provider reported the message cost (NULL: it did not say).

Campaigns stored before this revision have no cap and nothing spent: they send as before.

Revision ID: 0007_budget
Revises: 0006_test_campaigns
Create Date: 2026-11-29
"""

import sqlalchemy as sa
from alembic import op

revision = "0007_budget"
down_revision = "0006_test_campaigns"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("campaigns") as batch:
        batch.add_column(sa.Column("budget_rial", sa.BigInteger(), nullable=True))
        batch.add_column(sa.Column("max_parts", sa.BigInteger(), nullable=True))
        batch.add_column(sa.Column("spent_rial", sa.BigInteger(), nullable=False, server_default="0"))
        batch.add_column(sa.Column("spent_parts", sa.BigInteger(), nullable=False, server_default="0"))
        batch.add_column(sa.Column("estimated_rial", sa.BigInteger(), nullable=True))
    with op.batch_alter_table("chunks") as batch:
        batch.add_column(sa.Column("cost_rial", sa.BigInteger(), nullable=False, server_default="0"))
    with op.batch_alter_table("recipients") as batch:
        batch.add_column(sa.Column("cost_rial", sa.Float(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("recipients") as batch:
        batch.drop_column("cost_rial")
    with op.batch_alter_table("chunks") as batch:
        batch.drop_column("cost_rial")
    with op.batch_alter_table("campaigns") as batch:
        for name in ("estimated_rial", "spent_parts", "spent_rial", "max_parts", "budget_rial"):
            batch.drop_column(name)
