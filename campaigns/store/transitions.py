"""Executing the transitions: one conditional UPDATE per call, inside the caller's transaction.

Each function runs one statement built by `sql.transition` (so its allowed-from set comes from
`campaigns.states`) and says whether it applied. These are the only writers of the campaign,
chunk and recipient `state` columns; the modules by concern (lifecycle, sending, reconcile, polling)
call them. (The contacts push ledger, `contacts.py`, writes its own through `sql.transition` too.)
Chunk and recipient transitions carry their counters (`campaigns.store.tally`, `run_counted`): on
PostgreSQL in the same statement, on SQLite in one statement just before it.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime
from functools import cache
from typing import Any

from sqlalchemy import ClauseElement, Connection, Select, Update, bindparam, literal, update

from campaigns.records import RecipientUpdate
from campaigns.states import (
    CAMPAIGN_TRANSITIONS,
    CHUNK_TRANSITIONS,
    RECIPIENT_TRANSITIONS,
    CampaignTransition,
    ChunkState,
    ChunkTransition,
    RecipientState,
    RecipientTransition,
)
from campaigns.store.audit import SYSTEM, transition_event
from campaigns.store.polling import after_claims, floored
from campaigns.store.sql import (
    campaigns_t,
    chunks_t,
    recipients_t,
    transition,
    transition_where,
    update_rows_params,
)
from campaigns.store.tally import (
    bucket_of,
    chunk_deltas,
    chunk_pre,
    const,
    counted_pg,
    counted_sqlite,
    recipient_deltas,
    recipient_pre,
)
from campaigns.store.tally_stmts import recount_chunks as recount_chunks_stmt
from campaigns.store.tally_stmts import result_keys, results_stmts


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


# A refunding transition applies only to a chunk holding a charge (`sending.refund`): `chunk_to`'s one
# extra condition whose statement is built once.
SENDING = chunks_t.c.state == ChunkState.SENDING


def chunk_to(
    conn: Connection,
    chunk_id: int,
    name: ChunkTransition,
    now: datetime,
    attempt: int | None = None,
    *where: Any,
    **values: Any,
) -> bool:
    """Move one chunk by `name`, only at `attempt` when given (and only where `where` holds).

    With no condition but `SENDING` and plain values, its statement (with its counters) is built once per
    shape and bound (`_chunk_move`): this runs for every chunk a worker sends."""
    plain = all(w is SENDING for w in where) and not any(
        isinstance(v, ClauseElement) for v in values.values()
    )
    if plain:
        sqlite = conn.dialect.name == "sqlite"
        keys = tuple(sorted(values))
        statements = _chunk_move(sqlite, name, attempt is not None, bool(where), keys)
        # no parameter named as a chunks column: SQLAlchemy would read it as one more SET of the UPDATE
        params = {
            "chunk_id": chunk_id,
            "at_attempt": attempt,
            "now": now,
            **{f"v_{k}": values[k] for k in keys},
        }
        if sqlite:
            conn.execute(statements[0], params)
            return conn.execute(statements[1], params).rowcount == 1
        return conn.execute(statements[0], params).scalar_one() == 1
    if attempt is not None:
        where = (*where, chunks_t.c.attempt == attempt)
    return chunks_to(conn, name, now, chunks_t.c.id == chunk_id, *where, **values) == 1


@cache
def _chunk_move(
    sqlite: bool, name: ChunkTransition, with_attempt: bool, sending: bool, keys: tuple[str, ...]
) -> tuple[Any, ...]:
    """`chunk_to`'s statements for one shape, with bind parameters chunk_id, at_attempt, now and v_<column>:
    SQLite (counters, update), PostgreSQL (one statement returning how many moved)."""
    where = [chunks_t.c.id == bindparam("chunk_id")]
    if with_attempt:
        where.append(chunks_t.c.attempt == bindparam("at_attempt"))
    if sending:
        where.append(SENDING)
    now = bindparam("now", type_=chunks_t.c.updated_at.type)
    values = {k: bindparam(f"v_{k}", type_=chunks_t.c[k].type) for k in keys}
    stmt = transition(chunks_t, CHUNK_TRANSITIONS, name, now, *where, **values)
    _, to = CHUNK_TRANSITIONS[name]
    pre = chunk_pre(transition_where(chunks_t, CHUNK_TRANSITIONS, name, *where), to)
    if sqlite:
        return counted_sqlite(pre, chunk_deltas), stmt
    return (counted_pg(stmt, chunks_t, pre, chunk_deltas),)


def chunks_to(conn: Connection, name: ChunkTransition, now: datetime, *where: Any, **values: Any) -> int:
    """Move every chunk matching `where` by `name`, with its counters; returns how many moved."""
    stmt = transition(chunks_t, CHUNK_TRANSITIONS, name, now, *where, **values)
    _, to = CHUNK_TRANSITIONS[name]
    pre = chunk_pre(transition_where(chunks_t, CHUNK_TRANSITIONS, name, *where), to)
    return run_counted(conn, stmt, chunks_t, pre, chunk_deltas)


def run_counted(
    conn: Connection, update: Update, table: Any, pre: Select[Any], deltas: Callable[[Any], Any]
) -> int:
    """Run `update` over the rows of its pre-image `pre` with the counters `deltas` makes of it (see
    `campaigns.store.tally`); returns how many rows it wrote."""
    if conn.dialect.name == "sqlite":
        conn.execute(counted_sqlite(pre, deltas))
        return conn.execute(update).rowcount
    return conn.execute(counted_pg(update, table, pre, deltas)).scalar_one()


def queue_planned(conn: Connection, campaign_id: int, now: datetime) -> int:
    """Every planned chunk of the campaign -> queued (published at `now`); returns how many."""
    return chunks_to(conn, ChunkTransition.QUEUE, now, chunks_t.c.campaign_id == campaign_id, queued_at=now)


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
    _, to = RECIPIENT_TRANSITIONS[name]
    assert to is not None
    pre = recipient_pre(
        transition_where(recipients_t, RECIPIENT_TRANSITIONS, name, where), new_state=const(str(to))
    )
    return run_counted(conn, stmt, recipients_t, pre, recipient_deltas)


def move_recipients(conn: Connection, recipient_ids: Sequence[int], chunk_id: int, now: datetime) -> int:
    """Pending recipients -> another chunk (a split, a failover move), their state unchanged; their counters
    follow them to that chunk's provider. Returns how many moved."""
    r = recipients_t.c
    where = (r.id.in_(list(recipient_ids)), r.state == str(RecipientState.PENDING))
    stmt = update(recipients_t).where(*where).values(chunk_id=chunk_id, updated_at=now)
    pre = recipient_pre(where, new_chunk=literal(chunk_id, r.chunk_id.type))
    return run_counted(conn, stmt, recipients_t, pre, recipient_deltas)


