"""The contact push ledger (`contact_pushes`, migration 0008_contacts): which numbers of a push reached
a provider's phonebook. Functions over the caller's connection or transaction; states and transitions
in `campaigns.contacts`, every state write through `sql.transition`.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path

from sqlalchemy import (
    Column,
    Connection,
    Index,
    Integer,
    String,
    Table,
    Text,
    UniqueConstraint,
    func,
    select,
    text,
)
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from campaigns.clock import utcnow
from campaigns.contacts import CONTACT_TRANSITIONS, ContactRow, ContactState, ContactTransition, NewContact
from campaigns.models import Base, BigId, UTCDateTime
from campaigns.store.sql import transition

contact_pushes_t = Table(
    "contact_pushes",
    Base.metadata,
    Column("id", BigId, primary_key=True, autoincrement=True),
    Column("account", String(64), nullable=False),  # ProviderSettings.account_key: reveals no secret
    Column("book", String(64), nullable=False),  # the provider's group id; "" = the whole phonebook
    Column("phone", String(16), nullable=False),  # E.164
    Column("state", String(16), nullable=False),
    Column("fields", Text, nullable=False, server_default="{}"),  # JSON: wire field -> text
    Column("row", Integer, nullable=False, server_default="0"),  # the file's row number
    Column("claim", String(32), nullable=True),  # the token of the run that claimed it last
    Column("reason", Text, nullable=False, server_default=""),
    Column("created_at", UTCDateTime, nullable=False),
    Column("updated_at", UTCDateTime, nullable=False),
    UniqueConstraint("account", "book", "phone", name="uq_contact_pushes_number"),
    Index("ix_contact_pushes_state", "account", "book", "state"),
)
c = contact_pushes_t.c
T = ContactTransition


def _row(r: object) -> ContactRow:
    return ContactRow(r.id, r.phone, json.loads(r.fields or "{}"), r.row, ContactState(r.state), r.reason)  # type: ignore[attr-defined]


def _of(account: str, book: str) -> tuple[object, object]:
    return c.account == account, c.book == book


def enqueue(conn: Connection, account: str, book: str, contacts: Iterable[NewContact], now: datetime) -> int:
    """Add numbers not in the ledger yet as `pending` (a number already there keeps its state and
    fields: it is never pushed twice). Returns how many were new."""
    rows = [
        dict(
            account=account,
            book=book,
            phone=n.phone,
            state=ContactState.PENDING,
            fields=json.dumps(n.fields, ensure_ascii=False),
            row=n.row,
            reason="",
            created_at=now,
            updated_at=now,
        )
        for n in contacts
    ]
    if not rows:
        return 0
    dialect_insert = sqlite_insert if conn.dialect.name == "sqlite" else pg_insert
    stmt = dialect_insert(contact_pushes_t).on_conflict_do_nothing(
        index_elements=["account", "book", "phone"]
    )
    before = count(conn, account, book)
    conn.execute(stmt, rows)
    return count(conn, account, book) - before


def count(conn: Connection, account: str, book: str) -> int:
    """How many numbers the ledger holds for (account, book)."""
    return conn.execute(
        select(func.count()).select_from(contact_pushes_t).where(*_of(account, book))
    ).scalar_one()


def counts(conn: Connection, account: str, book: str) -> dict[ContactState, int]:
    """How many numbers are in each state (every state present, 0 when none)."""
    found = dict(
        conn.execute(select(c.state, func.count()).where(*_of(account, book)).group_by(c.state)).all()
    )
    return {s: int(found.get(s.value, 0)) for s in ContactState}


def claim(
    conn: Connection, account: str, book: str, limit: int, token: str, now: datetime
) -> list[ContactRow]:
    """Up to `limit` pending numbers -> `pushing` under `token` (committed before the call), oldest row first."""
    ids = select(c.id).where(*_of(account, book), c.state == ContactState.PENDING).order_by(c.id).limit(limit)
    wanted = list(conn.execute(ids).scalars())
    if not wanted:
        return []
    conn.execute(
        transition(contact_pushes_t, CONTACT_TRANSITIONS, T.CLAIM, now, c.id.in_(wanted), claim=token)
    )
    got = select(contact_pushes_t).where(c.id.in_(wanted), c.claim == token, c.state == ContactState.PUSHING)
    return [_row(r) for r in conn.execute(got.order_by(c.id))]


def move(
    conn: Connection, ids: Sequence[int], name: ContactTransition, now: datetime, reason: str = ""
) -> int:
    """Apply one transition to these rows (those in its allowed-from states); returns how many moved."""
    if not ids:
        return 0
    stmt = transition(contact_pushes_t, CONTACT_TRANSITIONS, name, now, c.id.in_(list(ids)), reason=reason)
    return conn.execute(stmt).rowcount


def in_state(conn: Connection, account: str, book: str, state: ContactState) -> list[ContactRow]:
    """The rows in `state`, oldest first."""
    rows = conn.execute(select(contact_pushes_t).where(*_of(account, book), c.state == state).order_by(c.id))
    return [_row(r) for r in rows]


def found(
    conn: Connection, account: str, book: str, phones: Iterable[str], now: datetime, reason: str
) -> int:
    """Numbers the provider's listing shows -> `added` (from pending, pushing or unknown)."""
    wanted = list(set(phones))
    moved = 0
    for i in range(0, len(wanted), 500):
        part = wanted[i : i + 500]
        stmt = transition(
            contact_pushes_t,
            CONTACT_TRANSITIONS,
            T.FOUND,
            now,
            *_of(account, book),
            c.phone.in_(part),
            reason=reason,
        )
        moved += conn.execute(stmt).rowcount
    return moved


