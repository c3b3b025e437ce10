"""Heartbeats: which process (pid, host, role) sends, polls or serves which campaign, and when it was last seen.

Revision ID: 0005_heartbeats
Revises: 0003_sent_index (the lead chains it after 0004 when merging)
Create Date: 2026-11-29
"""

import sqlalchemy as sa
from alembic import op

from campaigns.models import BigId, UTCDateTime

revision = "0005_heartbeats"
down_revision = "0004_preflight"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "heartbeats",
        sa.Column("id", BigId, primary_key=True, autoincrement=True),
        sa.Column("pid", sa.Integer, nullable=False),
        sa.Column("host", sa.String(255), nullable=False),
        sa.Column("role", sa.String(16), nullable=False),
        sa.Column("campaign_id", BigId, nullable=True),
        sa.Column("started_at", UTCDateTime, nullable=False),
        sa.Column("seen_at", UTCDateTime, nullable=False),
    )
    op.create_index("ix_heartbeats_campaign_seen", "heartbeats", ["campaign_id", "seen_at"])


def downgrade() -> None:
    op.drop_index("ix_heartbeats_campaign_seen", table_name="heartbeats")
    op.drop_table("heartbeats")
