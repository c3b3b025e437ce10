"""The opt-out list (suppressions) and the opt-out collector's inbox cursors. Functions over the
caller's connection or transaction; phones are E.164.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import datetime

from sqlalchemy import Connection, insert, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from campaigns.records import SuppressionView
from campaigns.store.sql import inbox_cursors_t, suppressions_t


class CursorMoved(Exception):
    """Another opt-out pass moved the inbox cursor first; the caller rolls this one back."""


def add_suppressions(conn: Connection, reasons: Mapping[str, str], now: datetime) -> int:
    """Add phone -> reason; numbers already listed keep theirs. Returns how many were new."""
    if not reasons:
        return 0
    phones = list(reasons)
    listed = set(
        conn.execute(select(suppressions_t.c.phone).where(suppressions_t.c.phone.in_(phones))).scalars()
    )
    rows = [{"phone": p, "reason": reasons[p], "created_at": now} for p in phones if p not in listed]
    if rows:  # ON CONFLICT DO NOTHING: a concurrent pass adding the same number is not an error
        dialect_insert = sqlite_insert if conn.dialect.name == "sqlite" else pg_insert
        conn.execute(dialect_insert(suppressions_t).on_conflict_do_nothing(), rows)
    return len(rows)


def unsuppress(conn: Connection, phones: Iterable[str]) -> int:
    """Take numbers off the list; returns how many were listed."""
    wanted = list(set(phones))
    if not wanted:
        return 0
    return conn.execute(suppressions_t.delete().where(suppressions_t.c.phone.in_(wanted))).rowcount


def suppressed(conn: Connection) -> dict[str, str]:
    """phone -> reason, for the loader (which writes the reason into the rejects file)."""
    return dict(conn.execute(select(suppressions_t.c.phone, suppressions_t.c.reason)).all())


def suppressions(conn: Connection) -> list[SuppressionView]:
    """The whole list, oldest first."""
    rows = conn.execute(select(suppressions_t).order_by(suppressions_t.c.created_at, suppressions_t.c.phone))
    return [SuppressionView(r.phone, r.reason, r.created_at) for r in rows]


def inbox_cursor(conn: Connection, account: str) -> str | None:
    """How far the opt-out collector has read this account's inbox; None before its first pass."""
    return conn.execute(
        select(inbox_cursors_t.c.cursor).where(inbox_cursors_t.c.account == account)
    ).scalar_one_or_none()


def record_optouts(
    conn: Connection,
    account: str,
    provider: str,
    optouts: Mapping[str, str],
    cursor: str,
    previous: str | None,
    now: datetime,
) -> int:
    """Move the account's cursor from `previous` to `cursor` (compare-and-set) and add the opt-outs.

    Raises CursorMoved when another pass moved the cursor first, and IntegrityError when another pass
    created it first: the caller rolls back. Returns the number of new suppressions.
    """
    c = inbox_cursors_t.c
    if previous is None:
        conn.execute(
            insert(inbox_cursors_t).values(account=account, provider=provider, cursor=cursor, updated_at=now)
        )
    else:
        moved = conn.execute(
            update(inbox_cursors_t)
            .where(c.account == account, c.cursor == previous)
            .values(cursor=cursor, updated_at=now)
        ).rowcount
        if moved != 1:
            raise CursorMoved()
    return add_suppressions(conn, optouts, now)