def apply_updates(conn: Connection, updates: Sequence[RecipientUpdate], now: datetime, *, sent: bool) -> int:
    """Record many recipients' new facts with ONE set-based `UPDATE recipients … FROM <rows>`.

    Only rows still in the transition's allowed-from states are written (a send result only to
    `pending` or `unknown` rows). The rows travel as one JSON document (`json_array_elements` on
    PostgreSQL, `json_each` on SQLite), so the statement text never changes and is compiled once. Its
    counters go with it (`tally_stmts.results_stmts`): in the same statement on PostgreSQL, one statement
    before it on SQLite; a send result also counts each row in its minute's `sent` counter (the rate).
    A `next_poll_at` is never set inside a poll claim's stretch (`polling.after_claims`: moved to just
    after the latest claim). Returns how many rows were written.
    """
    if not updates:
        return 0
    if any(u.next_poll_at is not None for u in updates):  # first, before any row lock (`after_claims`)
        updates = floored(updates, after_claims(conn))
    sqlite = conn.dialect.name == "sqlite"
    params = update_rows_params(updates, sqlite=sqlite)
    params["now"] = now
    if sent:
        params["bucket"] = bucket_of(now)
    statements = results_stmts(sqlite, sent)
    if sqlite:
        tally, update_stmt = statements
        conn.execute(tally, {**params, **result_keys(updates)})
        return conn.execute(update_stmt, params).rowcount
    return conn.execute(statements[0], params).scalar_one()


def recount_chunks(conn: Connection, chunk_ids: Sequence[int], sign: int, *, recipients: bool = True) -> None:
    """Take away (-1) or add (+1) the chunks' counters as they are now, with their recipients' unless told
    not to (`tally_stmts.recount_chunks`)."""
    if chunk_ids:
        conn.execute(recount_chunks_stmt(chunk_ids, sign, conn.dialect.name == "sqlite", recipients))
