"""The `Store` facade: it owns the engine, and each method is one connection or one transaction around
a function of the module for its concern (create, lifecycle, queue, sending, reconcile, polling,
suppressions, reads). The clock is read here, at the edge: the functions take `now` as an argument.

Each transition is one conditional `UPDATE … WHERE state IN (allowed) [AND attempt = :a]` inside a
transaction, reading its allowed-from set from `campaigns.states`; it returns whether it applied.
Nobody else writes a state column. The database is the source of truth; brokers and thread pools
only say "look at chunk N".
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, Concatenate, ParamSpec, TypeVar

from sqlalchemy import Connection, text
from sqlalchemy.engine import Engine
from sqlalchemy.exc import IntegrityError

from campaigns.clock import utcnow
from campaigns.db import make_engine
from campaigns.plan import PlannedBlock
from campaigns.records import (
    CampaignSpec,
    CampaignView,
    Cancelled,
    ChunkPeek,
    ClaimedChunk,
    DuePoll,
    RecipientUpdate,
    Reconciliation,
    RetryVerdict,
    SuppressionView,
)
from campaigns.states import CampaignTransition
from campaigns.store import (
    caps,
    create,
    lifecycle,
    polling,
    queue,
    reads,
    reconcile,
    sending,
    suppressions,
)
from campaigns.store.contacts import ContactLedger
from campaigns.store.facade_counts import CountMethods
from campaigns.store.facade_failover import FailoverMethods
from campaigns.store.facade_identity import IdentityMethods
from campaigns.store.facade_send import SendMethods
from campaigns.store.transitions import apply_updates, campaign_to

MIGRATIONS = Path(__file__).parent.parent / "migrations"
P = ParamSpec("P")
T = TypeVar("T")


class Store(SendMethods, FailoverMethods, IdentityMethods, CountMethods):
    """The campaigns database (SQLite or PostgreSQL). Times are aware UTC datetimes; `now` defaults to
    the clock. Methods that change state return whether the transition applied."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    @classmethod
    def from_url(cls, url: str) -> Store:
        return cls(make_engine(url))

    def _write(self, fn: Callable[Concatenate[Connection, P], T], *args: P.args, **kwargs: P.kwargs) -> T:
        """`fn` in one transaction: committed when it returns, rolled back whole when it raises."""
        with self.engine.begin() as conn:
            return fn(conn, *args, **kwargs)

    def _read(self, fn: Callable[Concatenate[Connection, P], T], *args: P.args, **kwargs: P.kwargs) -> T:
        with self.engine.connect() as conn:
            return fn(conn, *args, **kwargs)

    def _pages(
        self, page: Callable[[Connection, int, int, int], list[Any]], key: int, batch: int
    ) -> Iterator[Any]:
        """Rows of `page(conn, key, after_id, batch)` streamed in id order, each page on its own connection."""
        last = 0
        while rows := self._read(page, key, last, batch):
            yield from rows
            last = rows[-1].id

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

    # ---- creation and lifecycle (create.py, lifecycle.py) -------------------------------------------
    def create_campaign(
        self,
        spec: CampaignSpec,
        blocks: Iterable[PlannedBlock],
        *,
        rejected: int | Callable[[], int] = 0,
        start: bool = True,
    ) -> int:
        """Insert the campaign, its chunks and recipients in ONE transaction, then queue or schedule it.

        Any exception (bad input found late, a database error; EmptyCampaign when no recipient) rolls
        everything back: there is never a half-written campaign. Returns the campaign's id.
        """
        return self._write(create.create_campaign, spec, blocks, utcnow(), rejected=rejected, start=start)

    def pause(self, campaign_id: int, reason: str = "paused by the user") -> bool:
        return self._write(campaign_to, campaign_id, CampaignTransition.PAUSE, utcnow(), reason)

    def resume(self, campaign_id: int) -> bool:
        """Paused -> running, or back to scheduled when its start time has not come yet."""
        return self._write(lifecycle.resume, campaign_id, utcnow())

    def raise_budget(
        self, campaign_id: int, *, budget_rial: int | None = None, max_parts: int | None = None
    ) -> bool:
        """Set the campaign's caps (rial, SMS parts; None leaves that cap as it is), for `resume` to go on.

        False when there is no such campaign or it has finished. Raises UnpricedError (bad input) for a
        rial budget on a campaign stored without a price for every part.
        """
        return self._write(lifecycle.raise_budget, campaign_id, budget_rial, max_parts, utcnow())

    def cancel(self, campaign_id: int, reason: str = "cancelled by the user") -> Cancelled | None:
        """Cancel the campaign and every chunk not yet handed to the provider (`lifecycle.cancel`)."""
        return self._write(lifecycle.cancel, campaign_id, reason, utcnow())

    def fail_campaign(self, campaign_id: int, reason: str) -> bool:
        return self._write(campaign_to, campaign_id, CampaignTransition.FAIL, utcnow(), reason)

    def start_due(self, now: datetime | None = None) -> list[int]:
        """Scheduled campaigns whose time has come -> running, chunks queued. Safe to run twice."""
        return self._write(lifecycle.start_due, now or utcnow())

    def complete_finished(self, now: datetime | None = None) -> list[int]:
        """Running campaigns with nothing left in flight and no recipient awaiting a report -> completed."""
        return self._write(lifecycle.complete_finished, now or utcnow())

    def pause_campaign_of_chunk(self, chunk_id: int, reason: str) -> bool:
        return self._write(lifecycle.pause_campaign_of_chunk, chunk_id, reason, utcnow())

    # ---- what to publish (queue.py) -------------------------------------------------------------------
    def claimable_chunks(
        self, limit: int = 100, now: datetime | None = None, campaign_id: int | None = None, after_id: int = 0
    ) -> list[tuple[int, int]]:
        """(chunk id, attempt) of chunks a worker may claim now, oldest first."""
        return self._read(queue.claimable_chunks, limit, now or utcnow(), campaign_id, after_id)

    def chunk_cost(
        self, chunk_id: int, attempt: int | None = None, now: datetime | None = None
    ) -> ChunkPeek | None:
        """What a send needs to know before its claim (rate limit, window, whether it is claimable)."""
        return self._read(queue.chunk_cost, chunk_id, attempt, now or utcnow())

    def running_windows(self) -> dict[int, str]:
        """Running campaigns that have a daily send window: id -> window text."""
        return self._read(queue.running_windows)

    def defer_queued(self, chunk_id: int, until: datetime) -> bool:
        """Publish a queued chunk whose message was dropped unclaimed again at `until` (see queue.py)."""
        return self._write(queue.defer_queued, chunk_id, until)

    def stale_chunks(
        self, queued_before: datetime, now: datetime, limit: int = 5000, exclude_campaigns: Iterable[int] = ()
    ) -> list[tuple[int, int]]:
        """Chunks to publish again, marked as published `now` in the same transaction (see queue.py)."""
        return self._write(queue.stale_chunks, queued_before, now, limit, exclude_campaigns)

    # ---- the send path (sending.py) -------------------------------------------------------------------
    def claim_chunk(
        self, chunk_id: int, attempt: int | None, lease: timedelta, now: datetime | None = None
    ) -> ClaimedChunk | None:
        """Compare-and-set queued/retry -> sending, for a running campaign, committed before any HTTP.

        None means somebody else has it, it was already sent, its retry is not due, or the campaign
        is not running: a duplicate or stale message, and nothing to do. Also None when the chunk would
        cross the campaign's budget or part cap: the campaign is then paused with the reason.
        """
        try:
            return self._write(sending.claim_chunk, chunk_id, attempt, lease, now or utcnow())
        except sending.ClaimLost:  # rolled back: the charge is undone, someone else has the chunk
            return None
        except caps.DailyCapReached as over:  # rolled back; the campaign pauses, naming the cap
            self._write(caps.pause_at_daily_cap, over.campaign_id, over.reason, utcnow())
            return None

    def load_chunk(self, chunk_id: int) -> ClaimedChunk:
        """The chunk as a send would see it, without claiming it (reconciliation)."""
        return self._read(sending.load_claimed, chunk_id)

    def chunk_retry(
        self, chunk: ClaimedChunk, error: str, delay: float, max_attempts: int, now: datetime | None = None
    ) -> RetryVerdict:
        """Transient failure: back off `delay` seconds (RETRY), or fail the chunk once `max_attempts`
        sends have been tried (FAILED)."""
        return self._write(sending.chunk_retry, chunk, error, delay, max_attempts, now or utcnow())

    def chunk_unknown(self, chunk: ClaimedChunk, error: str, now: datetime | None = None) -> bool:
        return self._write(sending.chunk_unknown, chunk, error, now or utcnow())

    def chunk_failed(self, chunk: ClaimedChunk, error: str, now: datetime | None = None) -> bool:
        return self._write(sending.fail_chunk, chunk.chunk_id, error, now or utcnow(), chunk.attempt)

    def pause_for_account(self, chunk: ClaimedChunk, reason: str, now: datetime | None = None) -> bool:
        """Account-level refusal: nothing went out; the chunk goes back to the queue, the campaign pauses."""
        return self._write(sending.pause_for_account, chunk, reason, now or utcnow())

    def split_chunk(self, chunk: ClaimedChunk, reason: str, now: datetime | None = None) -> int | None:
        """Move the second half of a chunk's pending recipients to a new queued chunk; requeue the first."""
        return self._write(sending.split_chunk, chunk, reason, now or utcnow())

    # ---- reconciliation (reconcile.py) ---------------------------------------------------------------
    def expire_leases(self, now: datetime | None = None) -> list[int]:
        """Chunks whose sender vanished mid-call (lease over) -> unknown: maybe sent, to be reconciled."""
        return self._write(reconcile.expire_leases, now or utcnow())

    def unknown_chunks(self, limit: int = 100, campaign_id: int | None = None) -> list[int]:
        """Unknown chunks that still have pending recipients: reconciliation's work list."""
        return self._read(reconcile.unknown_chunks, limit, campaign_id)

    def record_reconciled(
        self,
        chunk: ClaimedChunk,
        updates: Sequence[RecipientUpdate],
        *,
        requeue: bool,
        now: datetime | None = None,
    ) -> Reconciliation:
        """Reconciliation's verdict: found ones recorded; if the rest is known unsent, queue them again."""
        return self._write(reconcile.record_reconciled, chunk, updates, requeue, now or utcnow())

    def resend_unknown(self, chunk: ClaimedChunk, reason: str, now: datetime | None = None) -> bool:
        """Policy 'resend': the provider cannot tell, and the campaign chose to send the rest again."""
        return self._write(reconcile.resend_unknown, chunk, reason, now or utcnow())

    def hold_unknown(self, chunk: ClaimedChunk, reason: str, now: datetime | None = None) -> int:
        """Policy 'hold': the chunk's pending recipients become `unknown` with the reason, for a person to decide."""
        return self._write(reconcile.hold_unknown, chunk, reason, now or utcnow())

    # ---- delivery-status polling (polling.py) --------------------------------------------------------
    def due_polls(self, limit: int = 1000, now: datetime | None = None) -> list[DuePoll]:
        """Recipients due a status check (a read only; `claim_due_polls` is what pollers use)."""
        with self.engine.connect() as conn:
            return polling.polls_of(conn, polling.due_ids(conn, limit, now or utcnow()))

    def claim_due_polls(self, limit: int, lease: timedelta, now: datetime | None = None) -> list[DuePoll]:
        """Claim up to `limit` recipients due a status check, committed before any HTTP (see polling.py)."""
        return self._write(polling.claim_due_polls, limit, lease, now or utcnow())

    def polls_of(self, recipient_ids: Sequence[int]) -> list[DuePoll]:
        """The recipients of a claimed poll batch that still await a report (a `poll_batch` task's ids)."""
        return self._read(polling.polls_of, recipient_ids)

    def record_statuses(self, updates: Sequence[RecipientUpdate], now: datetime | None = None) -> int:
        """One poll batch's answers, with ONE set-based UPDATE; returns how many rows were written."""
        return self._write(apply_updates, updates, now or utcnow(), sent=False)

    def next_poll_time(self, campaign_id: int | None = None, now: datetime | None = None) -> datetime | None:
        """The next delivery check (of one campaign, or of all): a future time is the earliest, one at or
        before `now` (default: the clock) says some are due now; None when nothing awaits one
        (`polling.next_poll_time`)."""
        return self._read(polling.next_poll_time, campaign_id, now)

    def awaiting_reports(self, campaign_id: int | None = None) -> int:
        """How many recipients await a delivery report (of one campaign, or of all)."""
        return self._read(polling.awaiting_count, campaign_id)

    def record_poll_retries(
        self,
        recipient_ids: Sequence[int],
        next_poll_at: datetime,
        code: str | None,
        now: datetime | None = None,
    ) -> int:
        """Ask these recipients again at `next_poll_at` without moving them up the polling ladder (a status
        call that got no answer); returns how many still awaited a report."""
        return self._write(polling.record_poll_retries, recipient_ids, next_poll_at, code, now or utcnow())

    # ---- suppression list and inbox cursors (suppressions.py) -----------------------------------------
    def suppress(self, phones: Iterable[str], reason: str) -> int:
        """Add numbers (E.164) with one reason; numbers already listed keep theirs. Returns how many were new."""
        return self._write(suppressions.add_suppressions, {p: reason for p in phones}, utcnow())

    def unsuppress(self, phones: Iterable[str]) -> int:
        """Take numbers off the list (the person asked to hear from us again); returns how many were listed."""
        return self._write(suppressions.unsuppress, phones)

    def suppressed(self) -> dict[str, str]:
        """phone -> reason, for the loader (which writes the reason into the rejects file)."""
        return self._read(suppressions.suppressed)

    def suppressions(self) -> list[SuppressionView]:
        return self._read(suppressions.suppressions)

    def inbox_cursor(self, account: str) -> str | None:
        """How far the opt-out collector has read this account's inbox; None before its first pass."""
        return self._read(suppressions.inbox_cursor, account)

    def record_optouts(
        self, account: str, provider: str, optouts: Mapping[str, str], cursor: str, *, previous: str | None
    ) -> int | None:
        """Add the opt-outs (phone -> reason) and move the account's cursor from `previous` to `cursor`, in one
        transaction. The move is a compare-and-set: when another pass moved the cursor first, nothing is
        written and None is returned (that pass read the same replies, or the next one will). Else the
        number of new suppressions."""
        try:
            return self._write(
                suppressions.record_optouts, account, provider, optouts, cursor, previous, utcnow()
            )
        except (suppressions.CursorMoved, IntegrityError):
            return None

    # ---- read models (reads.py) ------------------------------------------------------------------------
    def campaign(self, campaign_id: int) -> CampaignView | None:
        return self._read(reads.campaign, campaign_id)

    def campaign_costs(self, campaign_id: int) -> tuple[int | None, float | None]:
        """(estimated rial at creation or None when no price was known, rial the provider reported or None
        when it reported none) of a campaign. Raises NoResultFound when there is no such campaign."""
        return self._read(reads.campaign_costs, campaign_id)

    def campaign_state(self, campaign_id: int) -> tuple[str, str | None]:
        """(state, reason) alone: what loops ask every tick, without counting recipients."""
        return self._read(reads.campaign_state, campaign_id)

    def chunk_counts(self, campaign_id: int) -> dict[str, int]:
        return self._read(reads.chunk_counts, campaign_id)

    def sending_open(self, campaign_id: int) -> int:
        """Chunks of the campaign with sending still ahead (OPEN_CHUNK), plus unknown ones awaiting reconciliation."""
        return self._read(reads.sending_open, campaign_id)

    def campaigns(self) -> list[CampaignView]:
        return self._read(reads.campaigns)

    def recipients_rows(self, campaign_id: int, batch: int = 10_000) -> Iterable[dict[str, Any]]:
        """Every recipient of a campaign in id order, streamed for reports."""
        return (dict(row._mapping) for row in self._pages(reads.recipients_page, campaign_id, batch))

    def recipient_states(self, campaign_id: int) -> dict[str, str]:
        """phone -> state, for tests and small reports."""
        return self._read(reads.recipient_states, campaign_id)

    def unfinished(self, campaign_id: int) -> int:
        """Recipients not yet in a final state nor held as unknown."""
        return self._read(reads.unfinished, campaign_id)

    def sent_since(self, campaign_id: int, since: datetime) -> int:
        """Recipients whose send was recorded at or after `since`: the rate's sample (one indexed count)."""
        return self._read(reads.sent_since, campaign_id, since)

    def next_retry(self, campaign_id: int) -> tuple[int, datetime | None, str | None]:
        """(chunks in retry, the earliest next attempt, that chunk's last error) of a campaign."""
        return self._read(reads.next_retry, campaign_id)

    def contacts(self, account: str, book: str) -> ContactLedger:
        """The contact push ledger of one provider account and book (campaigns/store/contacts.py)."""
        return ContactLedger(self, account, book)

    def timeline_rows(
        self, campaign_id: int, batch: int = 50_000
    ) -> Iterable[tuple[str, datetime | None, datetime | None, datetime | None]]:
        """(state, sent_at, delivered_at, updated_at) of every recipient, streamed in id order (charts)."""
        rows = self._pages(reads.timeline_page, campaign_id, batch)
        return ((r.state, r.sent_at, r.delivered_at, r.updated_at) for r in rows)
