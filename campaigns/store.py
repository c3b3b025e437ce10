"""The store: campaign creation in one transaction, and every state transition, written once.

Each transition is one conditional `UPDATE … WHERE state IN (allowed) [AND attempt = :a]` inside a
transaction, reading its allowed-from set from `campaigns.states`; it returns whether it applied.
Nobody else writes a state column. The database is the source of truth; brokers and thread pools
only say "look at chunk N".
"""

from __future__ import annotations

import json
import secrets
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, and_, bindparam, func, insert, or_, select, text, update
from sqlalchemy.engine import Engine

from campaigns.db import is_sqlite, make_engine
from campaigns.models import Campaign, Chunk, Recipient, Suppression
from campaigns.plan import PlannedBlock
from campaigns.states import (
    AWAITING_REPORT,
    CAMPAIGN_TRANSITIONS,
    CHUNK_TRANSITIONS,
    FINAL_RECIPIENT,
    OPEN_CHUNK,
    CampaignState,
    ChunkState,
    RecipientState,
)

campaigns_t = Campaign.__table__
chunks_t = Chunk.__table__
recipients_t = Recipient.__table__
suppressions_t = Suppression.__table__

C, K, R = CampaignState, ChunkState, RecipientState
MIGRATIONS = Path(__file__).parent / "migrations"


def utcnow() -> datetime:
    return datetime.now(UTC)


