"""The poll claim without a per-recipient lease: `poll_claims`, one row per claim (a stretch of the due-poll
index, in `(next_poll_at, id)` order, with its lease), and the due-poll index on `(next_poll_at, id)` so a claim
starts exactly after the last one (`campaigns/store/polling.py`). Recipients that an earlier version leased have
their `next_poll_at` at the lease's end and fall due then, as before.

Revision ID: 0017_poll_claims
Revises: 0016_counters
Create Date: 2026-12-07
"""

import sqlalchemy as sa
from alembic import op

from campaigns.models import BigId, UTCDateTime

revision = "0017_poll_claims"
down_revision = "0016_counters"
branch_labels = None
depends_on = None

_DUE = sa.text("next_poll_at IS NOT NULL")


def upgrade() -> None:
    op.create_table(
        "poll_claims",
        sa.Column("id", BigId, primary_key=True, autoincrement=True),
        sa.Column("hi_at", UTCDateTime, nullable=False),
        sa.Column("hi_id", sa.BigInteger, nullable=False),
        sa.Column("lease_until", UTCDateTime, nullable=False),
    )
    op.drop_index("ix_recipients_due_poll", table_name="recipients")
    op.create_index(
        "ix_recipients_due_poll",
        "recipients",
        ["next_poll_at", "id"],
        postgresql_where=_DUE,
        sqlite_where=_DUE,
    )


def downgrade() -> None:
    op.drop_index("ix_recipients_due_poll", table_name="recipients")
    op.create_index(
        "ix_recipients_due_poll", "recipients", ["next_poll_at"], postgresql_where=_DUE, sqlite_where=_DUE
    )
    op.drop_table("poll_claims")
