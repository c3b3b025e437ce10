"""A chunk claimed ahead: claimed while the previous chunk of its message was at the provider
(workers/operations/send_many.py), so that the claim's round trip is not on the slot's path.

A pause or cancel takes effect at the next chunk (docs/architecture.md, "How the invariants are kept"): a chunk
claimed ahead is not yet handed to the provider, so before its call its campaign is read once more
(`campaign_running`, one small read instead of the claim's write) and, when it is no longer running, the claim
is given back as if it had never been made (`release`): the chunk back to the queue with its charge refunded,
and, when the campaign was cancelled, cancelled with its pending recipients, as `lifecycle.cancel` would have
done had the chunk not been claimed.
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
from campaigns.store.sending import requeue_sent_nothing
from campaigns.store.sql import campaigns_t, chunks_t
from campaigns.store.transitions import chunks_to, pending_of_chunks_to


@cache
def _state_stmt() -> Any:
    return select(campaigns_t.c.state).where(campaigns_t.c.id == bindparam("campaign_id"))


@cache
def _raw_state() -> RawStatement:
    return RawStatement.of(_state_stmt())


def campaign_running_raw(conn: Any, campaign_id: int) -> bool:
    """PostgreSQL, on a pooled DBAPI connection in autocommit (`raw.run`): whether the campaign is running."""
    rows = raw.run(conn, _raw_state(), {"campaign_id": campaign_id})
    return bool(rows) and rows[0][0] == CampaignState.RUNNING


def campaign_running(conn: Connection, campaign_id: int) -> bool:
    """Whether the campaign is running (SQLite, or any SQLAlchemy connection)."""
    state = conn.execute(_state_stmt(), {"campaign_id": campaign_id}).scalar_one_or_none()
    return state == CampaignState.RUNNING


def release(conn: Connection, chunk: ClaimedChunk, reason: str, now: datetime) -> int:
    """Give back the claim of a chunk whose call was never made, its campaign no longer running.

    The campaign row is locked first (the lock order of the claim and of `cancel`, so a cancel cannot commit
    between the read of its state and the chunk's return to the queue); the chunk goes back to the queue at its
    attempt, its charge refunded (`sending.requeue_sent_nothing`: a no-op when the chunk is no longer this
    attempt's); when the campaign is cancelled, the chunk and its pending recipients are cancelled with the
    campaign's reason. Returns the recipients cancelled (0 when paused).
    """
    c = campaigns_t.c
    row = conn.execute(
        select(c.state, c.state_reason).where(c.id == chunk.campaign_id).with_for_update()
    ).first()
    if not requeue_sent_nothing(conn, chunk, reason, now):
        return 0
    if row is None or row.state != CampaignState.CANCELLED:
        return 0
    why = row.state_reason or "cancelled"
    chunks_to(conn, ChunkTransition.CANCEL, now, chunks_t.c.id == chunk.chunk_id)
    return pending_of_chunks_to(conn, [chunk.chunk_id], RecipientTransition.CANCEL, now, why)
