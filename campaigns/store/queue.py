"""What to publish: the chunks a worker may claim now, the stale ones to publish again, and the peek a
send takes before its claim. Reads, except `stale_chunks`, which marks what it returns as published.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from datetime import datetime
from functools import cache
from typing import Any

from sqlalchemy import Connection, and_, bindparam, func, or_, select, update

from campaigns.records import ChunkPeek
from campaigns.states import CampaignState, ChunkState
from campaigns.store.sql import campaigns_t, chunks_t, claimable

C, K = CampaignState, ChunkState
# A queued chunk published more than this many grace periods ago is published again whatever the line says:
# a bound on how late a lost message is found, should a claim's `queued_at` mislead `line_position`.
LOST_AFTER_GRACES = 10


def claimable_chunks(
    conn: Connection, limit: int, now: datetime, campaign_id: int | None, after_id: int
) -> list[tuple[int, int]]:
    """(chunk id, attempt) of chunks a worker may claim now (`sql.claimable`), oldest first, ids > after_id."""
    q = (
        select(chunks_t.c.id, chunks_t.c.attempt)
        .where(claimable(now), chunks_t.c.id > after_id)
        .order_by(chunks_t.c.id)
        .limit(limit)
    )
    if campaign_id is not None:
        q = q.where(chunks_t.c.campaign_id == campaign_id)
    return [(r.id, r.attempt) for r in conn.execute(q)]


@cache
def peek_stmt(with_attempt: bool) -> Any:
    """The peek before a claim, built once (it runs for every chunk message, like the claim). Parameters:
    chunk_id, now, attempt (when `with_attempt`). Its first six columns are `peek_of`'s."""
    now = bindparam("now", type_=chunks_t.c.next_attempt_at.type)
    condition = claimable(now)
    if with_attempt:
        condition = and_(condition, chunks_t.c.attempt == bindparam("attempt"))
    return (
        select(
            func.coalesce(chunks_t.c.provider, campaigns_t.c.provider).label("provider"),
            campaigns_t.c.window,
            chunks_t.c.parts,
            condition.label("claimable"),
            campaigns_t.c.route,
            chunks_t.c.attempt,
        )
        .join(campaigns_t, campaigns_t.c.id == chunks_t.c.campaign_id)
        .where(chunks_t.c.id == bindparam("chunk_id"))
    )


def chunk_cost(conn: Connection, chunk_id: int, attempt: int | None, now: datetime) -> ChunkPeek | None:
    """What a send needs to know before its claim (rate limit, window), read without claiming.

    `claimable` is the claim's own condition (`sql.claimable`, at `attempt` when given), read: a message
    for a chunk that is already taken, sent, not due or whose campaign is not running is dropped before
    it spends rate-limit budget. None when there is no such chunk.
    """
    params = {"chunk_id": chunk_id, "now": now, "attempt": attempt}
    row = conn.execute(peek_stmt(attempt is not None), params).first()
    return None if row is None else peek_of(row)


def peek_of(row: Sequence[Any]) -> ChunkPeek:
    """The peek from a row whose first six columns are `peek_stmt`'s: provider, window, parts, claimable,
    route (JSON list or NULL), attempt."""
    provider, window, parts, claimable_now, route, attempt = row[:6]
    routes = tuple(json.loads(route)) if route else ()
    return ChunkPeek(provider, int(parts), window, bool(claimable_now), routes, int(attempt))


def running_windows(conn: Connection) -> dict[int, str]:
    """Running campaigns that have a daily send window: id -> window text."""
    return dict(
        conn.execute(
            select(campaigns_t.c.id, campaigns_t.c.window).where(
                campaigns_t.c.state == C.RUNNING, campaigns_t.c.window.is_not(None)
            )
        ).all()
    )


def defer_queued(conn: Connection, chunk_id: int, until: datetime) -> bool:
    """A queued chunk whose message a worker dropped without claiming it (a rate-limit wait longer than a
    publisher holds a message): `stale_chunks` publishes it again at `until`, wherever the line stands.
    Its `next_attempt_at` says when (a queued chunk is claimable whatever that column says). True when the
    chunk was still queued."""
    c = chunks_t.c
    stmt = update(chunks_t).where(c.id == chunk_id, c.state == K.QUEUED).values(next_attempt_at=until)
    return conn.execute(stmt).rowcount > 0


