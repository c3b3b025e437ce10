"""Users, API keys and login attempts (`campaigns/store/identity_tables.py`). Functions over the caller's
transaction; each change writes its audit event (`audit.record`) in the same transaction.

Only hashes are stored: the caller (dispatcher/app/hashing.py) hashes a password with argon2 and a key
with SHA-256 before anything reaches this module, and nothing here logs.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Connection, delete, insert, or_, select, update

from campaigns.identity import KeyRecord, Role, UserRecord
from campaigns.store.audit import detail_json, record
from campaigns.store.identity_tables import api_keys_t, login_attempts_t, users_t

u, ak, la = users_t.c, api_keys_t.c, login_attempts_t.c
TOUCH_EVERY = timedelta(minutes=1)  # a key's last_used_at is written at most this often


class NameTaken(ValueError):
    """A user or key of that name exists already."""


def _user(row: Any) -> UserRecord:
    return UserRecord(
        row.id,
        row.name,
        Role(row.role),
        row.password_hash,
        row.disabled_at,
        row.daily_cap_rial,
        row.daily_cap_parts,
        row.password_changed_at,
        row.created_at,
    )


def _key(row: Any) -> KeyRecord:
    return KeyRecord(
        row.id,
        row.name,
        Role(row.role),
        row.hint,
        row.expires_at,
        row.revoked_at,
        row.last_used_at,
        row.daily_cap_rial,
        row.daily_cap_parts,
        row.created_by,
        row.created_at,
    )


# ---- users -------------------------------------------------------------------------------------------
def add_user(
    conn: Connection,
    name: str,
    role: Role,
    password_hash: str,
    caps: tuple[int | None, int | None],
    who: str,
    now: datetime,
) -> UserRecord:
    """A new user (`caps`: daily rial, daily parts; None = none). Raises NameTaken."""
    if conn.execute(select(u.id).where(u.name == name)).first() is not None:
        raise NameTaken(f"a user named {name!r} exists already")
    conn.execute(
        insert(users_t).values(
            name=name,
            role=str(role),
            password_hash=password_hash,
            daily_cap_rial=caps[0],
            daily_cap_parts=caps[1],
            password_changed_at=now,
            created_at=now,
            updated_at=now,
        )
    )
    detail = detail_json(name=name, role=str(role), daily_cap_rial=caps[0], daily_cap_parts=caps[1])
    record(conn, now, who, "user added", detail)
    found = user(conn, name)
    assert found is not None
    return found


def user(conn: Connection, name: str) -> UserRecord | None:
    row = conn.execute(select(users_t).where(u.name == name)).first()
    return _user(row) if row else None


def user_by_id(conn: Connection, user_id: int) -> UserRecord | None:
    row = conn.execute(select(users_t).where(u.id == user_id)).first()
    return _user(row) if row else None


def users(conn: Connection) -> list[UserRecord]:
    return [_user(r) for r in conn.execute(select(users_t).order_by(u.name))]


def count_users(conn: Connection) -> int:
    return len(conn.execute(select(u.id).limit(1)).all())


def disable_user(conn: Connection, name: str, who: str, now: datetime) -> bool:
    """Disable a user (it can no longer log in; its sessions end). False when there is no such user or it
    was disabled already."""
    done = conn.execute(
        update(users_t).where(u.name == name, u.disabled_at.is_(None)).values(disabled_at=now, updated_at=now)
    ).rowcount
    if done:
        record(conn, now, who, "user disabled", detail_json(name=name))
    return bool(done)


def set_password(conn: Connection, name: str, password_hash: str, who: str, now: datetime) -> bool:
    """A new password hash (`password_changed_at` moves: sessions opened before it end). False: no such user."""
    done = conn.execute(
        update(users_t)
        .where(u.name == name)
        .values(password_hash=password_hash, password_changed_at=now, updated_at=now)
    ).rowcount
    if done:
        record(conn, now, who, "password changed", detail_json(name=name))
    return bool(done)


def rehash_password(conn: Connection, user_id: int, password_hash: str, now: datetime) -> None:
    """The same password under newer hashing parameters (not a change: no event, sessions kept)."""
    conn.execute(update(users_t).where(u.id == user_id).values(password_hash=password_hash, updated_at=now))


# ---- API keys ----------------------------------------------------------------------------------------
def add_key(
    conn: Connection,
    name: str,
    role: Role,
    key_hash: str,
    hint: str,
    expires_at: datetime | None,
    caps: tuple[int | None, int | None],
    who: str,
    now: datetime,
) -> KeyRecord:
    """A new key, stored as its SHA-256 (`key_hash`) and last characters (`hint`). Raises NameTaken."""
    if conn.execute(select(ak.id).where(ak.name == name)).first() is not None:
        raise NameTaken(f"a key named {name!r} exists already")
    conn.execute(
        insert(api_keys_t).values(
            name=name,
            role=str(role),
            key_hash=key_hash,
            hint=hint,
            expires_at=expires_at,
            daily_cap_rial=caps[0],
            daily_cap_parts=caps[1],
            created_by=who,
            created_at=now,
        )
    )
    detail = detail_json(
        name=name, role=str(role), expires_at=expires_at, daily_cap_rial=caps[0], daily_cap_parts=caps[1]
    )
    record(conn, now, who, "key created", detail)
    row = conn.execute(select(api_keys_t).where(ak.name == name)).one()
    return _key(row)


def key_by_hash(conn: Connection, key_hash: str) -> KeyRecord | None:
    row = conn.execute(select(api_keys_t).where(ak.key_hash == key_hash)).first()
    return _key(row) if row else None


def key(conn: Connection, name: str) -> KeyRecord | None:
    row = conn.execute(select(api_keys_t).where(ak.name == name)).first()
    return _key(row) if row else None


def keys(conn: Connection) -> list[KeyRecord]:
    return [_key(r) for r in conn.execute(select(api_keys_t).order_by(ak.name))]


def revoke_key(conn: Connection, name: str, who: str, now: datetime) -> bool:
    """Revoke a key at once (every request with it is refused). False: no such key, or revoked already."""
    done = conn.execute(
        update(api_keys_t).where(ak.name == name, ak.revoked_at.is_(None)).values(revoked_at=now)
    ).rowcount
    if done:
        record(conn, now, who, "key revoked", detail_json(name=name))
    return bool(done)


def touch_key(conn: Connection, key_id: int, now: datetime) -> None:
    """Note the key's use (at most once a `TOUCH_EVERY`, so a busy client does not write every request)."""
    conn.execute(
        update(api_keys_t)
        .where(ak.id == key_id, or_(ak.last_used_at.is_(None), ak.last_used_at < now - TOUCH_EVERY))
        .values(last_used_at=now)
    )


