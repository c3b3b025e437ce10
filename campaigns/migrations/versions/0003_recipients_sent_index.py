"""Index of recorded sends per campaign, for the rate of sending (status, watch, send --wait).

Partial (sent_at IS NOT NULL): loading a campaign writes no entry, a send adds one; the rate's
count reads only the entries of the last minutes.

Revision ID: 0003_sent_index
Revises: 0002
Create Date: 2026-11-26
"""

import sqlalchemy as sa
from alembic import op

revision = "0003_sent_index"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index(
        "ix_recipients_campaign_sent",
        "recipients",
        ["campaign_id", "sent_at"],
        postgresql_where=sa.text("sent_at IS NOT NULL"),
        sqlite_where=sa.text("sent_at IS NOT NULL"),
    )


def downgrade() -> None:
    op.drop_index("ix_recipients_campaign_sent", table_name="recipients")
