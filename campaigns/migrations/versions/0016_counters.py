"""Maintained counters (`campaign_counts`) so reads never scan a campaign's rows, and the indexes of the
reads that remain (a campaign's next delivery check, earliest retry, last claim; the store's oldest queued
chunk). Existing campaigns are backfilled: recipients and chunks by provider and state (recipients with
their estimate: SMS parts at their chunk's rial per part), and the sends recorded per minute (the rate),
from the rows, in this migration's transaction.

Revision ID: 0016_counters
Revises: 0015_sessions
Create Date: 2026-12-01
"""

import sqlalchemy as sa
from alembic import op

revision = "0016_counters"
down_revision = "0015_sessions"
branch_labels = None
depends_on = None

_PROVIDER = "COALESCE(k.provider, c.provider)"
_RATE = "(k.cost_rial * 1.0 / NULLIF(k.parts, 0))"  # rial per SMS part of the recipient's chunk
_RECIPIENTS = f"""
INSERT INTO campaign_counts (kind, campaign_id, bucket, provider, state, shard, n, parts, cost, costed, polled,
                             value, polled_value)
SELECT 'recipient', r.campaign_id, 0, {_PROVIDER}, r.state, 0, COUNT(*), COALESCE(SUM(r.parts), 0),
       COALESCE(SUM(r.cost_rial), 0), COUNT(r.cost_rial), SUM(CASE WHEN r.polls > 0 THEN 1 ELSE 0 END),
       COALESCE(SUM(r.parts * {_RATE}), 0), COALESCE(SUM(CASE WHEN r.polls > 0 THEN r.parts * {_RATE} END), 0)
FROM recipients r JOIN campaigns c ON c.id = r.campaign_id LEFT JOIN chunks k ON k.id = r.chunk_id
GROUP BY r.campaign_id, {_PROVIDER}, r.state
"""
_CHUNKS = f"""
INSERT INTO campaign_counts (kind, campaign_id, bucket, provider, state, shard, n, parts, cost, costed, polled)
SELECT 'chunk', k.campaign_id, 0, {_PROVIDER}, k.state, 0, COUNT(*), COALESCE(SUM(k.parts), 0),
       COALESCE(SUM(k.cost_rial), 0), 0, 0
FROM chunks k JOIN campaigns c ON c.id = k.campaign_id
GROUP BY k.campaign_id, {_PROVIDER}, k.state
"""
_MINUTE = {
    "postgresql": "CAST(FLOOR(EXTRACT(EPOCH FROM r.sent_at) / 60) * 60 AS BIGINT)",
    "sqlite": "CAST(strftime('%s', r.sent_at) AS INTEGER) / 60 * 60",
}
_SENT = """
INSERT INTO campaign_counts (kind, campaign_id, bucket, provider, state, shard, n, parts, cost, costed, polled)
SELECT 'sent', r.campaign_id, {minute}, {provider}, '', 0, COUNT(*), COALESCE(SUM(r.parts), 0), 0, 0, 0
FROM recipients r JOIN campaigns c ON c.id = r.campaign_id LEFT JOIN chunks k ON k.id = r.chunk_id
WHERE r.sent_at IS NOT NULL
GROUP BY r.campaign_id, {minute}, {provider}
"""


def upgrade() -> None:
    op.create_table(
        "campaign_counts",
        sa.Column("kind", sa.String(12), nullable=False),
        sa.Column("campaign_id", sa.BigInteger(), nullable=False),
        sa.Column("bucket", sa.BigInteger(), nullable=False),
        sa.Column("provider", sa.String(32), nullable=False),
        sa.Column("state", sa.String(20), nullable=False),
        sa.Column("shard", sa.BigInteger(), nullable=False),
        sa.Column("n", sa.BigInteger(), nullable=False, server_default="0"),
        sa.Column("parts", sa.BigInteger(), nullable=False, server_default="0"),
        sa.Column("cost", sa.Float(), nullable=False, server_default="0"),
        sa.Column("costed", sa.BigInteger(), nullable=False, server_default="0"),
        sa.Column("polled", sa.BigInteger(), nullable=False, server_default="0"),
        sa.Column("value", sa.Float(), nullable=False, server_default="0"),
        sa.Column("polled_value", sa.Float(), nullable=False, server_default="0"),
        sa.PrimaryKeyConstraint("kind", "campaign_id", "bucket", "provider", "state", "shard"),
    )
    op.create_index(
        "ix_recipients_campaign_next_poll",
        "recipients",
        ["campaign_id", "next_poll_at"],
        postgresql_where=sa.text("next_poll_at IS NOT NULL"),
        sqlite_where=sa.text("next_poll_at IS NOT NULL"),
    )
    op.create_index("ix_chunks_campaign_state_next", "chunks", ["campaign_id", "state", "next_attempt_at"])
    op.create_index("ix_chunks_campaign_sending", "chunks", ["campaign_id", "sending_since"])
    op.create_index("ix_chunks_state_queued", "chunks", ["state", "queued_at"])
    dialect = op.get_bind().dialect.name
    op.execute(_RECIPIENTS)
    op.execute(_CHUNKS)
    op.execute(_SENT.format(minute=_MINUTE.get(dialect, _MINUTE["postgresql"]), provider=_PROVIDER))


def downgrade() -> None:
    op.drop_index("ix_chunks_state_queued", table_name="chunks")
    op.drop_index("ix_chunks_campaign_sending", table_name="chunks")
    op.drop_index("ix_chunks_campaign_state_next", table_name="chunks")
    op.drop_index("ix_recipients_campaign_next_poll", table_name="recipients")
    op.drop_table("campaign_counts")
