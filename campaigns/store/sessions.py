"""The web console's sessions, in the database so that every `web` process shares them (migration
0015_sessions). Functions over an Engine, each its own short transaction.

Only the SHA-256 of a session's token is stored (the token itself lives in the browser's cookie), so a
copy of the database opens no session. `csrf` is the session's anti-forgery token (random, sent in every
form). A session ends (`ended_at`) at logout, at a login that rotates it, when its user is disabled, or
when it is found past its idle or absolute timeout; ended rows are pruned after a day.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import Column, Index, String, Table, UniqueConstraint, delete, insert, select, update
from sqlalchemy.engine import Engine

from campaigns.models import Base, BigId, UTCDateTime

sessions_t = Table(
    "web_sessions",
    Base.metadata,
    Column("id", BigId, primary_key=True, autoincrement=True),
    Column("token_hash", String(64), nullable=False),  # sha256 hex of the cookie's token
    Column("user_id", BigId, nullable=False),
    Column("csrf", String(64), nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    Column("seen_at", UTCDateTime, nullable=False),
    Column("ended_at", UTCDateTime, nullable=True),
    UniqueConstraint("token_hash", name="uq_web_sessions_token_hash"),
    Index("ix_web_sessions_user", "user_id"),
)
s = sessions_t.c
PRUNE_AFTER = timedelta(days=1)


@dataclass(frozen=True)
class SessionRow:
    id: int
    user_id: int
    csrf: str
    created_at: datetime
    seen_at: datetime
    ended_at: datetime | None


def open_session(engine: Engine, token_hash: str, user_id: int, csrf: str, now: datetime) -> int:
    """A new session of `user_id`; its id. Sessions ended long ago are pruned on the way."""
    with engine.begin() as conn:
        conn.execute(delete(sessions_t).where(s.ended_at < now - PRUNE_AFTER))
        return conn.execute(
            insert(sessions_t)
            .values(token_hash=token_hash, user_id=user_id, csrf=csrf, created_at=now, seen_at=now)
            .returning(s.id)
        ).scalar_one()


def find_session(engine: Engine, token_hash: str) -> SessionRow | None:
    """The session of that token, ended or not; None when there is none."""
    with engine.connect() as conn:
        row = conn.execute(
            select(s.id, s.user_id, s.csrf, s.created_at, s.seen_at, s.ended_at).where(
                s.token_hash == token_hash
            )
        ).first()
    return SessionRow(*row) if row is not None else None


def touch(engine: Engine, session_id: int, now: datetime) -> None:
    """The session was used now (its idle timeout starts again)."""
    with engine.begin() as conn:
        conn.execute(update(sessions_t).where(s.id == session_id, s.ended_at.is_(None)).values(seen_at=now))


def end_session(engine: Engine, session_id: int, now: datetime) -> None:
    with engine.begin() as conn:
        conn.execute(update(sessions_t).where(s.id == session_id, s.ended_at.is_(None)).values(ended_at=now))


def end_user_sessions(engine: Engine, user_id: int, now: datetime) -> int:
    """End every open session of a user (disabled, or a new password); how many were open."""
    with engine.begin() as conn:
        return conn.execute(
            update(sessions_t).where(s.user_id == user_id, s.ended_at.is_(None)).values(ended_at=now)
        ).rowcount
