"""Users, API keys, login attempts, the audit trail and daily spending caps; who started a campaign, the
day its spend counts against, and when its recipients were purged (`campaigns/store/identity_tables.py`).

The new campaign columns are nullable: campaigns stored before this revision were started by the
command line and carry no cap.

Revision ID: 0011_identity
Revises: 0009_routes
Create Date: 2026-11-30
"""

import sqlalchemy as sa
from alembic import op

from campaigns.models import BigId, UTCDateTime

revision = "0011_identity"
down_revision = "0009_routes"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "users",
        sa.Column("id", BigId, primary_key=True, autoincrement=True),
        sa.Column("name", sa.String(64), nullable=False, unique=True),
        sa.Column("role", sa.String(16), nullable=False),
        sa.Column("password_hash", sa.String(255), nullable=False),
        sa.Column("disabled_at", UTCDateTime, nullable=True),
        sa.Column("daily_cap_rial", sa.BigInteger, nullable=True),
        sa.Column("daily_cap_parts", sa.BigInteger, nullable=True),
        sa.Column("password_changed_at", UTCDateTime, nullable=False),
        sa.Column("created_at", UTCDateTime, nullable=False),
        sa.Column("updated_at", UTCDateTime, nullable=False),
    )
    op.create_table(
        "api_keys",
        sa.Column("id", BigId, primary_key=True, autoincrement=True),
        sa.Column("name", sa.String(64), nullable=False, unique=True),
        sa.Column("role", sa.String(16), nullable=False),
        sa.Column("key_hash", sa.String(64), nullable=False, unique=True),
        sa.Column("hint", sa.String(8), nullable=False),
        sa.Column("expires_at", UTCDateTime, nullable=True),
        sa.Column("revoked_at", UTCDateTime, nullable=True),
        sa.Column("last_used_at", UTCDateTime, nullable=True),
        sa.Column("daily_cap_rial", sa.BigInteger, nullable=True),
        sa.Column("daily_cap_parts", sa.BigInteger, nullable=True),
        sa.Column("created_by", sa.String(200), nullable=False, server_default=""),
        sa.Column("created_at", UTCDateTime, nullable=False),
    )
    op.create_table(
        "login_attempts",
        sa.Column("id", BigId, primary_key=True, autoincrement=True),
        sa.Column("at", UTCDateTime, nullable=False),
        sa.Column("username", sa.String(64), nullable=False),
        sa.Column("client", sa.String(64), nullable=True),
        sa.Column("outcome", sa.String(16), nullable=False),
    )
    op.create_index("ix_login_attempts_user", "login_attempts", ["username", "at"])
    op.create_index("ix_login_attempts_client", "login_attempts", ["client", "at"])
    op.create_table(
        "audit_events",
        sa.Column("id", BigId, primary_key=True, autoincrement=True),
        sa.Column("at", UTCDateTime, nullable=False),
        sa.Column("who", sa.String(200), nullable=False),
        sa.Column("action", sa.String(32), nullable=False),
        sa.Column("campaign_id", BigId, nullable=True),
        sa.Column("detail", sa.Text, nullable=False, server_default=""),
    )
    op.create_index("ix_audit_events_campaign", "audit_events", ["campaign_id", "id"])
    op.create_table(
        "daily_spend",
        sa.Column("principal", sa.String(40), primary_key=True),
        sa.Column("day", sa.String(10), primary_key=True),
        sa.Column("spent_rial", sa.BigInteger, nullable=False, server_default="0"),
        sa.Column("spent_parts", sa.BigInteger, nullable=False, server_default="0"),
        sa.Column("cap_rial", sa.BigInteger, nullable=True),
        sa.Column("cap_parts", sa.BigInteger, nullable=True),
    )
    with op.batch_alter_table("campaigns") as batch:
        batch.add_column(sa.Column("created_by", sa.String(200), nullable=True))
        batch.add_column(sa.Column("created_by_user_id", sa.BigInteger, nullable=True))
        batch.add_column(sa.Column("created_by_key_id", sa.BigInteger, nullable=True))
        batch.add_column(sa.Column("spend_principal", sa.String(40), nullable=True))
        batch.add_column(sa.Column("spend_day", sa.String(10), nullable=True))
        batch.add_column(sa.Column("purged_at", UTCDateTime, nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("campaigns") as batch:
        for name in (
            "purged_at",
            "spend_day",
            "spend_principal",
            "created_by_key_id",
            "created_by_user_id",
            "created_by",
        ):
            batch.drop_column(name)
    op.drop_table("daily_spend")
    op.drop_index("ix_audit_events_campaign", table_name="audit_events")
    op.drop_table("audit_events")
    op.drop_index("ix_login_attempts_client", table_name="login_attempts")
    op.drop_index("ix_login_attempts_user", table_name="login_attempts")
    op.drop_table("login_attempts")
    op.drop_table("api_keys")
    op.drop_table("users")