def set_cap(
    conn: Connection, kind: str, name: str, caps: tuple[int | None, int | None], who: str, now: datetime
) -> bool:
    """Set (or, with None, remove) the daily caps of a user (`kind` "user") or key ("key"). False: no such one."""
    table = users_t if kind == "user" else api_keys_t
    done = conn.execute(
        update(table).where(table.c.name == name).values(daily_cap_rial=caps[0], daily_cap_parts=caps[1])
    ).rowcount
    if done:
        detail = detail_json(name=name, daily_cap_rial=caps[0], daily_cap_parts=caps[1])
        record(conn, now, who, f"{kind} cap set", detail)
    return bool(done)


# ---- login attempts ----------------------------------------------------------------------------------
def record_attempt(conn: Connection, at: datetime, username: str, client: str | None, outcome: str) -> None:
    """One login attempt: `ok`, `failed` or `throttled` (the name as typed, lower case; never the password)."""
    conn.execute(
        insert(login_attempts_t).values(
            at=at, username=username[:64], client=client[:64] if client else None, outcome=outcome
        )
    )


def failures_since(
    conn: Connection, since: datetime, *, username: str | None = None, client: str | None = None
) -> list[datetime]:
    """Times of the failed logins since `since`, of one account (`username`) or from one `client`."""
    query = select(la.at).where(la.outcome == "failed", la.at >= since)
    query = query.where(la.username == username) if username is not None else query.where(la.client == client)
    return list(conn.execute(query).scalars())


def prune_attempts(conn: Connection, before: datetime) -> int:
    """Forget the attempts older than `before` (the throttle looks back 30 minutes)."""
    return conn.execute(delete(login_attempts_t).where(la.at < before)).rowcount
