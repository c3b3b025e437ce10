"""The web console's sessions (`web_sessions`): the SHA-256 of each token, its user, its CSRF token,
when it opened, was last used and ended.

Revision ID: 0015_sessions
Revises: 0013_web
Create Date: 2026-12-07
"""

import sqlalchemy as sa
from alembic import op

from campaigns.models import BigId, UTCDateTime

revision = "0015_sessions"
down_revision = "0013_web"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "web_sessions",
        sa.Column("id", BigId, primary_key=True, autoincrement=True),
        sa.Column("token_hash", sa.String(64), nullable=False),
        sa.Column("user_id", BigId, nullable=False),
        sa.Column("csrf", sa.String(64), nullable=False),
        sa.Column("created_at", UTCDateTime, nullable=False),
        sa.Column("seen_at", UTCDateTime, nullable=False),
        sa.Column("ended_at", UTCDateTime, nullable=True),
        sa.UniqueConstraint("token_hash", name="uq_web_sessions_token_hash"),
    )
    op.create_index("ix_web_sessions_user", "web_sessions", ["user_id"])


def downgrade() -> None:
    op.drop_index("ix_web_sessions_user", table_name="web_sessions")
    op.drop_table("web_sessions")
