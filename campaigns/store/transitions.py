"""Executing the transitions: one conditional UPDATE per call, inside the caller's transaction.

Each function runs one statement built by `sql.transition` (so its allowed-from set comes from
`campaigns.states`) and says whether it applied. These are the only writers of the campaign,
chunk and recipient `state` columns; the modules by concern (lifecycle, sending, reconcile, polling)
call them. (The contacts push ledger, `contacts.py`, writes its own through `sql.transition` too.)
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Connection

from campaigns.records import RecipientUpdate
from campaigns.states import (
    CAMPAIGN_TRANSITIONS,
    CHUNK_TRANSITIONS,
    RECIPIENT_TRANSITIONS,
    CampaignTransition,
    ChunkTransition,
    RecipientTransition,
)
from campaigns.store.audit import SYSTEM, transition_event
from campaigns.store.sql import (
    campaigns_t,
    chunks_t,
    recipient_update_stmt,
    recipients_t,
    transition,
    update_rows_params,
)


def campaign_to(
    conn: Connection,
    campaign_id: int,
    name: CampaignTransition,
    now: datetime,
    reason: str | None = None,
    *,
    who: str = SYSTEM,
    **extra: Any,
) -> bool:
    """Move one campaign by `name`, setting its `state_reason` (cleared when None); True if it applied.
    A transition that applied is recorded in the audit trail as done by `who` (campaigns/store/audit.py),
    and written to the webhook outbox when the campaign names a callback_url
    (`campaigns.store.webhooks.record_change`), both in the same transaction: the one place every change passes."""
    from campaigns.store.webhooks import record_change

    stmt = transition(
        campaigns_t,
        CAMPAIGN_TRANSITIONS,
        name,
        now,
        campaigns_t.c.id == campaign_id,
        state_reason=reason,
        **extra,
    )
    applied = conn.execute(stmt).rowcount == 1
    if applied:
        transition_event(conn, campaign_id, name, now, reason, who)
        record_change(conn, campaign_id, CAMPAIGN_TRANSITIONS[name][1], now)
    return applied


def chunk_to(
    conn: Connection,
    chunk_id: int,
    name: ChunkTransition,
    now: datetime,
    attempt: int | None = None,
    *where: Any,
    **values: Any,
) -> bool:
    """Move one chunk by `name`, only at `attempt` when given (and only where `where` holds)."""
    stmt = transition(chunks_t, CHUNK_TRANSITIONS, name, now, chunks_t.c.id == chunk_id, *where, **values)
    if attempt is not None:
        stmt = stmt.where(chunks_t.c.attempt == attempt)
    return conn.execute(stmt).rowcount == 1


def queue_planned(conn: Connection, campaign_id: int, now: datetime) -> int:
    """Every planned chunk of the campaign -> queued (published at `now`); returns how many."""
    stmt = transition(
        chunks_t,
        CHUNK_TRANSITIONS,
        ChunkTransition.QUEUE,
        now,
        chunks_t.c.campaign_id == campaign_id,
        queued_at=now,
    )
    return conn.execute(stmt).rowcount


def pending_of_chunks_to(
    conn: Connection, chunk_ids: Sequence[int], name: RecipientTransition, now: datetime, error: str
) -> int:
    """The chunks' still-pending recipients -> cancelled, failed or held unknown (`name`), with `error`.

    Returns how many rows were written.
    """
    if not chunk_ids:
        return 0
    chunk = recipients_t.c.chunk_id
    where = chunk == chunk_ids[0] if len(chunk_ids) == 1 else chunk.in_(list(chunk_ids))
    stmt = transition(recipients_t, RECIPIENT_TRANSITIONS, name, now, where, error=error)
    return conn.execute(stmt).rowcount


def apply_updates(conn: Connection, updates: Sequence[RecipientUpdate], now: datetime, *, sent: bool) -> int:
    """Record many recipients' new facts with ONE set-based `UPDATE recipients … FROM <rows>`.

    Only rows still in the transition's allowed-from states are written (a send result only to
    `pending` rows). The rows travel as parallel arrays (`unnest`, PostgreSQL) or one JSON
    document (`json_each`, SQLite), so the statement text never changes and is compiled once.
    Returns how many rows were written.
    """
    if not updates:
        return 0
    sqlite = conn.dialect.name == "sqlite"
    params = update_rows_params(updates, sqlite=sqlite)
    params["now"] = now
    return conn.execute(recipient_update_stmt(sqlite, sent), params).rowcount
