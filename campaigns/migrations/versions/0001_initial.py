"""Initial schema: campaigns, chunks, recipients, suppressions.

Revision ID: 0001
Revises:
Create Date: 2026-11-22
"""

import sqlalchemy as sa
from alembic import op

from campaigns.models import BigId, UTCDateTime

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "campaigns",
        sa.Column("id", BigId, primary_key=True, autoincrement=True),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("provider", sa.String(32), nullable=False),
        sa.Column("account", sa.String(64), nullable=False),
        sa.Column("sender", sa.String(64), nullable=False),
        sa.Column("message", sa.Text, nullable=False),
        sa.Column("personalised", sa.Boolean, nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("state_reason", sa.Text),
        sa.Column("on_unknown", sa.String(16), nullable=False),
        sa.Column("ref_prefix", sa.String(8), nullable=False),
        sa.Column("recipients", sa.Integer, nullable=False),
        sa.Column("rejected", sa.Integer, nullable=False),
        sa.Column("chunks", sa.Integer, nullable=False),
        sa.Column("parts", sa.Integer, nullable=False),
        sa.Column("source_file", sa.Text, nullable=False),
        sa.Column("rejects_file", sa.Text, nullable=False),
        sa.Column("columns", sa.Text, nullable=False),
        sa.Column("send_at", UTCDateTime),
        sa.Column("window", sa.String(16)),
        sa.Column("created_at", UTCDateTime, nullable=False),
        sa.Column("updated_at", UTCDateTime, nullable=False),
        sa.Column("started_at", UTCDateTime),
        sa.Column("finished_at", UTCDateTime),
    )
    op.create_index("ix_campaigns_state", "campaigns", ["state"])
    op.create_table(
        "chunks",
        sa.Column("id", BigId, primary_key=True, autoincrement=True),
        sa.Column("campaign_id", BigId, sa.ForeignKey("campaigns.id", ondelete="CASCADE"), nullable=False),
        sa.Column("seq", sa.Integer, nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("attempt", sa.Integer, nullable=False),
        sa.Column("size", sa.Integer, nullable=False),
        sa.Column("parts", sa.Integer, nullable=False),
        sa.Column("lease_until", UTCDateTime),
        sa.Column("next_attempt_at", UTCDateTime),
        sa.Column("sending_since", UTCDateTime),
        sa.Column("queued_at", UTCDateTime),
        sa.Column("last_error", sa.Text),
        sa.Column("updated_at", UTCDateTime, nullable=False),
    )
    op.create_index("ix_chunks_campaign_seq", "chunks", ["campaign_id", "seq"])
    op.create_index("ix_chunks_state_next", "chunks", ["state", "next_attempt_at"])
    op.create_table(
        "recipients",
        sa.Column("id", BigId, primary_key=True, autoincrement=True),
        sa.Column("campaign_id", BigId, nullable=False),  # no FK: see campaigns.models.Recipient
        sa.Column("chunk_id", BigId),
        sa.Column("row", sa.Integer, nullable=False),
        sa.Column("phone", sa.String(16), nullable=False),
        sa.Column("fields", sa.Text, nullable=False),
        sa.Column("text", sa.Text),
        sa.Column("parts", sa.Integer, nullable=False),
        sa.Column("state", sa.String(20), nullable=False),
        sa.Column("provider_message_id", sa.String(64)),
        sa.Column("provider_status", sa.String(32)),
        sa.Column("error", sa.Text),
        sa.Column("attempts", sa.Integer, nullable=False),
        sa.Column("polls", sa.Integer, nullable=False),
        sa.Column("sent_at", UTCDateTime),
        sa.Column("delivered_at", UTCDateTime),
        sa.Column("updated_at", UTCDateTime),
        sa.Column("next_poll_at", UTCDateTime),
    )
    op.create_index("ix_recipients_chunk", "recipients", ["chunk_id"])
    op.create_index("ix_recipients_campaign_state", "recipients", ["campaign_id", "state"])
    op.create_index(
        "ix_recipients_due_poll",
        "recipients",
        ["next_poll_at"],
        postgresql_where=sa.text("next_poll_at IS NOT NULL"),
        sqlite_where=sa.text("next_poll_at IS NOT NULL"),
    )
    op.create_index("ix_recipients_campaign_phone", "recipients", ["campaign_id", "phone"], unique=True)
    op.create_table(
        "suppressions",
        sa.Column("phone", sa.String(16), primary_key=True),
        sa.Column("reason", sa.Text, nullable=False),
        sa.Column("created_at", UTCDateTime, nullable=False),
    )


def downgrade() -> None:
    for table in ("suppressions", "recipients", "chunks", "campaigns"):
        op.drop_table(table)
