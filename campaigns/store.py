"""The store: campaign creation in one transaction, and every state transition, written once.

Each transition is one conditional `UPDATE … WHERE state IN (allowed) [AND attempt = :a]` inside a
transaction, reading its allowed-from set from `campaigns.states`; it returns whether it applied.
Nobody else writes a state column. The database is the source of truth; brokers and thread pools
only say "look at chunk N".
"""

from __future__ import annotations

import json
import secrets
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from functools import cache
from pathlib import Path
from typing import Any, NamedTuple

from sqlalchemy import (
    ARRAY,
    BigInteger,
    Connection,
    and_,
    any_,
    bindparam,
    column,
    func,
    insert,
    or_,
    select,
    text,
    update,
)
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.engine import Engine
from sqlalchemy.exc import DBAPIError, IntegrityError

from campaigns.db import is_sqlite, make_engine
from campaigns.models import Campaign, Chunk, InboxCursor, Recipient, Suppression
from campaigns.plan import PlannedBlock
from campaigns.states import (
    AWAITING_REPORT,
    CAMPAIGN_TRANSITIONS,
    CHUNK_TRANSITIONS,
    FINAL_RECIPIENT,
    OPEN_CHUNK,
    RECIPIENT_TRANSITIONS,
    CampaignState,
    ChunkState,
    RecipientState,
)

campaigns_t = Campaign.__table__
chunks_t = Chunk.__table__
recipients_t = Recipient.__table__
suppressions_t = Suppression.__table__
inbox_cursors_t = InboxCursor.__table__

C, K, R = CampaignState, ChunkState, RecipientState
MIGRATIONS = Path(__file__).parent / "migrations"


def utcnow() -> datetime:
    return datetime.now(UTC)


def transition(
    table: Any,
    transitions: dict[str, Any],
    name: str,
    now: datetime,
    *where: Any,
    by_key: bool = False,
    **values: Any,
) -> Any:
    """`UPDATE table SET state = <to> … WHERE state IN (<allowed from>) AND <where>`, from the table in states.py.

    Every state change in the store is one of these statements, single-row or set-based. `by_key`:
    the rows are found by primary key (a set-based update joined to its rows); the state test is then
    written so that it cannot lead PostgreSQL's planner to scan a whole campaign by state instead
    (with stale statistics it did: a hash join over every pending row, for each chunk of 100).
    """
    allowed, to = transitions[name]
    if to is not None:  # None: a set-based transition whose rows each carry their new state in `values`
        values = {"state": to, **values}
    state = table.c.state.concat("") if by_key else table.c.state
    return update(table).where(state.in_(allowed), *where).values(updated_at=now, **values)


_ROW_COLUMNS = ("id", "state", "mid", "code", "error", "next", "delivered")
_PG_ROWS = text(
    "SELECT * FROM unnest(CAST(:ids AS bigint[]), CAST(:states AS text[]), CAST(:mids AS text[]), "
    "CAST(:codes AS text[]), CAST(:errors AS text[]), CAST(:nexts AS timestamptz[]), "
    "CAST(:delivereds AS timestamptz[])) AS u(id, state, mid, code, error, next, delivered)"
)
# json_extract rather than ->> (3.38+): UPDATE … FROM needs SQLite 3.33, and the store already needs
# 3.35 for RETURNING.
_SQLITE_ROWS = text(
    "SELECT json_extract(value, '$[0]') AS id, json_extract(value, '$[1]') AS state, "
    "json_extract(value, '$[2]') AS mid, json_extract(value, '$[3]') AS code, "
    "json_extract(value, '$[4]') AS error, json_extract(value, '$[5]') AS next, "
    "json_extract(value, '$[6]') AS delivered FROM json_each(:rows)"
)
_SQLITE_TIME = "%Y-%m-%d %H:%M:%S.%f"  # how SQLAlchemy's SQLite DateTime stores a (naive UTC) time


def _sqlite_time(value: datetime | None) -> str | None:
    return None if value is None else value.astimezone(UTC).replace(tzinfo=None).strftime(_SQLITE_TIME)


def _rows_json(updates: Sequence[RecipientUpdate]) -> str:
    return json.dumps(
        [
            [
                u.recipient_id,
                str(u.state),
                u.provider_message_id,
                u.provider_status,
                u.error,
                _sqlite_time(u.next_poll_at),
                _sqlite_time(u.delivered_at),
            ]
            for u in updates
        ],
        ensure_ascii=False,
    )


@cache
def _recipient_update_stmt(sqlite: bool, sent: bool) -> Any:
    """The set-based recipient transition, built once per (backend, kind); see `Store._apply_updates`."""
    source = (_SQLITE_ROWS if sqlite else _PG_ROWS).columns(*(column(c) for c in _ROW_COLUMNS)).subquery("v")
    r, v = recipients_t.c, source.c
    now = bindparam("now", type_=recipients_t.c.updated_at.type)
    values: dict[str, Any] = {
        "state": v.state,
        "provider_message_id": func.coalesce(v.mid, r.provider_message_id),
        "provider_status": func.coalesce(v.code, r.provider_status),
        "error": v.error,
        "next_poll_at": v.next,
        "delivered_at": func.coalesce(v.delivered, r.delivered_at),
    }
    if sent:
        values |= {"sent_at": now, "attempts": r.attempts + 1}
        name = "send_result"
    else:
        values |= {"polls": r.polls + 1}
        name = "status_result"
    return transition(recipients_t, RECIPIENT_TRANSITIONS, name, now, r.id == v.id, by_key=True, **values)


def _awaiting_report(state: Any) -> Any:
    """`state IN (sent, sent_to_operator)`, written so that PostgreSQL's planner cannot pick the
    (campaign, state) index for it: due polls are found through `ix_recipients_due_poll` in
    `next_poll_at` order (stopping at the LIMIT) and batches by primary key. With stale statistics
    it otherwise bitmap-scanned every sent recipient for each batch (measured: 10-25 ms a batch)."""
    return state.concat("").in_(list(AWAITING_REPORT))


@cache
def _claim_stmt(with_attempt: bool) -> Any:
    """The claim's compare-and-set, built once (it ran for every chunk: ~0.2 ms of Python to build)."""
    now = bindparam("now", type_=chunks_t.c.updated_at.type)
    running = select(campaigns_t.c.id).where(campaigns_t.c.state == C.RUNNING)
    stmt = transition(
        chunks_t,
        CHUNK_TRANSITIONS,
        "claim",
        now,
        chunks_t.c.id == bindparam("chunk_id"),
        or_(chunks_t.c.state == K.QUEUED, chunks_t.c.next_attempt_at <= now),  # a retry only when due
        chunks_t.c.campaign_id.in_(running),
        attempt=chunks_t.c.attempt + 1,
        lease_until=bindparam("lease_until", type_=chunks_t.c.lease_until.type),
        sending_since=now,
    )
    if with_attempt:
        stmt = stmt.where(chunks_t.c.attempt == bindparam("attempt"))
    return stmt.returning(chunks_t.c.campaign_id, chunks_t.c.attempt, chunks_t.c.sending_since)


