"""Delivery-status polling: which recipients are due a status check, the claim pollers use (a claim log,
`claim_due_polls`), and recording a batch's answers. Functions over the caller's connection or transaction.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from functools import cache
from typing import Any

from sqlalchemy import (
    ARRAY,
    BigInteger,
    Connection,
    any_,
    bindparam,
    case,
    delete,
    func,
    insert,
    select,
    text,
    tuple_,
    update,
)

from campaigns.clock import utcnow
from campaigns.models import PollClaim
from campaigns.records import DuePoll, RecipientUpdate
from campaigns.states import AWAITING_REPORT
from campaigns.store.sql import INDEX_ORDER_ONLY, awaiting_report, campaigns_t, chunks_t, recipients_t
from campaigns.store.tally import CountKind, counts_t

poll_claims_t = PollClaim.__table__


def _in_order(polls: list[DuePoll]) -> list[DuePoll]:
    """Grouped by provider and account (one status call each), then by message id."""
    return sorted(polls, key=lambda d: (d.provider, d.account, d.message_id or "", d.recipient_id))


def due_ids(conn: Connection, limit: int, now: datetime) -> list[int]:
    """Ids of recipients due a status check, earliest due first (a read only)."""
    r = recipients_t.c
    q = (
        select(r.id)
        .where(r.next_poll_at <= now, awaiting_report(r.state))
        .order_by(r.next_poll_at)
        .limit(limit)
    )
    return list(conn.execute(q).scalars())


# Claims wait on one another (a few ms each): two claims must not both take the stretch after the last one.
# Writers of `next_poll_at` hold the same lock shared (`after_claims`): a claim waits for them, they for it.
_CLAIM_LOCK = text("SELECT pg_advisory_xact_lock(7270313)")
_WRITER_LOCK = text("SELECT pg_advisory_xact_lock_shared(7270313)")
_TICK = timedelta(microseconds=1)  # the resolution of a stored time (PostgreSQL and SQLAlchemy's SQLite)
_Key = tuple[datetime, int]
_ORIGIN = datetime(1970, 1, 1, tzinfo=UTC)  # before any stored time: "after the claims" when there is none


@cache
def _due_stmt(after: bool, upto: bool) -> Any:
    """Recipients due a check at `now` in `(next_poll_at, id)` order, after (`after_at`, `after_id`) and up to
    (`upto_at`, `upto_id`) when given, at most `n`: one range of ix_recipients_due_poll, read in order."""
    r = recipients_t.c
    key = tuple_(r.next_poll_at, r.id)
    at_type = r.next_poll_at.type
    q = select(
        r.id, r.next_poll_at, r.campaign_id, r.provider_message_id, r.sent_at, r.polls, r.chunk_id
    ).where(r.next_poll_at <= bindparam("now", type_=at_type), awaiting_report(r.state))
    if after:
        q = q.where(
            key > tuple_(bindparam("after_at", type_=at_type), bindparam("after_id", type_=BigInteger))
        )
    if upto:
        q = q.where(
            key <= tuple_(bindparam("upto_at", type_=at_type), bindparam("upto_id", type_=BigInteger))
        )
    return q.order_by(r.next_poll_at, r.id).limit(bindparam("n"))


def _due(conn: Connection, after: _Key | None, upto: _Key | None, now: datetime, n: int) -> list[Any]:
    params: dict[str, Any] = {"now": now, "n": n}
    if after is not None:
        params |= {"after_at": after[0], "after_id": after[1]}
    if upto is not None:
        params |= {"upto_at": upto[0], "upto_id": upto[1]}
    return conn.execute(_due_stmt(after is not None, upto is not None), params).all()


def claim_due_polls(conn: Connection, limit: int, lease: timedelta, now: datetime) -> list[DuePoll]:
    """Claim up to `limit` recipients due a status check, held for `lease`, without writing them.

    A claim is one row of `poll_claims` (`models.PollClaim`): the stretch of the due-poll index, in
    `(next_poll_at, id)` order, after the previous claim's end up to its own last recipient. Claims tile
    that order from its start; every recipient due in a live claim's stretch belongs to that claim's
    poller. So a claim reads (no row lock, no write per recipient):

    1. the stretches of claims whose lease is over, in order: who is still due there was not recorded (its
       poller vanished: nobody writes into a claim's stretch, `after_claims`). They are claimed again: the
       old claim's lease renewed (or, when `limit` cuts its stretch, a new claim up to the cut); a stretch
       with no one due any more is deleted (the next claim's stretch extends over it);
    2. the recipients due after the last claim, up to `limit`, as one new claim.

    A recorded recipient leaves its claim's stretch: every record sets a later `next_poll_at` or none, and
    never one inside any claim's stretch (`after_claims`).
    Claims wait on one another (PostgreSQL: a transaction-level advisory lock; SQLite: BEGIN IMMEDIATE),
    so two pollers (workers, overlapping beat ticks) never hold the same recipient; everything is committed
    (by the caller) before any HTTP. Replaces a lease written on every claimed row, which cost PostgreSQL a
    new version of the row and of each of its index entries (docs/benchmarks.md).
    """
    if conn.dialect.name == "postgresql":
        conn.execute(_CLAIM_LOCK)
        # Walk ix_recipients_due_poll in order and stop at the LIMIT. Right after a campaign's sends the
        # statistics are stale, and the planner bitmap-scanned and sorted every due row for each claim
        # instead (measured: 42 -> 17 ms for 10,000 of 100,000 due).
        conn.execute(INDEX_ORDER_ONLY)
    p = poll_claims_t.c
    claims = conn.execute(select(p.id, p.hi_at, p.hi_id, p.lease_until).order_by(p.hi_at, p.hi_id)).all()
    until = now + lease
    rows: list[Any] = []
    after: _Key | None = None
    for claim in claims:
        end = (claim.hi_at, claim.hi_id)
        if claim.lease_until <= now and len(rows) < limit:
            got = _due(conn, after, end, now, limit - len(rows))
            rows += got
            if got and len(rows) == limit:  # maybe more there: a new claim up to the cut, the rest stays over
                _new_claim(conn, got[-1], until)
            elif got:
                conn.execute(update(poll_claims_t).where(p.id == claim.id).values(lease_until=until))
            else:
                conn.execute(delete(poll_claims_t).where(p.id == claim.id))
        after = end
    if len(rows) < limit:
        got = _due(conn, after, None, now, limit - len(rows))
        if got:
            _new_claim(conn, got[-1], until)
        rows += got
    campaigns = campaign_accounts(conn, {x.campaign_id for x in rows})
    rerouted = chunk_accounts(conn, {x.chunk_id for x in rows if x.chunk_id is not None})
    return _in_order(
        [
            DuePoll(
                x.id,
                x.campaign_id,
                *(rerouted.get(x.chunk_id) or campaigns[x.campaign_id]),
                x.provider_message_id,
                x.sent_at,
                x.polls,
            )
            for x in rows
        ]
    )


def after_claims(conn: Connection) -> datetime | None:
    """The earliest `next_poll_at` a writer may set now (None: any): just after the end of the latest
    claim, so that no recipient is ever written into a stretch of the claim log (`claim_due_polls`).

    A writer's time is taken before its transaction commits (a send's reply, a status answer; then the
    wait for the database): set more than the shortest poll delay behind, a recipient would land inside
    a live claim's stretch and be held there until that claim's lease ends (300 s), though no poller has
    it. Floored to this, it falls due after every claim's stretch, so the next claim takes it; it was due
    by then anyway (a claim ends at or before the time it was made). Call it first in the transaction,
    before anything that locks a row: on PostgreSQL it takes the claims' lock shared (a claim in
    progress is waited for, and a claim waits for this transaction), on SQLite BEGIN IMMEDIATE already
    keeps claims and writers apart.
    """
    if conn.dialect.name == "postgresql":
        conn.execute(_WRITER_LOCK)
    end = conn.execute(select(func.max(poll_claims_t.c.hi_at))).scalar_one_or_none()
    return None if end is None else end + _TICK


def after_claims_pg(next_at: Any) -> Any:
    """PostgreSQL, in one statement: `next_at` (a NULL stays NULL) floored to just after the latest claim's
    end, as `after_claims` floors it in a transaction, for a writer that is one autocommit statement
    (`quick.quick_record_stmt`). Without `after_claims`' lock: a claim made while that statement runs
    (between its snapshot and its commit), more than the shortest poll delay after the writer took its
    time, can still hold a recipient written into its stretch until its lease ends."""
    end = select(func.max(poll_claims_t.c.hi_at)).scalar_subquery() + text("interval '1 microsecond'")
    return case((next_at.is_(None), None), else_=func.greatest(next_at, end))


def floored(updates: Sequence[RecipientUpdate], floor: datetime | None) -> Sequence[RecipientUpdate]:
    """`updates` with every `next_poll_at` before `floor` moved to `floor` (`after_claims`): pure."""
    if floor is None:
        return updates
    return [
        replace(u, next_poll_at=floor) if u.next_poll_at is not None and u.next_poll_at < floor else u
        for u in updates
    ]


def _new_claim(conn: Connection, last: Any, until: datetime) -> None:
    conn.execute(insert(poll_claims_t).values(hi_at=last.next_poll_at, hi_id=last.id, lease_until=until))


def polls_of(conn: Connection, recipient_ids: Sequence[int]) -> list[DuePoll]:
    """Those of the recipients that still await a report, as DuePolls (a `poll_batch` task's ids)."""
    if not recipient_ids:
        return []
    r, c, k = recipients_t.c, campaigns_t.c, chunks_t.c
    if conn.dialect.name == "sqlite":
        by_id = r.id.in_(list(recipient_ids))
    else:  # one array parameter: the same statement text (and server-side plan) for every batch
        by_id = r.id == any_(bindparam("ids", list(recipient_ids), type_=ARRAY(BigInteger)))
    rows = conn.execute(
        select(
            r.id,
            r.campaign_id,
            func.coalesce(k.provider, c.provider),
            func.coalesce(k.account, c.account),
            r.provider_message_id,
            r.sent_at,
            r.polls,
        )
        .join(campaigns_t, c.id == r.campaign_id)
        .outerjoin(chunks_t, k.id == r.chunk_id)
        .where(by_id, awaiting_report(r.state))
    ).all()
    return _in_order([DuePoll(*x) for x in rows])


def campaign_accounts(conn: Connection, ids: set[int]) -> dict[int, tuple[str, str]]:
    """campaign id -> (provider, account)."""
    if not ids:
        return {}
    c = campaigns_t.c
    rows = conn.execute(select(c.id, c.provider, c.account).where(c.id.in_(list(ids))))
    return {x.id: (x.provider, x.account) for x in rows}


def chunk_accounts(conn: Connection, ids: set[int]) -> dict[int, tuple[str, str]]:
    """chunk id -> (provider, account) of those chunks failover re-planned for another provider:
    their recipients are asked at the provider that accepted them."""
    if not ids:
        return {}
    k = chunks_t.c
    rows = conn.execute(
        select(k.id, k.provider, k.account).where(k.id.in_(list(ids)), k.provider.is_not(None))
    )
    return {x.id: (x.provider, x.account or "") for x in rows}


def next_poll_time(
    conn: Connection, campaign_id: int | None = None, now: datetime | None = None
) -> datetime | None:
    """When a recipient awaiting a report (of one campaign, or of all) is next due a check: a future time
    is the earliest; a time at or before `now` (default: the clock) says some are due now, and is not
    necessarily the earliest of them (see below); None when none awaits one.

    Read from the first entries of ix_recipients_campaign_next_poll (one campaign) or of
    ix_recipients_due_poll (all); only rows awaiting a report have a next check. The claim log's
    stretches (`claim_due_polls`) are where the poll rewrites rows: every recipient recorded there left
    an index entry whose row version is dead, and an index walk from the start steps through each of them
    (thousands while a poll runs at full speed: the slowest read of `status`, docs/benchmarks.md). So
    the walk starts after the latest claim's end, where nothing was rewritten; only when nothing after it
    is due does it look inside the claims' stretches, whose live rows are claimed and not yet recorded, or
    left by a poller that vanished (both due: in the past)."""
    r = recipients_t.c
    q = (
        select(r.next_poll_at)
        .where(r.next_poll_at.is_not(None), r.state.in_(list(AWAITING_REPORT)))
        .order_by(r.next_poll_at)
        .limit(1)
    )
    if campaign_id is not None:
        q = q.where(r.campaign_id == campaign_id)
    # One statement (a round trip more was worth more than the walk it saves on a loaded machine); the
    # second walk is a CASE branch, run only when it is taken (PostgreSQL's InitPlans and SQLite's
    # subqueries are evaluated on first use).
    end = select(func.max(poll_claims_t.c.hi_at)).scalar_subquery()
    after = q.where(
        r.next_poll_at > func.coalesce(end, bindparam("origin", _ORIGIN, type_=r.next_poll_at.type))
    )
    within = q.where(r.next_poll_at <= end).scalar_subquery()
    first = after.scalar_subquery()
    stmt = select(case((first <= (now or utcnow()), first), else_=func.coalesce(within, first)))
    return conn.execute(stmt).scalar_one_or_none()


def awaiting_count(conn: Connection, campaign_id: int | None = None) -> int:
    """Recipients awaiting a delivery report (of one campaign, or of all), from the counters."""
    t = counts_t.c
    q = select(func.coalesce(func.sum(t.n), 0)).where(
        t.kind == CountKind.RECIPIENT, t.state.in_(list(AWAITING_REPORT))
    )
    if campaign_id is not None:
        q = q.where(t.campaign_id == campaign_id)
    return int(conn.execute(q).scalar_one())


def record_poll_retries(
    conn: Connection, recipient_ids: Sequence[int], next_poll_at: datetime, code: str | None, now: datetime
) -> int:
    """Recipients whose status call got no answer (a transient failure, "asked too early"): asked again
    at `next_poll_at`, their state and poll count (their rung of the ladder) unchanged, the provider's
    code kept when given. Only rows still awaiting a report; returns how many."""
    if not recipient_ids:
        return 0
    r = recipients_t.c
    floor = after_claims(conn)
    values: dict[str, Any] = {"next_poll_at": max(next_poll_at, floor or next_poll_at), "updated_at": now}
    if code is not None:
        values["provider_status"] = code
    return conn.execute(
        update(recipients_t)
        .where(r.id.in_(list(recipient_ids)), r.state.in_(list(AWAITING_REPORT)))
        .values(**values)
    ).rowcount