def transition(
    table: Any, transitions: dict[str, Any], name: str, now: datetime, *where: Any, **values: Any
) -> Any:
    """`UPDATE table SET state = <to> … WHERE state IN (<allowed from>) AND <where>`, from the table in states.py.

    Every state change in the store is one of these statements, single-row or set-based.
    """
    allowed, to = transitions[name]
    return update(table).where(table.c.state.in_(allowed), *where).values(state=to, updated_at=now, **values)


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

    def chunk_cost(self, chunk_id: int) -> tuple[str, int, str | None] | None:
        """(provider, SMS parts, send window) of a chunk, read without a claim (rate limit, window)."""
        with self.engine.connect() as conn:
            row = conn.execute(
                select(campaigns_t.c.provider, chunks_t.c.parts, campaigns_t.c.window)
                .join(campaigns_t, campaigns_t.c.id == chunks_t.c.campaign_id)
                .where(chunks_t.c.id == chunk_id)
            ).first()
        return None if row is None else (row.provider, int(row.parts), row.window)

    def pause_campaign_of_chunk(self, chunk_id: int, reason: str) -> bool:
        with self.engine.begin() as conn:
            campaign_id = conn.execute(
                select(chunks_t.c.campaign_id).where(chunks_t.c.id == chunk_id)
            ).scalar_one_or_none()
            return campaign_id is not None and self._campaign_to(conn, campaign_id, "pause", utcnow(), reason)

    def stale_chunks(
        self, queued_before: datetime, now: datetime, limit: int = 5000
    ) -> list[tuple[int, int]]:
        """Chunks to publish again, marked as published `now` (their `queued_at`) in the same transaction.

        A queued chunk whose last message went out before `queued_before` (the broker may have lost
        it), and a due retry not published since it fell due. Marking them means each is published
        again at most once per grace period, not at every sweep: with the defaults (sweep every 5 s,
        grace 120 s) a backlog longer than the grace had every queued chunk published 24 times as
        often, up to 5,000 messages a sweep, and a throttled duplicate is re-published, not dropped.
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
        running = select(campaigns_t.c.id).where(campaigns_t.c.state == C.RUNNING)
        stmt = transition(
            chunks_t,
            CHUNK_TRANSITIONS,
            "claim",
            now,
            chunks_t.c.id == chunk_id,
            or_(chunks_t.c.state == K.QUEUED, chunks_t.c.next_attempt_at <= now),  # a retry only when due
            chunks_t.c.campaign_id.in_(running),
            attempt=chunks_t.c.attempt + 1,
            lease_until=now + lease,
            sending_since=now,
        )
        if attempt is not None:
            stmt = stmt.where(chunks_t.c.attempt == attempt)
        with self.engine.begin() as conn:
            if conn.execute(stmt).rowcount != 1:
                return None
            return self._load_claimed(conn, chunk_id)

    def _load_claimed(self, conn: Connection, chunk_id: int) -> ClaimedChunk:
        row = conn.execute(
            select(
                chunks_t.c.id,
                chunks_t.c.campaign_id,
                chunks_t.c.attempt,
                chunks_t.c.sending_since,
                campaigns_t.c.provider,
                campaigns_t.c.account,
                campaigns_t.c.sender,
                campaigns_t.c.message,
                campaigns_t.c.ref_prefix,
                campaigns_t.c.on_unknown,
            )
            .join(campaigns_t, campaigns_t.c.id == chunks_t.c.campaign_id)
            .where(chunks_t.c.id == chunk_id)
        ).one()
        recips = conn.execute(
            select(recipients_t.c.id, recipients_t.c.phone, recipients_t.c.text, recipients_t.c.parts)
            .where(recipients_t.c.chunk_id == chunk_id, recipients_t.c.state == R.PENDING)
            .order_by(recipients_t.c.id)
        ).all()
        messages = tuple(
            OutMessage(
                r.id, r.phone, r.text if r.text is not None else row.message, f"{row.ref_prefix}{r.id}"
            )
            for r in recips
        )
        return ClaimedChunk(
            chunk_id=row.id,
            campaign_id=row.campaign_id,
            attempt=row.attempt,
            provider=row.provider,
            account=row.account,
            sender=row.sender,
            parts=sum(r.parts for r in recips),
            on_unknown=row.on_unknown,
            sending_since=row.sending_since,
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
        with self.engine.begin() as conn:
            self._apply_updates(conn, updates, now, sent=True)
            if requeue:
                return self._chunk_to(conn, chunk.chunk_id, "requeue", now, lease_until=None, queued_at=now)
            return self._chunk_to(conn, chunk.chunk_id, "accept", now, lease_until=None, last_error=None)

    def chunk_retry(
        self, chunk: ClaimedChunk, error: str, delay: float, max_attempts: int, now: datetime | None = None
    ) -> str:
        """Transient failure: back off, or fail the chunk once `max_attempts` sends have been tried."""
        now = now or utcnow()
        with self.engine.begin() as conn:
            if chunk.attempt >= max_attempts:
                self._fail_chunk(
                    conn, chunk.chunk_id, f"gave up after {chunk.attempt} attempts: {error}", now
                )
                return "failed"
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
            return "retry"

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
            return self._fail_chunk(conn, chunk.chunk_id, error, now)

    def _fail_chunk(self, conn: Connection, chunk_id: int, error: str, now: datetime) -> bool:
        ok = self._chunk_to(conn, chunk_id, "fail", now, lease_until=None, last_error=error)
        if ok:
            conn.execute(
                update(recipients_t)
                .where(recipients_t.c.chunk_id == chunk_id, recipients_t.c.state == R.PENDING)
                .values(state=R.FAILED, error=error, updated_at=now)
            )
        return ok

    def pause_for_account(self, chunk: ClaimedChunk, reason: str, now: datetime | None = None) -> bool:
        """Account-level refusal: nothing went out; the chunk goes back to the queue, the campaign pauses."""
        now = now or utcnow()
        with self.engine.begin() as conn:
            self._chunk_to(
                conn, chunk.chunk_id, "requeue", now, lease_until=None, last_error=reason, queued_at=now
            )
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

    def requeue_chunk(
        self,
        chunk_id: int,
        reason: str | None = None,
        now: datetime | None = None,
        attempt: int | None = None,
    ) -> bool:
        """The `resend` policy: an `unknown` chunk back to the queue. Only from `unknown` (and, given
        `attempt`, the same episode): a duplicate or late reconcile of a chunk already queued again, or
        being sent, must not reopen it mid-send."""
        now = now or utcnow()
        with self.engine.begin() as conn:
            return self._chunk_to(
                conn,
                chunk_id,
                "requeue",
                now,
                attempt,
                chunks_t.c.state == K.UNKNOWN,
                lease_until=None,
                last_error=reason,
                queued_at=now,
            )

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
            if not self._chunk_to(
                conn, chunk.chunk_id, "requeue", now, lease_until=None, last_error=reason, queued_at=now
            ):
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
            if not self._still_unknown(conn, chunk.chunk_id, chunk.attempt):
                return False
            self._apply_updates(conn, updates, now, sent=True)
            pending = conn.execute(
                select(func.count())
                .select_from(recipients_t)
                .where(recipients_t.c.chunk_id == chunk.chunk_id, recipients_t.c.state == R.PENDING)
            ).scalar_one()
            if pending == 0:
                return self._chunk_to(conn, chunk.chunk_id, "accept", now, last_error=None)
            if requeue:
                return self._chunk_to(conn, chunk.chunk_id, "requeue", now, queued_at=now)
            return False

    def _still_unknown(self, conn: Connection, chunk_id: int, attempt: int | None) -> bool:
        """Lock the chunk's row for this transaction (PostgreSQL; SQLite's BEGIN IMMEDIATE already
        serialises writers) and say whether it is still `unknown`, the only state reconciliation acts on,
        and (given `attempt`) still from the send reconciliation looked at, not from a later one."""
        row = conn.execute(
            select(chunks_t.c.state, chunks_t.c.attempt).where(chunks_t.c.id == chunk_id).with_for_update()
        ).first()
        return row is not None and row.state == K.UNKNOWN and attempt in (None, row.attempt)

    def hold_unknown(
        self, chunk_id: int, reason: str, now: datetime | None = None, attempt: int | None = None
    ) -> int:
        """Policy 'hold': the chunk's pending recipients become `unknown` with the reason, for a person to decide.

        Only while the chunk is `unknown` (not once it was queued again and is being sent).
        """
        now = now or utcnow()
        with self.engine.begin() as conn:
            if not self._still_unknown(conn, chunk_id, attempt):
                return 0
            return conn.execute(
                update(recipients_t)
                .where(recipients_t.c.chunk_id == chunk_id, recipients_t.c.state == R.PENDING)
                .values(state=R.UNKNOWN, error=reason, updated_at=now)
            ).rowcount

    # ---- recipients ----------------------------------------------------------------------------------
    def _apply_updates(
        self, conn: Connection, updates: Sequence[RecipientUpdate], now: datetime, *, sent: bool
    ) -> None:
        if not updates:
            return
        r = recipients_t.c
        values: dict[str, Any] = {
            "state": bindparam("u_state"),
            "provider_message_id": func.coalesce(bindparam("u_mid"), r.provider_message_id),
            "provider_status": func.coalesce(bindparam("u_code"), r.provider_status),
            "error": bindparam("u_error"),
            "next_poll_at": bindparam("u_next"),
            "delivered_at": func.coalesce(bindparam("u_delivered"), r.delivered_at),
            "updated_at": now,
        }
        if sent:
            values["sent_at"] = now
            values["attempts"] = r.attempts + 1
            # A send's messages were pending when claimed; one now `unknown` was held while its sender
            # was silent (lease over, provider that cannot be asked): the reply, however late, is the fact.
            allowed = [R.PENDING, R.UNKNOWN]
        else:
            values["polls"] = r.polls + 1
            allowed = list(AWAITING_REPORT) + [R.UNKNOWN]
        # or_ of equalities, not IN: an expanding IN cannot be used with executemany.
        stmt = (
            update(recipients_t)
            .where(r.id == bindparam("u_id"), or_(*(r.state == str(a) for a in allowed)))
            .values(**values)
        )
        conn.execute(
            stmt,
            [
                {
                    "u_id": u.recipient_id,
                    "u_state": str(u.state),
                    "u_mid": u.provider_message_id,
                    "u_code": u.provider_status,
                    "u_error": u.error,
                    "u_next": u.next_poll_at,
                    "u_delivered": u.delivered_at,
                }
                for u in updates
            ],
        )

    def due_polls(self, limit: int = 1000, now: datetime | None = None) -> list[DuePoll]:
        now = now or utcnow()
        r = recipients_t.c
        q = (
            select(
                r.id,
                r.campaign_id,
                r.provider_message_id,
                r.sent_at,
                r.polls,
                campaigns_t.c.provider,
                campaigns_t.c.account,
            )
            .join(campaigns_t, campaigns_t.c.id == r.campaign_id)
            .where(r.next_poll_at <= now, r.state.in_(list(AWAITING_REPORT)))
            .order_by(r.next_poll_at)
            .limit(limit)
        )
        with self.engine.connect() as conn:
            return [
                DuePoll(x.id, x.campaign_id, x.provider, x.account, x.provider_message_id, x.sent_at, x.polls)
                for x in conn.execute(q)
            ]

    def record_statuses(self, updates: Sequence[RecipientUpdate], now: datetime | None = None) -> None:
        now = now or utcnow()
        with self.engine.begin() as conn:
            self._apply_updates(conn, updates, now, sent=False)

    def next_poll_time(self) -> datetime | None:
        with self.engine.connect() as conn:
            return conn.execute(
                select(func.min(recipients_t.c.next_poll_at)).where(
                    recipients_t.c.state.in_(list(AWAITING_REPORT))
                )
            ).scalar_one()

    # ---- suppression list -----------------------------------------------------------------------------
    def suppress(self, phones: Iterable[str], reason: str) -> int:
        now = utcnow()
        added = 0
        with self.engine.begin() as conn:
            existing = set(conn.execute(select(suppressions_t.c.phone)).scalars())
            rows = [{"phone": p, "reason": reason, "created_at": now} for p in set(phones) - existing]
            if rows:
                conn.execute(insert(suppressions_t), rows)
                added = len(rows)
        return added

    def suppressed(self) -> set[str]:
        with self.engine.connect() as conn:
            return set(conn.execute(select(suppressions_t.c.phone)).scalars())

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
        return _view(row, counts, chunk_counts)

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