def line_position(conn: Connection, since: datetime) -> tuple[datetime, int] | None:
    """Where the line of messages stood during the grace: the earliest publish a worker took since `since`.

    The broker's queue (and the embedded runner's pool) hands messages out in the order they were
    published. A chunk records when it was last published (`queued_at`) and when it was last claimed
    (`sending_since`); the chunks of running campaigns claimed at or after `since` from a publish
    before their claim (`queued_at <= sending_since`: not one requeued since) show which publishes
    the workers were taking. Returns (queued_at, id) of the earliest of them, the order the publishers
    follow (a campaign's chunks are published in id order), or None when no chunk was claimed since
    `since` (the line did not move). A claim from a message published with a countdown and not marked
    (a retry's, a deferred chunk's: `queued_at` before `next_attempt_at`) does not count either.
    """
    c = chunks_t.c
    marked = or_(c.next_attempt_at.is_(None), c.next_attempt_at <= c.queued_at)
    row = conn.execute(
        select(c.queued_at, c.id)
        .join(campaigns_t, campaigns_t.c.id == c.campaign_id)
        .where(campaigns_t.c.state == C.RUNNING, c.sending_since >= since, c.queued_at <= c.sending_since)
        .where(marked)
        .order_by(c.queued_at, c.id)
        .limit(1)
    ).first()
    return None if row is None else (row.queued_at, row.id)


def stale_chunks(
    conn: Connection, queued_before: datetime, now: datetime, limit: int, exclude_campaigns: Iterable[int]
) -> list[tuple[int, int]]:
    """Chunks to publish again, marked as published `now` (their `queued_at`) in the same transaction.

    A chunk is published again when its message may be lost: a queued chunk (or a due retry already
    published since it fell due) last published before `queued_before` (the grace period began
    then) that the line of messages has not reached during the grace, i.e. no chunk published at or
    before it was claimed since `queued_before` (`line_position`). Either no chunk was claimed at
    all (the line stopped: the broker lost what it held, or nobody consumes), or every claim took a
    message published after this chunk's: the line passed it, its message was not there. A chunk
    still waiting behind a backlog longer than the grace is not published again: publishing every
    queued chunk older than the grace sent a million-recipient soak up to 21,003 messages for ~2,100
    unsent chunks (docs/benchmarks.md). A message lost in a moving line is published again once the
    line has passed its place and a grace period more has gone by, and in any case once it was
    published `LOST_AFTER_GRACES` grace periods ago. Also, at once, a due retry not
    published since it fell due, and a queued chunk deferred (`defer_queued`) whose time came.

    Marking them means each is published again at most once per grace period, not at every sweep.
    `exclude_campaigns` (those outside their send window) are left alone until their window opens.
    Returns (chunk id, attempt) pairs.
    """
    c = chunks_t.c
    reached = line_position(conn, queued_before)
    waited = c.queued_at < queued_before
    if reached is not None:  # the line moved: only what it passed, published before its earliest claim
        at, chunk_id = reached
        long_ago = now - LOST_AFTER_GRACES * (now - queued_before)
        passed = or_(c.queued_at < at, and_(c.queued_at == at, c.id < chunk_id), c.queued_at < long_ago)
        waited = and_(waited, passed)
    q = (
        select(c.id, c.attempt)
        .join(campaigns_t, campaigns_t.c.id == c.campaign_id)
        .where(campaigns_t.c.state == C.RUNNING)
        .where(
            or_(
                and_(c.state == K.QUEUED, waited),
                # deferred (`defer_queued`): its message was dropped on purpose, due again now
                and_(c.state == K.QUEUED, c.next_attempt_at <= now, c.queued_at < c.next_attempt_at),
                and_(
                    c.state == K.RETRY,
                    c.next_attempt_at <= now,
                    or_(c.queued_at.is_(None), c.queued_at < c.next_attempt_at, waited),
                ),
            )
        )
        .order_by(c.id)
        .limit(limit)
    )
    excluded = list(exclude_campaigns)
    if excluded:
        q = q.where(c.campaign_id.not_in(excluded))
    due = [(r.id, r.attempt) for r in conn.execute(q)]
    if due:
        ids = [i for i, _ in due]
        conn.execute(
            update(chunks_t).where(c.id.in_(ids), c.state.in_([K.QUEUED, K.RETRY])).values(queued_at=now)
        )
    return due