_INDEX_ORDER_ONLY = text(
    "SELECT set_config('enable_bitmapscan', 'off', true), set_config('enable_sort', 'off', true)"
)  # both for the current transaction only (SET LOCAL)
_pending = recipients_t.alias("r")
_CLAIM_READ = (
    select(
        campaigns_t.c.provider,
        campaigns_t.c.account,
        campaigns_t.c.sender,
        campaigns_t.c.message,
        campaigns_t.c.ref_prefix,
        campaigns_t.c.on_unknown,
        _pending.c.id.label("rid"),
        _pending.c.phone,
        _pending.c.text,
        _pending.c.parts,
    )
    .select_from(
        campaigns_t.outerjoin(
            _pending,
            and_(
                _pending.c.chunk_id == bindparam("chunk_id"), _pending.c.state == str(RecipientState.PENDING)
            ),
        )
    )
    .where(campaigns_t.c.id == bindparam("campaign_id"))
    .order_by(_pending.c.id)
)


class _CursorMoved(Exception):
    """Internal: another opt-out pass moved the inbox cursor first; roll this one back."""


@dataclass(frozen=True)
class SuppressionView:
    phone: str
    reason: str
    created_at: datetime


class EmptyCampaign(ValueError):
    """Nothing valid to send: the campaign is not created."""


@dataclass(frozen=True)
class CampaignSpec:
    name: str
    provider: str
    account: str
    sender: str
    message: str
    personalised: bool
    source_file: str = ""
    rejects_file: str = ""
    columns: Sequence[str] = ()
    on_unknown: str = "hold"
    send_at: datetime | None = None
    window: str | None = None


@dataclass(frozen=True)
class OutMessage:
    """A recipient as a send needs it (the store's view; workers turn it into a provider Message)."""

    recipient_id: int
    phone: str
    text: str
    client_ref: str


@dataclass(frozen=True)
class ClaimedChunk:
    chunk_id: int
    campaign_id: int
    attempt: int
    provider: str
    account: str
    sender: str
    parts: int
    on_unknown: str
    sending_since: datetime
    messages: tuple[OutMessage, ...]


@dataclass(frozen=True)
class RecipientUpdate:
    """One recipient's new facts, from a send, a reconciliation or a status poll."""

    recipient_id: int
    state: RecipientState
    provider_message_id: str | None = None
    provider_status: str | None = None
    error: str | None = None
    next_poll_at: datetime | None = None
    delivered_at: datetime | None = None


@dataclass
class CampaignView:
    id: int
    name: str
    provider: str
    state: str
    state_reason: str | None
    recipients: int
    rejected: int
    chunks: int
    parts: int
    rejects_file: str
    source_file: str
    columns: list[str]
    sender: str
    message: str
    on_unknown: str
    send_at: datetime | None
    window: str | None
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    counts: dict[str, int] = field(default_factory=dict)
    chunk_counts: dict[str, int] = field(default_factory=dict)
    # of counts["failed"] + counts["blacklisted"]: those a delivery report gave (the provider had accepted them)
    reported_failed: int = 0


class ChunkPeek(NamedTuple):
    provider: str
    parts: int  # SMS parts of the whole chunk (the rate limit's unit)
    window: str | None
    claimable: bool  # the claim's own condition, as read now


@dataclass(frozen=True)
class DuePoll:
    recipient_id: int
    campaign_id: int
    provider: str
    account: str
    message_id: str
    sent_at: datetime | None
    polls: int


