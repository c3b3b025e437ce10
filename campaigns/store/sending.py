"""The chunk send path: claim (compare-and-set, committed before any HTTP), record what the provider
said, and the other ways an attempt ends (retry, unknown, failed, refused by the account, split).
Functions over the caller's transaction.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Connection, func, insert, select, update

from campaigns.records import ClaimedChunk, OutMessage, RecipientUpdate, RetryVerdict
from campaigns.states import ChunkState, ChunkTransition, RecipientState, RecipientTransition
from campaigns.store.lifecycle import pause_account
from campaigns.store.sql import CLAIM_READ, campaigns_t, chunks_t, claim_stmt, recipients_t
from campaigns.store.transitions import apply_updates, chunk_to, pending_of_chunks_to

K, R, KT = ChunkState, RecipientState, ChunkTransition


def claim_chunk(
    conn: Connection, chunk_id: int, attempt: int | None, lease: timedelta, now: datetime
) -> ClaimedChunk | None:
    """Compare-and-set queued/retry -> sending (`sql.claimable`), then load what the send needs.

    Two round trips: the compare-and-set returns what it claimed; one joined read loads the rest.
    None: somebody else has it, it was sent, its retry is not due, or the campaign is not running.
    """
    params = {"chunk_id": chunk_id, "now": now, "lease_until": now + lease, "attempt": attempt}
    claimed = conn.execute(claim_stmt(attempt is not None), params).first()
    if claimed is None:
        return None
    return load_claimed(conn, chunk_id, claimed)


def load_claimed(conn: Connection, chunk_id: int, claimed: Any = None) -> ClaimedChunk:
    """The chunk with its campaign's send facts and its pending recipients (`claimed`: the claim's
    returned row, else read). Raises NoResultFound when there is no such chunk."""
    if claimed is None:
        claimed = conn.execute(
            select(chunks_t.c.campaign_id, chunks_t.c.attempt, chunks_t.c.sending_since).where(
                chunks_t.c.id == chunk_id
            )
        ).one()
    rows = conn.execute(CLAIM_READ, {"campaign_id": claimed.campaign_id, "chunk_id": chunk_id}).all()
    head = rows[0]
    # A chunk re-planned for another provider of the route carries its own (issue 15); "" sender: the
    # provider's configured line.
    own = conn.execute(
        select(chunks_t.c.provider, chunks_t.c.account, chunks_t.c.sender).where(chunks_t.c.id == chunk_id)
    ).one()
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
        provider=own.provider or head.provider,
        account=own.account or head.account,
        sender=head.sender if own.provider is None else (own.sender or ""),
        parts=sum(r.parts for r in rows if r.rid is not None),
        on_unknown=head.on_unknown,
        sending_since=claimed.sending_since,
        messages=messages,
    )


def record_send(
    conn: Connection, chunk: ClaimedChunk, updates: Sequence[RecipientUpdate], requeue: bool, now: datetime
) -> bool:
    """The provider's answer per recipient (one set-based UPDATE), then the chunk accepted, or re-queued
    when some recipients are known not to have gone out. Every statement is conditional, so the whole
    can be written again after a lost connection. True when the chunk's transition applied."""
    apply_updates(conn, updates, now, sent=True)
    if requeue:
        return chunk_to(conn, chunk.chunk_id, KT.REQUEUE, now, chunk.attempt, lease_until=None, queued_at=now)
    return chunk_to(conn, chunk.chunk_id, KT.ACCEPT, now, chunk.attempt, lease_until=None, last_error=None)


def chunk_retry(
    conn: Connection, chunk: ClaimedChunk, error: str, delay: float, max_attempts: int, now: datetime
) -> RetryVerdict:
    """Transient failure: back off `delay` seconds, or fail the chunk once `max_attempts` sends were tried."""
    if chunk.attempt >= max_attempts:
        fail_chunk(
            conn, chunk.chunk_id, f"gave up after {chunk.attempt} attempts: {error}", now, chunk.attempt
        )
        return RetryVerdict.FAILED
    chunk_to(
        conn,
        chunk.chunk_id,
        KT.RETRY,
        now,
        attempt=chunk.attempt,
        next_attempt_at=now + timedelta(seconds=delay),
        lease_until=None,
        last_error=error,
    )
    return RetryVerdict.RETRY


def chunk_unknown(conn: Connection, chunk: ClaimedChunk, error: str, now: datetime) -> bool:
    """An ambiguous send: the attempt -> unknown, for reconciliation."""
    return chunk_to(
        conn, chunk.chunk_id, KT.UNKNOWN, now, attempt=chunk.attempt, lease_until=None, last_error=error
    )


def fail_chunk(
    conn: Connection, chunk_id: int, error: str, now: datetime, attempt: int | None = None
) -> bool:
    """The chunk -> failed and its still-pending recipients -> failed, with `error`."""
    ok = chunk_to(conn, chunk_id, KT.FAIL, now, attempt, lease_until=None, last_error=error)
    if ok:
        pending_of_chunks_to(conn, [chunk_id], RecipientTransition.FAIL, now, error)
    return ok


def requeue_sent_nothing(conn: Connection, chunk: ClaimedChunk, reason: str, now: datetime) -> bool:
    """The claimed attempt sent nothing (account refusal, refused batch): back to the queue."""
    return chunk_to(
        conn,
        chunk.chunk_id,
        KT.REQUEUE,
        now,
        chunk.attempt,
        lease_until=None,
        last_error=reason,
        queued_at=now,
    )


def pause_for_account(conn: Connection, chunk: ClaimedChunk, reason: str, now: datetime) -> bool:
    """Account-level refusal: nothing went out; the chunk goes back to the queue, and every running
    campaign on the same account pauses (they would all hit the same wall)."""
    requeue_sent_nothing(conn, chunk, reason, now)
    pause_account(conn, chunk.account, reason, now)
    return True


def split_chunk(conn: Connection, chunk: ClaimedChunk, reason: str, now: datetime) -> int | None:
    """Move the second half of a chunk's pending recipients to a new queued chunk; requeue the first.

    Used when a provider refused "a number" in a multi-number call without saying which:
    halving isolates it in log2(batch) rounds, and nothing of the refused call went out.
    Returns the new chunk's id, or None (fewer than two recipients, or the attempt is no longer current).
    """
    ids = [m.recipient_id for m in chunk.messages]
    if len(ids) < 2:
        return None
    second = ids[len(ids) // 2 :]
    if not requeue_sent_nothing(conn, chunk, reason, now):
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
    conn.execute(  # moves rows between chunks; their state does not change
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
