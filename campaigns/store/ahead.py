"""A chunk claimed ahead: claimed while the previous chunk of its message was at the provider
(workers/operations/send_many.py), so that the claim's round trip is not on the slot's path.

A pause or cancel takes effect at the next chunk (docs/architecture.md, "How the invariants are kept"): a chunk
claimed ahead is not yet handed to the provider, so before its call its campaign is read once more
(`campaign_sendable`, one small read instead of the claim's write) and, when it may no longer send, the claim
is given back as if it had never been made (`release`): the chunk back to the queue with its charge refunded,
and, when the campaign was cancelled, cancelled with its pending recipients, as `lifecycle.cancel` would have
done had the chunk not been claimed. A campaign paused at its budget or part cap still sends it: its charge was
made within the cap, before the claim that would have crossed it paused the campaign, as when the claims are
made one after another.
"""

from __future__ import annotations

from datetime import datetime
from functools import cache
from typing import Any

from sqlalchemy import Connection, bindparam, select

from campaigns.records import ClaimedChunk
from campaigns.states import CampaignState, ChunkTransition, RecipientTransition
from campaigns.store import raw
from campaigns.store.raw import RawStatement
from campaigns.store.sending import BUDGET_REACHED, PART_CAP_REACHED, requeue_sent_nothing
from campaigns.store.sql import campaigns_t, chunks_t
from campaigns.store.transitions import chunks_to, pending_of_chunks_to


@cache
def _state_stmt() -> Any:
    c = campaigns_t.c
    return select(c.state, c.state_reason).where(c.id == bindparam("campaign_id"))


@cache
def _raw_state() -> RawStatement:
    return RawStatement.of(_state_stmt())


def sendable(state: str | None, reason: str | None) -> bool:
    """Whether a chunk claimed ahead may still be sent by a campaign in `state` with `reason`: running, or
    paused at a cap (`sending.cap_reason`), which its charge was made within."""
    if state == CampaignState.RUNNING:
        return True
    return state == CampaignState.PAUSED and (reason or "").startswith((BUDGET_REACHED, PART_CAP_REACHED))


def campaign_sendable_raw(conn: Any, campaign_id: int) -> bool:
    """PostgreSQL, on a pooled DBAPI connection in autocommit (`raw.run`): `sendable` for the campaign."""
    rows = raw.run(conn, _raw_state(), {"campaign_id": campaign_id})
    return bool(rows) and sendable(*rows[0])


def campaign_sendable(conn: Connection, campaign_id: int) -> bool:
    """`sendable` for the campaign (SQLite, or any SQLAlchemy connection)."""
    row = conn.execute(_state_stmt(), {"campaign_id": campaign_id}).first()
    return row is not None and sendable(row.state, row.state_reason)


def release(conn: Connection, chunk: ClaimedChunk, reason: str, now: datetime) -> int | None:
    """Give back the claim of a chunk whose call was never made, its campaign no longer `sendable`.

    The campaign row is locked first (the lock order of the claim and of `cancel`, so a cancel cannot commit
    between the read of its state and the chunk's return to the queue) and read again: None when it may send
    after all (resumed meanwhile: the chunk is sent). Otherwise the chunk goes back to the queue at its
    attempt, its charge refunded (`sending.requeue_sent_nothing`: a no-op when the chunk is no longer this
    attempt's); when the campaign is cancelled, the chunk and its pending recipients are cancelled with the
    campaign's reason. Returns the recipients cancelled (0 when paused).
    """
    c = campaigns_t.c
    row = conn.execute(
        select(c.state, c.state_reason).where(c.id == chunk.campaign_id).with_for_update()
    ).first()
    if row is not None and sendable(row.state, row.state_reason):
        return None
    if not requeue_sent_nothing(conn, chunk, reason, now):
        return 0
    if row is None or row.state != CampaignState.CANCELLED:
        return 0
    why = row.state_reason or "cancelled"
    chunks_to(conn, ChunkTransition.CANCEL, now, chunks_t.c.id == chunk.chunk_id)
    return pending_of_chunks_to(conn, [chunk.chunk_id], RecipientTransition.CANCEL, now, why)
