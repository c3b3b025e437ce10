"""The counted statements built once: the send path's (a claim, a batch of results) and folding the shards.

Each is `campaigns.store.tally`'s counted form of a statement of `campaigns.store.sql`, cached per backend and
shape like the statements it wraps, so the send path builds nothing per chunk.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from functools import cache
from typing import Any

from sqlalchemy import (
    BigInteger,
    Select,
    bindparam,
    case,
    delete,
    exists,
    func,
    select,
    true,
    tuple_,
    union_all,
)
from sqlalchemy.dialects.postgresql import insert as pg_insert

from campaigns.states import RECIPIENT_TRANSITIONS, ChunkState, RecipientState, RecipientTransition
from campaigns.store.sql import (
    charge_stmt,
    chunks_t,
    claim_stmt,
    claim_where,
    recipients_t,
    result_parts,
    transition_where,
)
from campaigns.store.tally import (
    KEY,
    VALUES,
    chunk_deltas,
    chunk_pre,
    const,
    counted_pg,
    counted_sqlite,
    counts_t,
    recipient_deltas,
    recipient_pre,
    recipient_snapshot,
    upsert,
)


# ---- folding the shards (PostgreSQL) --------------------------------------------------------------------
@cache
def fold_stmt(limit: int) -> Any:
    """Fold up to `limit` counter rows of the writers' shards into shard 0, skipping rows a writer holds now
    (`FOR UPDATE SKIP LOCKED`: folding never waits on a worker, nor a worker long on it). Returns how many
    rows it folded. Run under an advisory lock, so two folds never meet on a shard-0 row."""
    t = counts_t.c
    key = [t[k] for k in KEY]
    taken = select(*key).where(t.shard != 0).limit(limit).with_for_update(skip_locked=True)
    gone = (
        delete(counts_t).where(tuple_(*key).in_(taken)).returning(*key, *(t[v] for v in VALUES)).cte("gone")
    )
    group = [gone.c[k] for k in KEY if k != "shard"]
    moved = select(*group, const(0).label("shard"), *(func.sum(gone.c[v]).label(v) for v in VALUES)).group_by(
        *group
    )
    ins = pg_insert(counts_t).from_select([*KEY, *VALUES], moved)
    ins = ins.on_conflict_do_update(
        index_elements=list(KEY), set_={v: counts_t.c[v] + ins.excluded[v] for v in VALUES}
    ).cte("folded")
    return select(func.count()).select_from(gone).add_cte(ins)


# ---- the hot statements, built once ---------------------------------------------------------------------
@cache
def results_stmts(sqlite: bool, sent: bool) -> tuple[Any, ...]:
    """The set-based recipient transition (`sql.recipient_update_stmt`) with its counters: on PostgreSQL one
    statement returning how many rows it wrote; on SQLite (the counters' INSERT, the UPDATE). Parameters:
    those of `sql.recipient_update_stmt`, and `bucket` (`bucket_of(now)`) for a send result, whose rows
    each count one send in that minute."""
    source, update, where = result_parts(sqlite, sent)
    bucket = bindparam("bucket", type_=BigInteger) if sent else None

    def deltas(p: Any) -> Select[Any]:
        return recipient_deltas(p, bucket)

    if sqlite:
        return counted_sqlite(_sqlite_result_pre(sent), deltas), update
    pre = recipient_pre(
        where,
        source=source,
        new_state=source.c.state,
        new_cost=func.coalesce(source.c.cost, recipients_t.c.cost_rial),
        polled=not sent,
    )
    return (counted_pg(update, recipients_t, pre, deltas),)


# SQLite: a result row's id and new state travel as one integer (`result_keys`), so the counters' pre-image
# reads no JSON text per row (SQLite 3.40's json_extract re-parses its argument: 1.4 us a call here).
STATE_CODES = tuple(RecipientState)
_STATE_BITS = 4
assert len(STATE_CODES) <= 1 << _STATE_BITS


def result_keys(updates: Iterable[Any]) -> dict[str, str]:
    """The parameters of the SQLite counters of a result batch (`RecipientUpdate`s): `keys`, each row's id and
    new state as id * 16 + the state's index in STATE_CODES, and `costs`, [id, cost] of the rows that carry a
    cost, both JSON."""
    rows = list(updates)
    code = {state: i for i, state in enumerate(STATE_CODES)}
    keys = [u.recipient_id << _STATE_BITS | code[RecipientState(u.state)] for u in rows]
    costs = [[u.recipient_id, u.cost] for u in rows if u.cost is not None]
    return {"keys": json.dumps(keys), "costs": json.dumps(costs)}


def _sqlite_result_pre(sent: bool) -> Select[Any]:
    """`recipient_pre` of a result batch on SQLite, from `result_keys`' parameters: the rows the update
    writes (allowed-from states), with their new state and cost."""
    each = func.json_each(bindparam("keys")).table_valued("value").alias("k")
    keyed = select(
        (each.c.value.op(">>")(_STATE_BITS)).label("id"),
        (each.c.value.op("&")((1 << _STATE_BITS) - 1)).label("code"),
    ).subquery("v")
    costs = func.json_each(bindparam("costs")).table_valued("value").alias("c")
    priced = select(
        func.json_extract(costs.c.value, "$[0]").label("id"),
        func.json_extract(costs.c.value, "$[1]").label("cost"),
    ).subquery("p")
    r = recipients_t.c
    name = RecipientTransition.SEND_RESULT if sent else RecipientTransition.STATUS_RESULT
    where = transition_where(recipients_t, RECIPIENT_TRANSITIONS, name, r.id == keyed.c.id, by_key=True)
    new_state = case(*((keyed.c.code == i, const(str(state))) for i, state in enumerate(STATE_CODES)))
    source = keyed.outerjoin(priced, priced.c.id == keyed.c.id)
    return recipient_pre(
        where,
        source=source,
        new_state=new_state,
        new_cost=func.coalesce(priced.c.cost, r.cost_rial),
        polled=not sent,
    )


@cache
def claim_stmts(sqlite: bool, with_attempt: bool) -> Any:
    """The claim's counters (a chunk queued or retry -> sending). Parameters as `sql.claim_stmt`.

    SQLite: their INSERT, to run after the budget's charge (`sql.charge_stmt`) found a row and just before
    `sql.claim_stmt`. PostgreSQL: the charge, the claim and its counters as ONE statement (data-modifying
    CTEs), one round trip: the claim's pre-image runs only when the charge returned a row (`EXISTS`), so the
    campaign row is locked before the chunk's, as `cancel` takes them. Returns no row (not charged:
    `sql.over_cap_stmt` tells why), or one row with `charged` and the claim's columns, NULL when another claim
    took the chunk between the two (roll back: `sending.ClaimLost`).
    """
    sending = str(ChunkState.SENDING)
    where = claim_where(with_attempt)
    if sqlite:
        return counted_sqlite(chunk_pre(where, sending), chunk_deltas)
    charge = charge_stmt(with_attempt).cte("charge")
    locked = chunk_pre((*where, exists(select(charge.c.id))), sending).with_for_update(of=chunks_t).cte("pre")
    claim = claim_stmt(with_attempt).where(chunks_t.c.id.in_(select(locked.c.id))).cte("claim")
    tally = upsert(chunk_deltas(locked), sqlite=False).cte("tally")
    return (
        select(charge.c.id.label("charged"), claim.c.campaign_id, claim.c.attempt, claim.c.sending_since)
        .select_from(charge.outerjoin(claim, true()))
        .add_cte(tally)
    )


def recount_chunks(chunk_ids: Iterable[int], sign: int, sqlite: bool, recipients: bool = True) -> Any:
    """Take away (-1) or add (+1) the chunks' counters as they are now, with those of their recipients when
    `recipients` (their estimate is their parts at the chunk's rial per part): around a write that changes a
    chunk's parts or estimate (shrink, split). `recipients=False`: a new chunk, before recipients move into it.
    PostgreSQL: the recipients are locked, so the -1 and the +1 around the write count the same rows."""
    ids = list(chunk_ids)
    chunks = chunk_pre((chunks_t.c.id.in_(ids),), "").subquery("pre")
    parts = [chunk_deltas(chunks, sign)]
    if recipients:
        pre = recipient_pre((recipients_t.c.chunk_id.in_(ids),))
        if not sqlite:
            pre = pre.with_for_update(of=recipients_t)
        parts.append(recipient_snapshot(pre.subquery("rpre"), sign))
    return upsert(union_all(*parts) if len(parts) > 1 else parts[0], sqlite)