class PushBusy(Exception):
    """Another push into the same (account, book) holds its lock."""


@contextmanager
def push_lock(conn_factory: object, url: object, account: str, book: str) -> Iterator[None]:
    """Hold the (account, book) push lock for the block, or raise PushBusy at once. PostgreSQL: a session
    advisory lock; SQLite: an flock on a file beside the database, removed when the push is done
    (`_file_lock`). Both die with the process, so a killed push never blocks the next one."""
    key = int.from_bytes(hashlib.sha256(f"{account}|{book}".encode()).digest()[:8], "big", signed=True)
    if getattr(url, "drivername", "").startswith("postgresql"):
        with conn_factory() as conn:  # type: ignore[operator]
            got = conn.execute(text("SELECT pg_try_advisory_lock(:k)"), {"k": key}).scalar()
            conn.commit()
            if not got:
                raise PushBusy()
            try:
                yield
            finally:
                conn.execute(text("SELECT pg_advisory_unlock(:k)"), {"k": key})
                conn.commit()
        return
    database = getattr(url, "database", None)
    if not database or database == ":memory:":
        yield
        return
    with _file_lock(Path(f"{database}.contacts-{key & 0xFFFFFFFF:08x}.lock")):
        yield


@contextmanager
def _file_lock(path: Path) -> Iterator[None]:
    """An exclusive flock on `path`, made for the block and removed after it, so no file is left beside the
    database. Raises PushBusy at once when another process holds it.

    The file is removed while still locked, and a lock taken on a file that is no longer the one at `path`
    (a push that ended removed it between our open and our flock) is let go and taken again on the new
    one: two processes never both believe they hold it. A killed holder leaves its file, unlocked: the next
    push locks it and removes it when done."""
    while True:
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            raise PushBusy() from None
        try:
            current = os.stat(path)
        except FileNotFoundError:
            current = None
        mine = os.fstat(fd)
        if current is not None and (current.st_dev, current.st_ino) == (mine.st_dev, mine.st_ino):
            break
        os.close(fd)  # locked a file already removed: try the one at `path` now
    try:
        yield
    finally:
        try:
            path.unlink(missing_ok=True)  # before the unlock: nobody can lock this file and think it the lock
        finally:
            os.close(fd)  # lets the flock go


class ContactLedger:
    """One push ledger, (account, book), over a `Store`: each method is one transaction or one read
    around a function above (the facade's pattern; `Store.contacts(account, book)` makes one)."""

    def __init__(self, store: object, account: str, book: str) -> None:
        self.store, self.account, self.book = store, account, book

    def _write(self, fn, *args):  # noqa: ANN001, ANN202
        return self.store._write(fn, self.account, self.book, *args)  # type: ignore[attr-defined]

    def _read(self, fn, *args):  # noqa: ANN001, ANN202
        return self.store._read(fn, self.account, self.book, *args)  # type: ignore[attr-defined]

    def lock(self):  # noqa: ANN201 - a context manager
        """The push lock of this ledger (`push_lock`): one push per (account, book) at a time."""
        engine = self.store.engine  # type: ignore[attr-defined]
        return push_lock(engine.connect, engine.url, self.account, self.book)

    def enqueue(self, contacts: Iterable[NewContact], block: int = 10_000) -> int:
        """Insert-if-absent in blocks of `block` numbers, one transaction each (a rerun adds what is missing)."""
        new, batch = 0, []
        for contact in contacts:
            batch.append(contact)
            if len(batch) >= block:
                new, batch = new + self._write(enqueue, batch, utcnow()), []
        return new + (self._write(enqueue, batch, utcnow()) if batch else 0)

    def counts(self) -> dict[ContactState, int]:
        return self._read(counts)

    def claim(self, limit: int, token: str) -> list[ContactRow]:
        return self._write(claim, limit, token, utcnow())

    def in_state(self, state: ContactState) -> list[ContactRow]:
        return self._read(in_state, state)

    def found(self, phones: Iterable[str], reason: str) -> int:
        return self._write(found, list(phones), utcnow(), reason)

    def move(self, ids: Sequence[int], name: ContactTransition, reason: str = "") -> int:
        return self.store._write(move, ids, name, utcnow(), reason)  # type: ignore[attr-defined]

    def record(self, moves: Iterable[tuple[int, ContactTransition, str]]) -> None:
        """Several rows' transitions in one transaction: (id, transition, reason)."""

        def apply(conn: Connection) -> None:
            now = utcnow()
            for row_id, name, reason in moves:
                move(conn, [row_id], name, now, reason)

        self.store._write(apply)  # type: ignore[attr-defined]