class Store:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    @classmethod
    def from_url(cls, url: str) -> Store:
        return cls(make_engine(url))

    # ---- schema --------------------------------------------------------------------------------
    def migrate(self) -> None:
        """Bring the schema to the newest Alembic revision (idempotent)."""
        from alembic import command
        from alembic.config import Config

        cfg = Config()
        cfg.set_main_option("script_location", str(MIGRATIONS))
        with self.engine.begin() as conn:
            if conn.dialect.name == "postgresql":
                # Workers, beat and the CLI may all start on an empty database at once: one migrates,
                # the others wait and then find nothing to do. (SQLite's BEGIN IMMEDIATE serialises.)
                conn.execute(text("SELECT pg_advisory_xact_lock(7270312)"))
            cfg.attributes["connection"] = conn
            command.upgrade(cfg, "head")

    # ---- creation ------------------------------------------------------------------------------
    def create_campaign(
        self,
        spec: CampaignSpec,
        blocks: Iterable[PlannedBlock],
        *,
        rejected: int | Callable[[], int] = 0,
        start: bool = True,
    ) -> int:
        """Insert the campaign, its chunks and recipients in ONE transaction, then queue or schedule it.

        Any exception (bad input found late, a database error) rolls everything back: there is never
        a half-written campaign.
        """
        now = utcnow()
        with self.engine.begin() as conn:
            campaign_id = conn.execute(
                insert(campaigns_t)
                .values(
                    name=spec.name,
                    provider=spec.provider,
                    account=spec.account,
                    sender=spec.sender,
                    message=spec.message,
                    personalised=spec.personalised,
                    state=C.DRAFT,
                    on_unknown=spec.on_unknown,
                    ref_prefix=str(secrets.randbelow(900_000) + 100_000),
                    recipients=0,
                    rejected=0,
                    chunks=0,
                    parts=0,
                    source_file=spec.source_file,
                    rejects_file=spec.rejects_file,
                    columns=json.dumps(list(spec.columns), ensure_ascii=False),
                    send_at=spec.send_at,
                    window=spec.window,
                    created_at=now,
                    updated_at=now,
                )
                .returning(campaigns_t.c.id)
            ).scalar_one()
            n_recipients = n_chunks = n_parts = 0
            for block in blocks:
                chunk_ids = self._insert_chunks(conn, campaign_id, block, now)
                self._insert_recipients(conn, campaign_id, block, chunk_ids)
                n_recipients += len(block.recipients)
                n_chunks += len(block.chunks)
                n_parts += int(block.chunks["parts"].sum())
            n_rejected = rejected() if callable(rejected) else rejected
            if n_recipients == 0:
                raise EmptyCampaign(
                    f"no valid recipients ({n_rejected} rows rejected); see the rejects file for the reasons"
                )
            conn.execute(
                update(campaigns_t)
                .where(campaigns_t.c.id == campaign_id)
                .values(recipients=n_recipients, chunks=n_chunks, parts=n_parts, rejected=n_rejected)
            )
            if start:
                self._launch(conn, campaign_id, spec.send_at, now)
        return campaign_id

    def _insert_chunks(
        self, conn: Connection, campaign_id: int, block: PlannedBlock, now: datetime
    ) -> dict[int, int]:
        rows = [
            {
                "campaign_id": campaign_id,
                "seq": int(seq),
                "state": K.PLANNED,
                "attempt": 0,
                "size": int(size),
                "parts": int(parts),
                "updated_at": now,
            }
            for seq, size, parts in zip(
                block.chunks["seq"], block.chunks["size"], block.chunks["parts"], strict=True
            )
        ]
        result = conn.execute(
            insert(chunks_t).returning(chunks_t.c.id, chunks_t.c.seq, sort_by_parameter_order=True), rows
        )
        return {seq: cid for cid, seq in result.all()}

    def _insert_recipients(
        self, conn: Connection, campaign_id: int, block: PlannedBlock, chunk_ids: dict[int, int]
    ) -> None:
        df = block.recipients
        chunk_col = df["seq"].map(chunk_ids)
        if is_sqlite(self.engine):
            cols = (
                df["row"].tolist(),
                df["phone"].tolist(),
                df["fields"].tolist(),
                df["text"].tolist(),
                df["parts"].tolist(),
                chunk_col.tolist(),
            )
            conn.exec_driver_sql(
                "INSERT INTO recipients (campaign_id, chunk_id, row, phone, fields, text, parts, state, attempts, polls) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, 'pending', 0, 0)",
                [(campaign_id, c, r, p, f, t, n) for r, p, f, t, n, c in zip(*cols, strict=True)],
            )
            return
        # PostgreSQL: COPY in CSV form, formatted by Arrow's C++ writer rather than row by row in
        # Python (pandas' to_csv took 4.9 s of a million-row load; Arrow ~0.3 s). Arrow writes a
        # null as an empty unquoted field and an empty string as "", which is COPY's own rule.
        import pyarrow as pa
        import pyarrow.csv as pacsv

        n = len(df)
        table = pa.table(
            {
                "campaign_id": pa.array([campaign_id] * n, pa.int64()),
                "chunk_id": pa.array(chunk_col.to_numpy(dtype="int64")),
                "row": pa.array(df["row"].to_numpy(dtype="int64")),
                "phone": pa.array(df["phone"].tolist(), pa.string()),
                "fields": pa.array(df["fields"].tolist(), pa.string()),
                "text": pa.array(df["text"].tolist(), pa.string()),
                "parts": pa.array(df["parts"].to_numpy(dtype="int64")),
                "state": pa.array([str(R.PENDING)] * n, pa.string()),
                "attempts": pa.array([0] * n, pa.int64()),
                "polls": pa.array([0] * n, pa.int64()),
            }
        )
        sink = pa.BufferOutputStream()
        pacsv.write_csv(table, sink, pacsv.WriteOptions(include_header=False))
        raw = conn.connection.driver_connection
        with (
            raw.cursor() as cur,
            cur.copy(
                "COPY recipients (campaign_id, chunk_id, row, phone, fields, text, parts, state, attempts, polls) FROM STDIN WITH (FORMAT csv)"
            ) as copy,
        ):
            copy.write(sink.getvalue().to_pybytes())

    def _launch(self, conn: Connection, campaign_id: int, send_at: datetime | None, now: datetime) -> None:
        if send_at is not None and send_at > now:
            self._campaign_to(conn, campaign_id, "schedule", now)
            return
        self._campaign_to(conn, campaign_id, "start", now, started_at=now)
        self._queue_planned(conn, campaign_id, now)

    def _queue_planned(self, conn: Connection, campaign_id: int, now: datetime) -> int:
        stmt = transition(
            chunks_t, CHUNK_TRANSITIONS, "queue", now, chunks_t.c.campaign_id == campaign_id, queued_at=now
        )
        return conn.execute(stmt).rowcount

    # ---- campaign transitions --------------------------------------------------------------------
    def _campaign_to(
        self,
        conn: Connection,
        campaign_id: int,
        name: str,
        now: datetime,
        reason: str | None = None,
        **extra: Any,
    ) -> bool:
        stmt = transition(
            campaigns_t,
            CAMPAIGN_TRANSITIONS,
            name,
            now,
            campaigns_t.c.id == campaign_id,
            state_reason=reason,
            **extra,
        )
        return conn.execute(stmt).rowcount == 1

    def pause(self, campaign_id: int, reason: str = "paused by the user") -> bool:
        with self.engine.begin() as conn:
            return self._campaign_to(conn, campaign_id, "pause", utcnow(), reason)

    def resume(self, campaign_id: int) -> bool:
        """Paused -> running, or back to scheduled when its start time has not come yet."""
        now = utcnow()
        with self.engine.begin() as conn:
            row = conn.execute(
                select(campaigns_t.c.send_at, campaigns_t.c.started_at).where(campaigns_t.c.id == campaign_id)
            ).first()
            if row is None:
                return False
            if row.started_at is None and row.send_at is not None and row.send_at > now:
                return self._campaign_to(conn, campaign_id, "reschedule", now, None)
            ok = self._campaign_to(conn, campaign_id, "resume", now, None)
            if ok:
                if row.started_at is None:
                    conn.execute(
                        update(campaigns_t).where(campaigns_t.c.id == campaign_id).values(started_at=now)
                    )
                self._queue_planned(conn, campaign_id, now)
            return ok

    def cancel(self, campaign_id: int, reason: str = "cancelled by the user") -> bool:
        """Cancel the campaign and every chunk not yet handed to the provider; a chunk in flight finishes."""
        now = utcnow()
        with self.engine.begin() as conn:
            if not self._campaign_to(conn, campaign_id, "cancel", now, reason, finished_at=now):
                return False
            allowed, _ = CHUNK_TRANSITIONS["cancel"]
            cancelled = select(chunks_t.c.id).where(
                chunks_t.c.campaign_id == campaign_id, chunks_t.c.state.in_(allowed)
            )
            ids = [r[0] for r in conn.execute(cancelled)]
            if ids:
                conn.execute(transition(chunks_t, CHUNK_TRANSITIONS, "cancel", now, chunks_t.c.id.in_(ids)))
                conn.execute(
                    update(recipients_t)
                    .where(recipients_t.c.chunk_id.in_(ids), recipients_t.c.state == R.PENDING)
                    .values(state=R.CANCELLED, error=reason, updated_at=now)
                )
            return True

    def fail_campaign(self, campaign_id: int, reason: str) -> bool:
        with self.engine.begin() as conn:
            return self._campaign_to(conn, campaign_id, "fail", utcnow(), reason)

    def start_due(self, now: datetime | None = None) -> list[int]:
        """Scheduled campaigns whose time has come -> running, chunks queued. Safe to run twice."""
        now = now or utcnow()
        started: list[int] = []
        with self.engine.begin() as conn:
            due = conn.execute(
                select(campaigns_t.c.id).where(
                    campaigns_t.c.state == C.SCHEDULED, campaigns_t.c.send_at <= now
                )
            ).scalars()
            for campaign_id in list(due):
                if self._campaign_to(conn, campaign_id, "start", now, started_at=now):
                    self._queue_planned(conn, campaign_id, now)
                    started.append(campaign_id)
        return started

    def complete_finished(self, now: datetime | None = None) -> list[int]:
        """Running campaigns with nothing left in flight and no recipient awaiting a report -> completed."""
        now = now or utcnow()
        done: list[int] = []
        waiting = [R.PENDING, *AWAITING_REPORT]
        with self.engine.begin() as conn:
            running = (
                conn.execute(select(campaigns_t.c.id).where(campaigns_t.c.state == C.RUNNING)).scalars().all()
            )
            for campaign_id in running:
                busy = conn.execute(
                    select(chunks_t.c.id)
                    .where(chunks_t.c.campaign_id == campaign_id, chunks_t.c.state.in_(OPEN_CHUNK))
                    .limit(1)
                ).first()
                if busy:
                    continue
                unresolved = conn.execute(
                    select(chunks_t.c.id)
                    .where(chunks_t.c.campaign_id == campaign_id, chunks_t.c.state == K.UNKNOWN)
                    .where(
                        chunks_t.c.id.in_(
                            select(recipients_t.c.chunk_id).where(
                                recipients_t.c.campaign_id == campaign_id, recipients_t.c.state == R.PENDING
                            )
                        )
                    )
                    .limit(1)
                ).first()
                if unresolved:
                    continue
                awaiting = conn.execute(
                    select(recipients_t.c.id)
                    .where(recipients_t.c.campaign_id == campaign_id, recipients_t.c.state.in_(waiting))
                    .limit(1)
                ).first()
                if awaiting:
                    continue
                if self._campaign_to(conn, campaign_id, "complete", now, finished_at=now):
                    done.append(campaign_id)
        return done

    # ---- chunk transitions --------------------------------------------------------------------------
    def claimable_chunks(
        self, limit: int = 100, now: datetime | None = None, campaign_id: int | None = None, after_id: int = 0
    ) -> list[tuple[int, int]]:
        """(chunk id, attempt) of chunks a worker may claim now, oldest first."""
        now = now or utcnow()
        q = (
            select(chunks_t.c.id, chunks_t.c.attempt)
            .join(campaigns_t, campaigns_t.c.id == chunks_t.c.campaign_id)
            .where(campaigns_t.c.state == C.RUNNING)
            .where(
                or_(
                    chunks_t.c.state == K.QUEUED,
                    and_(chunks_t.c.state == K.RETRY, chunks_t.c.next_attempt_at <= now),
                )
            )
            .where(chunks_t.c.id > after_id)
            .order_by(chunks_t.c.id)
            .limit(limit)
        )
        if campaign_id is not None:
            q = q.where(chunks_t.c.campaign_id == campaign_id)
        with self.engine.connect() as conn:
            return [(r.id, r.attempt) for r in conn.execute(q)]

    def chunk_cost(
        self, chunk_id: int, attempt: int | None = None, now: datetime | None = None
    ) -> ChunkPeek | None:
        """What a send needs to know before its claim (rate limit, window), read without claiming.

        `claimable` is the claim's own condition, read: a message for a chunk that is already taken,
        sent, not due or whose campaign is not running is dropped before it spends rate-limit budget.
        """
        now = now or utcnow()
        with self.engine.connect() as conn:
            row = conn.execute(
                select(
                    campaigns_t.c.provider,
                    campaigns_t.c.window,
                    campaigns_t.c.state.label("campaign_state"),
                    chunks_t.c.parts,
                    chunks_t.c.state,
                    chunks_t.c.attempt,
                    chunks_t.c.next_attempt_at,
                )
                .join(campaigns_t, campaigns_t.c.id == chunks_t.c.campaign_id)
                .where(chunks_t.c.id == chunk_id)
            ).first()
        if row is None:
            return None
        due = row.state == K.QUEUED or (
            row.state == K.RETRY and row.next_attempt_at is not None and row.next_attempt_at <= now
        )
        claimable = due and row.campaign_state == C.RUNNING and (attempt is None or row.attempt == attempt)
        return ChunkPeek(row.provider, int(row.parts), row.window, claimable)

    def pause_campaign_of_chunk(self, chunk_id: int, reason: str) -> bool:
        with self.engine.begin() as conn:
            campaign_id = conn.execute(
                select(chunks_t.c.campaign_id).where(chunks_t.c.id == chunk_id)
            ).scalar_one_or_none()
            return campaign_id is not None and self._campaign_to(conn, campaign_id, "pause", utcnow(), reason)

    def running_windows(self) -> dict[int, str]:
        """Running campaigns that have a daily send window: id -> window text."""
        with self.engine.connect() as conn:
            return dict(
                conn.execute(
                    select(campaigns_t.c.id, campaigns_t.c.window).where(
                        campaigns_t.c.state == C.RUNNING, campaigns_t.c.window.is_not(None)
                    )
                ).all()
            )

    def stale_chunks(
        self,
        queued_before: datetime,
        now: datetime,
        limit: int = 5000,
        exclude_campaigns: Iterable[int] = (),
    ) -> list[tuple[int, int]]:
        """Chunks to publish again, marked as published `now` (their `queued_at`) in the same transaction.

        A queued chunk whose last message went out before `queued_before` (the broker may have lost
        it), and a due retry not published since it fell due. Marking them means each is published
        again at most once per grace period, not at every sweep: with the defaults (sweep every 5 s,
        grace 120 s) a backlog longer than the grace had every queued chunk published 24 times as
        often, up to 5,000 messages a sweep, and a throttled duplicate is re-published, not dropped.
        `exclude_campaigns` (those outside their send window) are left alone until their window opens.
        """
        c = chunks_t.c
        q = (
            select(c.id, c.attempt)
            .join(campaigns_t, campaigns_t.c.id == c.campaign_id)
            .where(campaigns_t.c.state == C.RUNNING)
            .where(
                or_(
                    and_(c.state == K.QUEUED, c.queued_at < queued_before),
                    and_(
                        c.state == K.RETRY,
                        c.next_attempt_at <= now,
                        or_(
                            c.queued_at.is_(None),
                            c.queued_at < c.next_attempt_at,
                            c.queued_at < queued_before,
                        ),
                    ),
                )
            )
            .order_by(c.id)
            .limit(limit)
        )
        excluded = list(exclude_campaigns)
        if excluded:
            q = q.where(c.campaign_id.not_in(excluded))
        with self.engine.begin() as conn:
            due = [(r.id, r.attempt) for r in conn.execute(q)]
            if due:
                ids = [i for i, _ in due]
                conn.execute(
                    update(chunks_t)
                    .where(c.id.in_(ids), c.state.in_([K.QUEUED, K.RETRY]))
                    .values(queued_at=now)
                )
            return due

    def claim_chunk(
        self, chunk_id: int, attempt: int | None, lease: timedelta, now: datetime | None = None
    ) -> ClaimedChunk | None:
        """Compare-and-set queued/retry -> sending, for a running campaign, committed before any HTTP.

        None means somebody else has it, it was already sent, its retry is not due, or the campaign
        is not running: a duplicate or stale message, and nothing to do.
        """
        now = now or utcnow()
        params = {"chunk_id": chunk_id, "now": now, "lease_until": now + lease, "attempt": attempt}
        with self.engine.begin() as conn:
            # Two round trips: the compare-and-set returns what it claimed; one joined read loads the rest.
            claimed = conn.execute(_claim_stmt(attempt is not None), params).first()
            if claimed is None:
                return None
            return self._load_claimed(conn, chunk_id, claimed)

    def _load_claimed(self, conn: Connection, chunk_id: int, claimed: Any = None) -> ClaimedChunk:
        if claimed is None:
            claimed = conn.execute(
                select(chunks_t.c.campaign_id, chunks_t.c.attempt, chunks_t.c.sending_since).where(
                    chunks_t.c.id == chunk_id
                )
            ).one()
        # The campaign's row, with the chunk's pending recipients joined to it (none: one row of NULLs).
        rows = conn.execute(_CLAIM_READ, {"campaign_id": claimed.campaign_id, "chunk_id": chunk_id}).all()
        head = rows[0]
        messages = tuple(
            OutMessage(
                r.rid, r.phone, r.text if r.text is not None else head.message, f"{head.ref_prefix}{r.rid}"
            )
            for r in rows
            if r.rid is not None
        )
        return ClaimedChunk(
            chunk_id=chunk_id,
            campaign_id=claimed.campaign_id,
            attempt=claimed.attempt,
            provider=head.provider,
            account=head.account,
            sender=head.sender,
            parts=sum(r.parts for r in rows if r.rid is not None),
            on_unknown=head.on_unknown,
            sending_since=claimed.sending_since,
            messages=messages,
        )

    def load_chunk(self, chunk_id: int) -> ClaimedChunk:
        """The chunk as a send would see it, without claiming it (reconciliation)."""
        with self.engine.connect() as conn:
            return self._load_claimed(conn, chunk_id)

    def _chunk_to(
        self,
        conn: Connection,
        chunk_id: int,
        name: str,
        now: datetime,
        attempt: int | None = None,
        *where: Any,
        **values: Any,
    ) -> bool:
        stmt = transition(chunks_t, CHUNK_TRANSITIONS, name, now, chunks_t.c.id == chunk_id, *where, **values)
        if attempt is not None:
            stmt = stmt.where(chunks_t.c.attempt == attempt)
        return conn.execute(stmt).rowcount == 1

    def record_send(
        self,
        chunk: ClaimedChunk,
        updates: Sequence[RecipientUpdate],
        *,
        requeue: bool,
        now: datetime | None = None,
    ) -> bool:
        """Write what the provider said per recipient and close the chunk, in one transaction.

        `requeue` (some recipients are known not to have gone out) puts the chunk back in the queue,
        where the next claim sends only its still-pending recipients; otherwise it is accepted.
        """
        now = now or utcnow()
        for tries_left in (2, 1, 0):
            try:
                with self.engine.begin() as conn:
                    self._apply_updates(conn, updates, now, sent=True)
                    if requeue:
                        return self._chunk_to(
                            conn,
                            chunk.chunk_id,
                            "requeue",
                            now,
                            chunk.attempt,
                            lease_until=None,
                            queued_at=now,
                        )
                    return self._chunk_to(
                        conn, chunk.chunk_id, "accept", now, chunk.attempt, lease_until=None, last_error=None
                    )
            except DBAPIError as exc:
                # The provider's reply exists only in this process: when the connection was lost (the
                # server ended a session that sat frozen in this transaction, a restart), the whole
                # transaction rolled back, and every statement in it is conditional, so write it again.
                if not exc.connection_invalidated or not tries_left:
                    raise
        raise AssertionError("unreachable")

    def chunk_retry(
        self, chunk: ClaimedChunk, error: str, delay: float, max_attempts: int, now: datetime | None = None
    ) -> ChunkState:
        """Transient failure: back off (-> `retry`), or fail the chunk once `max_attempts` sends have been
        tried (-> `failed`); returns the chunk's new state."""
        now = now or utcnow()
        with self.engine.begin() as conn:
            if chunk.attempt >= max_attempts:
                self._fail_chunk(
                    conn,
                    chunk.chunk_id,
                    f"gave up after {chunk.attempt} attempts: {error}",
                    now,
                    chunk.attempt,
                )
                return K.FAILED
            self._chunk_to(
                conn,
                chunk.chunk_id,
                "retry",
                now,
                attempt=chunk.attempt,
                next_attempt_at=now + timedelta(seconds=delay),
                lease_until=None,
                last_error=error,
            )
            return K.RETRY

    def chunk_unknown(self, chunk: ClaimedChunk, error: str, now: datetime | None = None) -> bool:
        now = now or utcnow()
        with self.engine.begin() as conn:
            return self._chunk_to(
                conn,
                chunk.chunk_id,
                "unknown",
                now,
                attempt=chunk.attempt,
                lease_until=None,
                last_error=error,
            )

    def chunk_failed(self, chunk: ClaimedChunk, error: str, now: datetime | None = None) -> bool:
        now = now or utcnow()
        with self.engine.begin() as conn:
            return self._fail_chunk(conn, chunk.chunk_id, error, now, chunk.attempt)

    def _fail_chunk(
        self, conn: Connection, chunk_id: int, error: str, now: datetime, attempt: int | None = None
    ) -> bool:
        ok = self._chunk_to(conn, chunk_id, "fail", now, attempt, lease_until=None, last_error=error)
        if ok:
            conn.execute(
                update(recipients_t)
                .where(recipients_t.c.chunk_id == chunk_id, recipients_t.c.state == R.PENDING)
                .values(state=R.FAILED, error=error, updated_at=now)
            )
        return ok

    def _requeue_sent_nothing(
        self, conn: Connection, chunk: ClaimedChunk, reason: str, now: datetime
    ) -> bool:
        """The claimed attempt sent nothing (account refusal, refused batch): back to the queue."""
        return self._chunk_to(
            conn,
            chunk.chunk_id,
            "requeue",
            now,
            chunk.attempt,
            lease_until=None,
            last_error=reason,
            queued_at=now,
        )

    def pause_for_account(self, chunk: ClaimedChunk, reason: str, now: datetime | None = None) -> bool:
        """Account-level refusal: nothing went out; the chunk goes back to the queue, the campaign pauses."""
        now = now or utcnow()
        with self.engine.begin() as conn:
            self._requeue_sent_nothing(conn, chunk, reason, now)
            # Every running campaign on the same account would hit the same wall: pause them all.
            same_account = (
                conn.execute(
                    select(campaigns_t.c.id).where(
                        campaigns_t.c.account == chunk.account, campaigns_t.c.state == C.RUNNING
                    )
                )
                .scalars()
                .all()
            )
            for campaign_id in same_account:
                self._campaign_to(conn, campaign_id, "pause", now, reason)
            return True

    def split_chunk(self, chunk: ClaimedChunk, reason: str, now: datetime | None = None) -> int | None:
        """Move the second half of a chunk's pending recipients to a new queued chunk; requeue the first.

        Used when a provider refused "a number" in a multi-number call without saying which:
        halving isolates it in log2(batch) rounds, and nothing of the refused call went out.
        """
        now = now or utcnow()
        ids = [m.recipient_id for m in chunk.messages]
        if len(ids) < 2:
            return None
        second = ids[len(ids) // 2 :]
        with self.engine.begin() as conn:
            if not self._requeue_sent_nothing(conn, chunk, reason, now):
                return None
            seq = conn.execute(select(chunks_t.c.seq).where(chunks_t.c.id == chunk.chunk_id)).scalar_one()
            parts = conn.execute(
                select(func.coalesce(func.sum(recipients_t.c.parts), 0)).where(recipients_t.c.id.in_(second))
            ).scalar_one()
            new_id = conn.execute(
                insert(chunks_t)
                .values(
                    campaign_id=chunk.campaign_id,
                    seq=seq,
                    state=K.QUEUED,
                    attempt=0,
                    size=len(second),
                    parts=int(parts),
                    queued_at=now,
                    updated_at=now,
                )
                .returning(chunks_t.c.id)
            ).scalar_one()
            conn.execute(
                update(recipients_t)
                .where(recipients_t.c.id.in_(second), recipients_t.c.state == R.PENDING)
                .values(chunk_id=new_id)
            )
            conn.execute(
                update(chunks_t)
                .where(chunks_t.c.id == chunk.chunk_id)
                .values(size=len(ids) - len(second), parts=chunks_t.c.parts - int(parts))
            )
            conn.execute(
                update(campaigns_t)
                .where(campaigns_t.c.id == chunk.campaign_id)
                .values(chunks=campaigns_t.c.chunks + 1)
            )
            return new_id

    def expire_leases(self, now: datetime | None = None) -> list[int]:
        """Chunks whose sender vanished mid-call (lease over) -> unknown: maybe sent, to be reconciled."""
        now = now or utcnow()
        with self.engine.begin() as conn:
            ids = (
                conn.execute(
                    select(chunks_t.c.id).where(chunks_t.c.state == K.SENDING, chunks_t.c.lease_until < now)
                )
                .scalars()
                .all()
            )
            lost = "the sending worker stopped before recording the outcome"
            return [
                chunk_id
                for chunk_id in ids
                if self._chunk_to(
                    conn,
                    chunk_id,
                    "unknown",
                    now,
                    None,
                    chunks_t.c.lease_until < now,
                    lease_until=None,
                    last_error=lost,
                )
            ]

    def unknown_chunks(self, limit: int = 100, campaign_id: int | None = None) -> list[int]:
        """Unknown chunks that still have pending recipients: reconciliation's work list."""
        q = (
            select(chunks_t.c.id)
            .where(chunks_t.c.state == K.UNKNOWN)
            .where(
                chunks_t.c.id.in_(select(recipients_t.c.chunk_id).where(recipients_t.c.state == R.PENDING))
            )
            .order_by(chunks_t.c.id)
            .limit(limit)
        )
        if campaign_id is not None:
            q = q.where(chunks_t.c.campaign_id == campaign_id)
        with self.engine.connect() as conn:
            return list(conn.execute(q).scalars())

    def _still_unknown(self, conn: Connection, chunk: ClaimedChunk) -> bool:
        """Lock the chunk's row and check it is still `unknown` at the attempt reconciliation examined.

        Beat asks about an unknown chunk every sweep, so two reconciliations can overlap; once the
        first has re-queued the chunk and a worker has claimed it, the late one must change nothing.
        (PostgreSQL: FOR UPDATE reads the newest committed row; SQLite: BEGIN IMMEDIATE serialises.)
        """
        row = conn.execute(
            select(chunks_t.c.state, chunks_t.c.attempt)
            .where(chunks_t.c.id == chunk.chunk_id)
            .with_for_update()
        ).first()
        return row is not None and row.state == K.UNKNOWN and row.attempt == chunk.attempt

    def record_reconciled(
        self,
        chunk: ClaimedChunk,
        updates: Sequence[RecipientUpdate],
        *,
        requeue: bool,
        now: datetime | None = None,
    ) -> bool:
        """Reconciliation's verdict: found ones recorded; if the rest is known unsent, queue them again.

        Applies only to a chunk still `unknown`; a verdict reached about a chunk that has since been
        queued again or is being sent (a duplicate reconcile message) changes nothing.
        """
        now = now or utcnow()
        with self.engine.begin() as conn:
            if not self._still_unknown(conn, chunk):
                return False
            self._apply_updates(conn, updates, now, sent=True)
            pending = conn.execute(
                select(func.count())
                .select_from(recipients_t)
                .where(recipients_t.c.chunk_id == chunk.chunk_id, recipients_t.c.state == R.PENDING)
            ).scalar_one()
            if pending == 0:
                return self._chunk_to(conn, chunk.chunk_id, "reconciled", now, chunk.attempt, last_error=None)
            if requeue:
                return self._chunk_to(conn, chunk.chunk_id, "resend", now, chunk.attempt, queued_at=now)
            return False

    def resend_unknown(self, chunk: ClaimedChunk, reason: str, now: datetime | None = None) -> bool:
        """Policy 'resend': the provider cannot tell, and the campaign chose to send the rest again."""
        now = now or utcnow()
        with self.engine.begin() as conn:
            return self._still_unknown(conn, chunk) and self._chunk_to(
                conn, chunk.chunk_id, "resend", now, chunk.attempt, last_error=reason, queued_at=now
            )

    def hold_unknown(self, chunk: ClaimedChunk, reason: str, now: datetime | None = None) -> int:
        """Policy 'hold': the chunk's pending recipients become `unknown` with the reason, for a person to decide."""
        now = now or utcnow()
        with self.engine.begin() as conn:
            if not self._still_unknown(conn, chunk):
                return 0
            return conn.execute(
                update(recipients_t)
                .where(recipients_t.c.chunk_id == chunk.chunk_id, recipients_t.c.state == R.PENDING)
                .values(state=R.UNKNOWN, error=reason, updated_at=now)
            ).rowcount

    # ---- recipients ----------------------------------------------------------------------------------
    def _apply_updates(
        self, conn: Connection, updates: Sequence[RecipientUpdate], now: datetime, *, sent: bool
    ) -> int:
        """Record many recipients' new facts with ONE set-based `UPDATE recipients … FROM <rows>`.

        Only rows still in the transition's allowed-from states are written (a send result only to
        `pending` rows). The rows travel as parallel arrays (`unnest`, PostgreSQL) or one JSON
        document (`json_each`, SQLite), so the statement text never changes and is compiled once.
        Returns how many rows were written.
        """
        if not updates:
            return 0
        sqlite = conn.dialect.name == "sqlite"
        stmt = _recipient_update_stmt(sqlite, sent)
        if sqlite:
            params: dict[str, Any] = {"rows": _rows_json(updates)}
        else:
            params = {
                "ids": [u.recipient_id for u in updates],
                "states": [str(u.state) for u in updates],
                "mids": [u.provider_message_id for u in updates],
                "codes": [u.provider_status for u in updates],
                "errors": [u.error for u in updates],
                "nexts": [u.next_poll_at for u in updates],
                "delivereds": [u.delivered_at for u in updates],
            }
        params["now"] = now
        return conn.execute(stmt, params).rowcount

    def due_polls(self, limit: int = 1000, now: datetime | None = None) -> list[DuePoll]:
        """Recipients due a status check (a read only; `claim_due_polls` is what pollers use)."""
        now = now or utcnow()
        r = recipients_t.c
        q = (
            select(r.id)
            .where(r.next_poll_at <= now, _awaiting_report(r.state))
            .order_by(r.next_poll_at)
            .limit(limit)
        )
        with self.engine.connect() as conn:
            return self._polls_of(conn, list(conn.execute(q).scalars()))

    def claim_due_polls(self, limit: int, lease: timedelta, now: datetime | None = None) -> list[DuePoll]:
        """Claim up to `limit` recipients due a status check: their `next_poll_at` moves `lease` ahead.

        One statement: `UPDATE … WHERE id IN (SELECT … ORDER BY next_poll_at LIMIT n FOR UPDATE SKIP
        LOCKED) RETURNING …`, committed before any HTTP. Two pollers (workers, overlapping beat ticks)
        therefore never hold the same recipient: PostgreSQL skips rows another claim has locked, and
        re-checks `next_poll_at` on a row another claim changed since its snapshot; SQLite's BEGIN
        IMMEDIATE serialises the claims.
        A claim whose poller vanished simply falls due again when the lease is over.
        """
        now = now or utcnow()
        r = recipients_t.c
        due = (
            select(r.id)
            .where(r.next_poll_at <= now, _awaiting_report(r.state))
            .order_by(r.next_poll_at)
            .limit(limit)
            .with_for_update(skip_locked=True)
        )
        stmt = (
            update(recipients_t)
            .where(r.id.in_(due.scalar_subquery()))
            .values(next_poll_at=now + lease)
            .returning(r.id, r.campaign_id, r.provider_message_id, r.sent_at, r.polls)
        )
        with self.engine.begin() as conn:
            if conn.dialect.name == "postgresql":
                # Walk ix_recipients_due_poll in next_poll_at order and stop at the LIMIT. Right after a
                # campaign's sends the statistics are stale, and the planner bitmap-scanned and sorted
                # every due row for each claim instead (measured: 42 -> 17 ms for 10,000 of 100,000 due).
                conn.execute(_INDEX_ORDER_ONLY)
            rows = conn.execute(stmt).all()
            campaigns = self._campaign_accounts(conn, {x.campaign_id for x in rows})
        out = [
            DuePoll(x.id, x.campaign_id, *campaigns[x.campaign_id], x.provider_message_id, x.sent_at, x.polls)
            for x in rows
        ]
        return sorted(out, key=lambda d: (d.provider, d.account, d.message_id or "", d.recipient_id))

    def polls_of(self, recipient_ids: Sequence[int]) -> list[DuePoll]:
        """The recipients of a claimed poll batch that still await a report (a `poll_batch` task's ids)."""
        with self.engine.connect() as conn:
            return self._polls_of(conn, recipient_ids)

    def _polls_of(self, conn: Connection, recipient_ids: Sequence[int]) -> list[DuePoll]:
        if not recipient_ids:
            return []
        r, c = recipients_t.c, campaigns_t.c
        if conn.dialect.name == "sqlite":
            by_id = r.id.in_(list(recipient_ids))
        else:  # one array parameter: the same statement text (and server-side plan) for every batch
            by_id = r.id == any_(bindparam("ids", list(recipient_ids), type_=ARRAY(BigInteger)))
        rows = conn.execute(
            select(r.id, r.campaign_id, c.provider, c.account, r.provider_message_id, r.sent_at, r.polls)
            .join(campaigns_t, c.id == r.campaign_id)
            .where(by_id, _awaiting_report(r.state))
        ).all()
        out = [DuePoll(*x) for x in rows]
        return sorted(out, key=lambda d: (d.provider, d.account, d.message_id or "", d.recipient_id))

    @staticmethod
    def _campaign_accounts(conn: Connection, ids: set[int]) -> dict[int, tuple[str, str]]:
        if not ids:
            return {}
        c = campaigns_t.c
        rows = conn.execute(select(c.id, c.provider, c.account).where(c.id.in_(list(ids))))
        return {x.id: (x.provider, x.account) for x in rows}

    def record_statuses(self, updates: Sequence[RecipientUpdate], now: datetime | None = None) -> int:
        """One poll batch's answers, with ONE set-based UPDATE; returns how many rows were written."""
        now = now or utcnow()
        with self.engine.begin() as conn:
            return self._apply_updates(conn, updates, now, sent=False)

    def record_poll_retries(
        self,
        recipient_ids: Sequence[int],
        next_poll_at: datetime,
        code: str | None,
        now: datetime | None = None,
    ) -> int:
        """Recipients whose status call got no answer (a transient failure, "asked too early"): asked
        again at `next_poll_at`, their state and poll count (their rung of the ladder) unchanged, the
        provider's code kept when given. Only rows still awaiting a report; returns how many."""
        if not recipient_ids:
            return 0
        now = now or utcnow()
        r = recipients_t.c
        values: dict[str, Any] = {"next_poll_at": next_poll_at, "updated_at": now}
        if code is not None:
            values["provider_status"] = code
        with self.engine.begin() as conn:
            return conn.execute(
                update(recipients_t)
                .where(r.id.in_(list(recipient_ids)), r.state.in_(list(AWAITING_REPORT)))
                .values(**values)
            ).rowcount

    def next_poll_time(self, campaign_id: int | None = None) -> datetime | None:
        """The earliest next delivery check (of one campaign, or of all), None when nothing awaits one."""
        r = recipients_t.c
        q = select(func.min(r.next_poll_at)).where(r.state.in_(list(AWAITING_REPORT)))
        if campaign_id is not None:
            q = q.where(r.campaign_id == campaign_id)
        with self.engine.connect() as conn:
            return conn.execute(q).scalar_one()

    # ---- suppression list -----------------------------------------------------------------------------
    def suppress(self, phones: Iterable[str], reason: str) -> int:
        """Add numbers (E.164) with one reason; numbers already listed keep theirs. Returns how many were new."""
        with self.engine.begin() as conn:
            return self._add_suppressions(conn, {p: reason for p in phones}, utcnow())

    def unsuppress(self, phones: Iterable[str]) -> int:
        """Take numbers off the list (the person asked to hear from us again); returns how many were listed."""
        wanted = list(set(phones))
        if not wanted:
            return 0
        with self.engine.begin() as conn:
            return conn.execute(suppressions_t.delete().where(suppressions_t.c.phone.in_(wanted))).rowcount

    def suppressed(self) -> dict[str, str]:
        """phone -> reason, for the loader (which writes the reason into the rejects file)."""
        with self.engine.connect() as conn:
            return dict(conn.execute(select(suppressions_t.c.phone, suppressions_t.c.reason)).all())

    def suppressions(self) -> list[SuppressionView]:
        with self.engine.connect() as conn:
            rows = conn.execute(
                select(suppressions_t).order_by(suppressions_t.c.created_at, suppressions_t.c.phone)
            )
            return [SuppressionView(r.phone, r.reason, r.created_at) for r in rows]

    def inbox_cursor(self, account: str) -> str | None:
        """How far the opt-out collector has read this account's inbox; None before its first pass."""
        with self.engine.connect() as conn:
            return conn.execute(
                select(inbox_cursors_t.c.cursor).where(inbox_cursors_t.c.account == account)
            ).scalar_one_or_none()

    def record_optouts(
        self, account: str, provider: str, optouts: Mapping[str, str], cursor: str, *, previous: str | None
    ) -> int | None:
        """Add the opt-outs (phone -> reason) and move the account's cursor from `previous` to `cursor`, in one
        transaction. The move is a compare-and-set: when another pass moved the cursor first, nothing is
        written and None is returned (that pass read the same replies, or the next one will). Else the
        number of new suppressions."""
        now = utcnow()
        c = inbox_cursors_t.c
        try:
            with self.engine.begin() as conn:
                if previous is None:
                    conn.execute(
                        insert(inbox_cursors_t).values(
                            account=account, provider=provider, cursor=cursor, updated_at=now
                        )
                    )
                else:
                    moved = conn.execute(
                        update(inbox_cursors_t)
                        .where(c.account == account, c.cursor == previous)
                        .values(cursor=cursor, updated_at=now)
                    ).rowcount
                    if moved != 1:
                        raise _CursorMoved()
                return self._add_suppressions(conn, optouts, now)
        except (_CursorMoved, IntegrityError):
            return None

    def _add_suppressions(self, conn: Connection, reasons: Mapping[str, str], now: datetime) -> int:
        if not reasons:
            return 0
        phones = list(reasons)
        listed = set(
            conn.execute(select(suppressions_t.c.phone).where(suppressions_t.c.phone.in_(phones))).scalars()
        )
        rows = [{"phone": p, "reason": reasons[p], "created_at": now} for p in phones if p not in listed]
        if rows:  # ON CONFLICT DO NOTHING: a concurrent pass adding the same number is not an error
            dialect_insert = sqlite_insert if is_sqlite(self.engine) else pg_insert
            conn.execute(dialect_insert(suppressions_t).on_conflict_do_nothing(), rows)
        return len(rows)

    # ---- reading --------------------------------------------------------------------------------------
    def campaign(self, campaign_id: int) -> CampaignView | None:
        with self.engine.connect() as conn:
            row = conn.execute(select(campaigns_t).where(campaigns_t.c.id == campaign_id)).first()
            if row is None:
                return None
            counts = dict(
                conn.execute(
                    select(recipients_t.c.state, func.count())
                    .where(recipients_t.c.campaign_id == campaign_id)
                    .group_by(recipients_t.c.state)
                ).all()
            )
            chunk_counts = dict(
                conn.execute(
                    select(chunks_t.c.state, func.count())
                    .where(chunks_t.c.campaign_id == campaign_id)
                    .group_by(chunks_t.c.state)
                ).all()
            )
            reported_failed = 0
            if counts.get(R.FAILED) or counts.get(R.BLACKLISTED):
                # failed/blacklisted by a delivery report (recorded by a poll), not refused or failed before sending
                reported_failed = conn.execute(
                    select(func.count())
                    .select_from(recipients_t)
                    .where(
                        recipients_t.c.campaign_id == campaign_id,
                        recipients_t.c.state.in_([R.FAILED, R.BLACKLISTED]),
                        recipients_t.c.polls > 0,
                    )
                ).scalar_one()
        view = _view(row, counts, chunk_counts)
        view.reported_failed = reported_failed
        return view

    def campaign_state(self, campaign_id: int) -> tuple[str, str | None]:
        """(state, reason) alone: what loops ask every tick, without counting recipients."""
        with self.engine.connect() as conn:
            row = conn.execute(
                select(campaigns_t.c.state, campaigns_t.c.state_reason).where(campaigns_t.c.id == campaign_id)
            ).one()
        return row.state, row.state_reason

    def chunk_counts(self, campaign_id: int) -> dict[str, int]:
        with self.engine.connect() as conn:
            return dict(
                conn.execute(
                    select(chunks_t.c.state, func.count())
                    .where(chunks_t.c.campaign_id == campaign_id)
                    .group_by(chunks_t.c.state)
                ).all()
            )

    def sending_open(self, campaign_id: int) -> int:
        """Chunks of the campaign with sending still ahead (OPEN_CHUNK), plus unknown ones awaiting reconciliation."""
        counts = self.chunk_counts(campaign_id)
        return sum(counts.get(s, 0) for s in OPEN_CHUNK) + len(self.unknown_chunks(campaign_id=campaign_id))

    def campaigns(self) -> list[CampaignView]:
        with self.engine.connect() as conn:
            rows = conn.execute(select(campaigns_t).order_by(campaigns_t.c.id)).all()
        return [_view(r, {}, {}) for r in rows]

    def recipients_rows(self, campaign_id: int, batch: int = 10_000) -> Iterable[dict[str, Any]]:
        """Every recipient of a campaign in id order, streamed for reports."""
        r = recipients_t.c
        last = 0
        while True:
            with self.engine.connect() as conn:
                rows = conn.execute(
                    select(
                        r.id,
                        r.row,
                        r.phone,
                        r.state,
                        r.provider_message_id,
                        r.provider_status,
                        r.error,
                        r.sent_at,
                        r.delivered_at,
                        r.fields,
                        r.updated_at,
                    )
                    .where(r.campaign_id == campaign_id, r.id > last)
                    .order_by(r.id)
                    .limit(batch)
                ).all()
            if not rows:
                return
            for row in rows:
                yield dict(row._mapping)
            last = rows[-1].id

    def recipient_states(self, campaign_id: int) -> dict[str, str]:
        """phone -> state, for tests and small reports."""
        with self.engine.connect() as conn:
            return dict(
                conn.execute(
                    select(recipients_t.c.phone, recipients_t.c.state).where(
                        recipients_t.c.campaign_id == campaign_id
                    )
                ).all()
            )

    def unfinished(self, campaign_id: int) -> int:
        """Recipients not yet in a final state nor held as unknown."""
        with self.engine.connect() as conn:
            return conn.execute(
                select(func.count())
                .select_from(recipients_t)
                .where(
                    recipients_t.c.campaign_id == campaign_id,
                    recipients_t.c.state.not_in([*FINAL_RECIPIENT, R.UNKNOWN]),
                )
            ).scalar_one()

    def sent_since(self, campaign_id: int, since: datetime) -> int:
        """Recipients whose send was recorded at or after `since`: the rate's sample.

        One count over the partial index ix_recipients_campaign_sent (campaign_id, sent_at): it reads
        only the index entries of the last minutes, not the campaign's rows.
        """
        r = recipients_t.c
        with self.engine.connect() as conn:
            return conn.execute(
                select(func.count())
                .select_from(recipients_t)
                .where(r.campaign_id == campaign_id, r.sent_at >= since)
            ).scalar_one()

    def next_retry(self, campaign_id: int) -> tuple[int, datetime | None, str | None]:
        """(chunks in retry, the earliest next attempt, that chunk's last error) of a campaign."""
        k = chunks_t.c
        in_retry = and_(k.campaign_id == campaign_id, k.state == K.RETRY)
        with self.engine.connect() as conn:
            n = conn.execute(select(func.count()).select_from(chunks_t).where(in_retry)).scalar_one()
            first = conn.execute(
                select(k.next_attempt_at, k.last_error).where(in_retry).order_by(k.next_attempt_at).limit(1)
            ).first()
        return (n, first.next_attempt_at, first.last_error) if first else (0, None, None)

    def timeline_rows(
        self, campaign_id: int, batch: int = 50_000
    ) -> Iterable[tuple[str, datetime | None, datetime | None, datetime | None]]:
        """(state, sent_at, delivered_at, updated_at) of every recipient, streamed in id order (charts)."""
        r = recipients_t.c
        last = 0
        while True:
            with self.engine.connect() as conn:
                rows = conn.execute(
                    select(r.id, r.state, r.sent_at, r.delivered_at, r.updated_at)
                    .where(r.campaign_id == campaign_id, r.id > last)
                    .order_by(r.id)
                    .limit(batch)
                ).all()
            if not rows:
                return
            for row in rows:
                yield row.state, row.sent_at, row.delivered_at, row.updated_at
            last = rows[-1].id


def _view(row: Any, counts: dict[str, int], chunk_counts: dict[str, int]) -> CampaignView:
    return CampaignView(
        id=row.id,
        name=row.name,
        provider=row.provider,
        state=row.state,
        state_reason=row.state_reason,
        recipients=row.recipients,
        rejected=row.rejected,
        chunks=row.chunks,
        parts=row.parts,
        rejects_file=row.rejects_file,
        source_file=row.source_file,
        columns=json.loads(row.columns or "[]"),
        sender=row.sender,
        message=row.message,
        on_unknown=row.on_unknown,
        send_at=row.send_at,
        window=row.window,
        created_at=row.created_at,
        started_at=row.started_at,
        finished_at=row.finished_at,
        counts=counts,
        chunk_counts=chunk_counts,
    )
