"""The tables of people and keys (migration 0011_identity): users, API keys, login attempts, the audit
trail and the daily spend of a capped user or key. Declared here, beside the functions that use them
(`identity.py`, `audit.py`, `caps.py`); never a secret in clear: a password is its argon2 hash, a key its
SHA-256 and last characters.
"""

from __future__ import annotations

from sqlalchemy import BigInteger, Column, Index, String, Table, Text

from campaigns.models import Base, BigId, UTCDateTime

users_t = Table(
    "users",
    Base.metadata,
    Column("id", BigId, primary_key=True, autoincrement=True),
    Column("name", String(64), nullable=False, unique=True),
    Column("role", String(16), nullable=False),  # a campaigns.identity.Role value
    Column("password_hash", String(255), nullable=False),  # argon2id, PHC string
    Column("disabled_at", UTCDateTime, nullable=True),
    Column("daily_cap_rial", BigInteger, nullable=True),  # None: no cap
    Column("daily_cap_parts", BigInteger, nullable=True),
    Column("password_changed_at", UTCDateTime, nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    Column("updated_at", UTCDateTime, nullable=False),
)

api_keys_t = Table(
    "api_keys",
    Base.metadata,
    Column("id", BigId, primary_key=True, autoincrement=True),
    Column("name", String(64), nullable=False, unique=True),
    Column("role", String(16), nullable=False),
    Column("key_hash", String(64), nullable=False, unique=True),  # SHA-256 of the key, hex
    Column("hint", String(8), nullable=False),  # its last characters (campaigns.identity.KEY_HINT)
    Column("expires_at", UTCDateTime, nullable=True),  # None: never
    Column("revoked_at", UTCDateTime, nullable=True),
    Column("last_used_at", UTCDateTime, nullable=True),
    Column("daily_cap_rial", BigInteger, nullable=True),
    Column("daily_cap_parts", BigInteger, nullable=True),
    Column("created_by", String(200), nullable=False, server_default=""),
    Column("created_at", UTCDateTime, nullable=False),
)

login_attempts_t = Table(
    "login_attempts",
    Base.metadata,
    Column("id", BigId, primary_key=True, autoincrement=True),
    Column("at", UTCDateTime, nullable=False),
    Column("username", String(64), nullable=False),  # as typed, lower case, cut to 64
    Column("client", String(64), nullable=True),  # the client address, as the trusted proxy reports it
    Column("outcome", String(16), nullable=False),  # ok | failed | throttled
    Index("ix_login_attempts_user", "username", "at"),
    Index("ix_login_attempts_client", "client", "at"),
)

audit_events_t = Table(
    "audit_events",
    Base.metadata,
    Column("id", BigId, primary_key=True, autoincrement=True),
    Column("at", UTCDateTime, nullable=False),
    Column("who", String(200), nullable=False),  # "alice", "key:crm", "cli:USER@HOST", "system"
    Column("action", String(32), nullable=False),
    Column("campaign_id", BigId, nullable=True),  # None: not about one campaign (users, keys, opt-outs)
    Column("detail", Text, nullable=False, server_default=""),
    Index("ix_audit_events_campaign", "campaign_id", "id"),
)

# What the campaigns a capped user or key started on one (Tehran) day have committed: charged in the
# chunk claim's transaction, given back by a refund (campaigns/store/caps.py). The caps in force at the
# last charge are copied on the row, so the charge's condition reads one row.
daily_spend_t = Table(
    "daily_spend",
    Base.metadata,
    Column("principal", String(40), primary_key=True),  # "key:7" or "user:3"
    Column("day", String(10), primary_key=True),  # YYYY-MM-DD, Tehran
    Column("spent_rial", BigInteger, nullable=False, server_default="0"),
    Column("spent_parts", BigInteger, nullable=False, server_default="0"),
    Column("cap_rial", BigInteger, nullable=True),
    Column("cap_parts", BigInteger, nullable=True),
)
