"""Reconciliation: chunks whose send may or may not have happened (`unknown`), and the verdicts about
them. Every verdict applies only to a chunk still `unknown` at the attempt that was examined.
Functions over the caller's transaction.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import Connection, func, select

from campaigns.records import ClaimedChunk, RecipientUpdate, Reconciliation
from campaigns.states import ChunkState, ChunkTransition, RecipientState, RecipientTransition
from campaigns.store.reads import has_pending
from campaigns.store.sending import shrink_to_pending
from campaigns.store.sql import chunks_t, recipients_t
from campaigns.store.transitions import apply_updates, chunk_to, pending_of_chunks_to

K, R, KT = ChunkState, RecipientState, ChunkTransition
LOST = "the sending worker stopped before recording the outcome"


def expire_leases(conn: Connection, now: datetime) -> list[int]:
    """Chunks whose sender vanished mid-call (lease over) -> unknown: maybe sent, to be reconciled."""
    ids = (
        conn.execute(select(chunks_t.c.id).where(chunks_t.c.state == K.SENDING, chunks_t.c.lease_until < now))
        .scalars()
        .all()
    )
    return [
        chunk_id
        for chunk_id in ids
        if chunk_to(
            conn,
            chunk_id,
            KT.UNKNOWN,
            now,
            None,
            chunks_t.c.lease_until < now,
            lease_until=None,
            last_error=LOST,
        )
    ]


def unknown_chunks(conn: Connection, limit: int, campaign_id: int | None) -> list[int]:
    """Unknown chunks that still have pending recipients: reconciliation's work list, oldest first."""
    q = (
        select(chunks_t.c.id)
        .where(chunks_t.c.state == K.UNKNOWN)
        .where(has_pending(chunks_t.c.id))
        .order_by(chunks_t.c.id)
        .limit(limit)
    )
    if campaign_id is not None:
        q = q.where(chunks_t.c.campaign_id == campaign_id)
    return list(conn.execute(q).scalars())


def still_unknown(conn: Connection, chunk: ClaimedChunk) -> bool:
    """Lock the chunk's row and check it is still `unknown` at the attempt reconciliation examined.

    Beat asks about an unknown chunk every sweep, so two reconciliations can overlap; once the
    first has re-queued the chunk and a worker has claimed it, the late one must change nothing.
    (PostgreSQL: FOR UPDATE reads the newest committed row; SQLite: BEGIN IMMEDIATE serialises.)
    """
    row = conn.execute(
        select(chunks_t.c.state, chunks_t.c.attempt).where(chunks_t.c.id == chunk.chunk_id).with_for_update()
    ).first()
    return row is not None and row.state == K.UNKNOWN and row.attempt == chunk.attempt


def record_reconciled(
    conn: Connection, chunk: ClaimedChunk, updates: Sequence[RecipientUpdate], requeue: bool, now: datetime
) -> Reconciliation:
    """Reconciliation's verdict: found ones recorded; if the rest is known unsent, queue them again.

    Applies only to a chunk still `unknown`; a verdict reached about a chunk that has since been
    queued again or is being sent (a duplicate reconcile message, two reconciling it at once) changes
    nothing (`current` False). `found`: the rows this call wrote; `moved`: the chunk moved (accepted:
    nothing left pending; or queued again).
    """
    if not still_unknown(conn, chunk):
        return Reconciliation(current=False)
    found = apply_updates(conn, updates, now, sent=True)
    pending = conn.execute(
        select(func.count())
        .select_from(recipients_t)
        .where(recipients_t.c.chunk_id == chunk.chunk_id, recipients_t.c.state == R.PENDING)
    ).scalar_one()
    moved = False
    if pending == 0:
        moved = chunk_to(conn, chunk.chunk_id, KT.RECONCILED, now, chunk.attempt, last_error=None)
    elif requeue:
        moved = chunk_to(conn, chunk.chunk_id, KT.RESEND, now, chunk.attempt, queued_at=now)
        if moved:  # the rest is known unsent: its share of the budget's charge comes back (sending.py)
            shrink_to_pending(conn, chunk.chunk_id)
    return Reconciliation(current=True, found=found, moved=moved)


def resend_unknown(conn: Connection, chunk: ClaimedChunk, reason: str, now: datetime) -> bool:
    """Policy 'resend': the provider cannot tell, and the campaign chose to send the rest again."""
    return still_unknown(conn, chunk) and chunk_to(
        conn, chunk.chunk_id, KT.RESEND, now, chunk.attempt, last_error=reason, queued_at=now
    )


def hold_unknown(conn: Connection, chunk: ClaimedChunk, reason: str, now: datetime) -> int:
    """Policy 'hold': the chunk's pending recipients become `unknown` with the reason, for a person to
    decide; returns how many (0 when the chunk is no longer unknown at that attempt)."""
    if not still_unknown(conn, chunk):
        return 0
    return pending_of_chunks_to(conn, [chunk.chunk_id], RecipientTransition.HOLD, now, reason)
