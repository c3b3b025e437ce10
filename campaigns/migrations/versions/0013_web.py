"""The HTTP API's tables: webhook outbox (`webhook_deliveries`), idempotency keys, drafts and their
rows; a campaign's `callback_url` and the key that signs its webhooks.

New columns are nullable: campaigns stored before this revision have no webhook.

Revision ID: 0013_web
Revises: 0012_blacklist
Create Date: 2026-12-01
"""

import sqlalchemy as sa
from alembic import op

from campaigns.models import BigId, UTCDateTime

revision = "0013_web"
down_revision = "0012_blacklist"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("campaigns") as batch:
        batch.add_column(sa.Column("callback_url", sa.Text(), nullable=True))
        batch.add_column(sa.Column("callback_key_id", sa.BigInteger(), nullable=True))
    op.create_table(
        "webhook_deliveries",
        sa.Column("id", BigId, primary_key=True, autoincrement=True),
        sa.Column("campaign_id", BigId, nullable=False),
        sa.Column("event", sa.String(16), nullable=False),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.Column("url", sa.Text(), nullable=False),
        sa.Column("key_id", BigId, nullable=True),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False, server_default="0"),
        sa.Column("next_attempt_at", UTCDateTime, nullable=False),
        sa.Column("lease_until", UTCDateTime, nullable=True),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("created_at", UTCDateTime, nullable=False),
        sa.Column("finished_at", UTCDateTime, nullable=True),
    )
    op.create_index("ix_webhook_deliveries_due", "webhook_deliveries", ["status", "next_attempt_at"])
    op.create_index("ix_webhook_deliveries_campaign", "webhook_deliveries", ["campaign_id"])
    op.create_table(
        "idempotency_keys",
        sa.Column("id", BigId, primary_key=True, autoincrement=True),
        sa.Column("principal", sa.String(100), nullable=False),
        sa.Column("key", sa.String(200), nullable=False),
        sa.Column("request_hash", sa.String(64), nullable=False),
        sa.Column("status_code", sa.Integer(), nullable=True),
        sa.Column("response", sa.Text(), nullable=True),
        sa.Column("created_at", UTCDateTime, nullable=False),
        sa.UniqueConstraint("principal", "key", name="uq_idempotency_keys_key"),
    )
    op.create_table(
        "drafts",
        sa.Column("id", BigId, primary_key=True, autoincrement=True),
        sa.Column("principal", sa.String(100), nullable=False),
        sa.Column("request", sa.Text(), nullable=False),
        sa.Column("summary", sa.Text(), nullable=False),
        sa.Column("blocks", sa.Integer(), nullable=False, server_default="0"),
        sa.Column("created_at", UTCDateTime, nullable=False),
        sa.Column("expires_at", UTCDateTime, nullable=False),
        sa.Column("sent_at", UTCDateTime, nullable=True),
        sa.Column("campaign_id", BigId, nullable=True),
    )
    op.create_index("ix_drafts_expires", "drafts", ["expires_at"])
    op.create_table(
        "draft_blocks",
        sa.Column("id", BigId, primary_key=True, autoincrement=True),
        sa.Column("draft_id", BigId, nullable=False),
        sa.Column("seq", sa.Integer(), nullable=False),
        sa.Column("data", sa.LargeBinary(), nullable=False),
    )
    op.create_index("ix_draft_blocks_draft", "draft_blocks", ["draft_id", "seq"])


def downgrade() -> None:
    op.drop_table("draft_blocks")
    op.drop_table("drafts")
    op.drop_table("idempotency_keys")
    op.drop_table("webhook_deliveries")
    with op.batch_alter_table("campaigns") as batch:
        batch.drop_column("callback_key_id")
        batch.drop_column("callback_url")
