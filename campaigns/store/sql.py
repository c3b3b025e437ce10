"""The store's SQL builders: `transition()` (every state write), `claimable()` (the claim's condition,
written once) and the hot statements, each built once per process.

Pure: nothing here executes. The modules beside it execute these inside the connection the `Store`
facade gives them. Statements on the hot paths (the claim, a send's or a poll's recipient rows) are
built once with bind parameters and cached, so their text never changes and is compiled once.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import UTC, datetime
from functools import cache
from typing import Any

from sqlalchemy import (
    ColumnElement,
    Update,
    and_,
    bindparam,
    column,
    func,
    or_,
    select,
    text,
    update,
)

from campaigns.models import Campaign, Chunk, InboxCursor, Recipient, Suppression
from campaigns.records import RecipientUpdate
from campaigns.states import (
    AWAITING_REPORT,
    CHUNK_TRANSITIONS,
    RECIPIENT_TRANSITIONS,
    CampaignState,
    ChunkState,
    ChunkTransition,
    RecipientState,
    RecipientTransition,
)

campaigns_t = Campaign.__table__
chunks_t = Chunk.__table__
recipients_t = Recipient.__table__
suppressions_t = Suppression.__table__
inbox_cursors_t = InboxCursor.__table__

C, K, R = CampaignState, ChunkState, RecipientState


def transition(
    table: Any,
    transitions: dict[Any, Any],
    name: str,
    now: datetime,
    *where: Any,
    by_key: bool = False,
    **values: Any,
) -> Update:
    """`UPDATE table SET state = <to> … WHERE state IN (<allowed from>) AND <where>`, from the table in states.py.

    Every state change in the store is one of these statements, single-row or set-based. `by_key`:
    the rows are found by primary key (a set-based update joined to its rows); the state test is then
    written so that it cannot lead PostgreSQL's planner to scan a whole campaign by state instead
    (with stale statistics it did: a hash join over every pending row, for each chunk of 100).
    Raises KeyError for a name that is not in `transitions`.
    """
    _, to = transitions[name]
    if to is not None:  # None: a set-based transition whose rows each carry their new state in `values`
        values = {"state": to, **values}
    conditions = transition_where(table, transitions, name, *where, by_key=by_key)
    return update(table).where(*conditions).values(updated_at=now, **values)


def transition_where(
    table: Any, transitions: dict[Any, Any], name: str, *where: Any, by_key: bool = False
) -> tuple[Any, ...]:
    """The WHERE terms of `transition(table, transitions, name, now, *where, by_key=by_key)`: the rows it
    moves (its counters' pre-image reads exactly these, `campaigns.store.tally`)."""
    allowed, _ = transitions[name]
    state = table.c.state.concat("") if by_key else table.c.state
    return (state.in_(allowed), *where)


# Not correlated: inside a query that joins `campaigns` it must still mean "the running campaigns".
_RUNNING = select(campaigns_t.c.id).where(campaigns_t.c.state == C.RUNNING).correlate(None)


def claimable(now: Any) -> ColumnElement[bool]:
    """The claim's condition, the one place it is written: a chunk a worker may claim at `now`.

    In the claim transition's allowed-from states (queued or retry), queued or a retry that is due,
    and of a running campaign. The claim itself (`claim_stmt`: the claim transition, whose state test
    is the first term, guarded by the others), the budget's charge before it (`charge_stmt`), the work
    list (`Store.claimable_chunks`) and the peek before a claim (`Store.chunk_cost`) all use it. `now`: a
    datetime or a bind parameter. The budget (`within_caps`) is not part of it on purpose: the claim of a
    chunk that would cross a cap is what pauses the campaign, so the peek must let that chunk through.
    """
    allowed, _ = CHUNK_TRANSITIONS[ChunkTransition.CLAIM]
    return and_(chunks_t.c.state.in_(allowed), *_claim_guard(now))


def _claim_guard(now: Any) -> tuple[ColumnElement[bool], ...]:
    """`claimable` beyond the claim's allowed-from states (which `transition` writes itself)."""
    c = chunks_t.c
    return (
        or_(c.state == K.QUEUED, c.next_attempt_at <= now),  # a retry only when due
        c.campaign_id.in_(_RUNNING),
    )


def within_caps(cost: Any, parts: Any) -> ColumnElement[bool]:
    """The budget's condition, the one place it is written: the campaign's caps (rial, parts) still hold once
    `cost` rial and `parts` parts more are committed. No cap (NULL): always true."""
    c = campaigns_t.c
    return and_(
        or_(c.budget_rial.is_(None), c.spent_rial + cost <= c.budget_rial),
        or_(c.max_parts.is_(None), c.spent_parts + parts <= c.max_parts),
    )


@cache
def charge_stmt(with_attempt: bool) -> Any:
    """The claim's first statement, built once: commit the chunk's estimated cost and parts to its campaign
    (`spent_rial`, `spent_parts`) when the chunk is `claimable` and the campaign's caps still hold after it
    (`within_caps`). Run in the claim's transaction before the claim's compare-and-set (`claim_stmt`); the
    row lock it takes on the campaign serialises the claims of one campaign, so two racing claims never both
    fit under a cap that has room for one (PostgreSQL re-checks the condition on the newest campaign row).

    Parameters: chunk_id, now, and attempt when `with_attempt`. Returns the campaign id, or no row: the chunk
    is not claimable, or the next chunk would cross a cap (`over_cap_stmt` tells which).
    """
    k, c = chunks_t.c, campaigns_t.c
    now = bindparam("now", type_=k.updated_at.type)
    stmt = update(campaigns_t).where(
        c.id == k.campaign_id,
        k.id == bindparam("chunk_id"),
        claimable(now),
        within_caps(k.cost_rial, k.parts),
    )
    if with_attempt:
        stmt = stmt.where(k.attempt == bindparam("attempt"))
    return stmt.values(spent_rial=c.spent_rial + k.cost_rial, spent_parts=c.spent_parts + k.parts).returning(
        c.id
    )


@cache
def over_cap_stmt(with_attempt: bool) -> Any:
    """Why a charge found no row: the chunk's claimability and the campaign's caps, read. Parameters as
    `charge_stmt`; returns (campaign_id, claimable, within, spent_rial, budget_rial, spent_parts, max_parts)."""
    k, c = chunks_t.c, campaigns_t.c
    now = bindparam("now", type_=k.updated_at.type)
    condition = claimable(now)
    if with_attempt:
        condition = and_(condition, k.attempt == bindparam("attempt"))
    return (
        select(
            c.id,
            condition.label("claimable"),
            within_caps(k.cost_rial, k.parts).label("within"),
            c.spent_rial,
            c.budget_rial,
            c.spent_parts,
            c.max_parts,
        )
        .join(campaigns_t, c.id == k.campaign_id)
        .where(k.id == bindparam("chunk_id"))
    )


@cache
def refund_stmt() -> Any:
    """Give a chunk's estimated cost and parts back to its campaign (a refunded chunk: nothing of it went out).
    Parameter: chunk_id. Run only in the transaction whose transition moved the chunk out of `sending`."""
    k, c = chunks_t.c, campaigns_t.c
    return (
        update(campaigns_t)
        .where(c.id == k.campaign_id, k.id == bindparam("chunk_id"))
        .values(spent_rial=c.spent_rial - k.cost_rial, spent_parts=c.spent_parts - k.parts)
    )


@cache
def claim_stmt(with_attempt: bool) -> Any:
    """The claim's compare-and-set, built once (it ran for every chunk: ~0.2 ms of Python to build).

    Parameters: chunk_id, now, lease_until, and attempt when `with_attempt`. Returns the claimed
    chunk's campaign_id, attempt and sending_since, or no row. (What runs carries the claim's counters:
    `campaigns.store.tally_stmts.claim_stmts`.)
    """
    now = bindparam("now", type_=chunks_t.c.updated_at.type)
    stmt = transition(
        chunks_t,
        CHUNK_TRANSITIONS,
        ChunkTransition.CLAIM,
        now,
        *_claim_terms(with_attempt),
        attempt=chunks_t.c.attempt + 1,
        lease_until=bindparam("lease_until", type_=chunks_t.c.lease_until.type),
        sending_since=now,
    )
    return stmt.returning(chunks_t.c.campaign_id, chunks_t.c.attempt, chunks_t.c.sending_since)


def _claim_terms(with_attempt: bool) -> tuple[Any, ...]:
    now = bindparam("now", type_=chunks_t.c.updated_at.type)
    terms = (chunks_t.c.id == bindparam("chunk_id"), *_claim_guard(now))
    return (*terms, chunks_t.c.attempt == bindparam("attempt")) if with_attempt else terms


@cache
def claim_where(with_attempt: bool) -> tuple[Any, ...]:
    """The WHERE terms of `claim_stmt` (with the transition's state test: exactly `claimable(now)` for the
    chunk :chunk_id, at :attempt when `with_attempt`)."""
    return transition_where(chunks_t, CHUNK_TRANSITIONS, ChunkTransition.CLAIM, *_claim_terms(with_attempt))


_pending = recipients_t.alias("r")
# The campaign's row with the chunk's pending recipients joined to it (none: one row of NULLs).
# Parameters: campaign_id, chunk_id.
CLAIM_READ = (
    select(
        campaigns_t.c.provider,
        campaigns_t.c.account,
        campaigns_t.c.sender,
        campaigns_t.c.message,
        campaigns_t.c.ref_prefix,
        campaigns_t.c.on_unknown,
        _pending.c.id.label("rid"),
        _pending.c.phone,
        _pending.c.text,
        _pending.c.parts,
        # the chunk's own provider, account and line when failover moved it (else NULL)
        *(
            select(col)
            .where(chunks_t.c.id == bindparam("chunk_id"))
            .scalar_subquery()
            .label(f"chunk_{col.name}")
            for col in (chunks_t.c.provider, chunks_t.c.account, chunks_t.c.sender)
        ),
    )
    .select_from(
        campaigns_t.outerjoin(
            _pending,
            and_(
                _pending.c.chunk_id == bindparam("chunk_id"), _pending.c.state == str(RecipientState.PENDING)
            ),
        )
    )
    .where(campaigns_t.c.id == bindparam("campaign_id"))
    .order_by(_pending.c.id)
)

# PostgreSQL: walk an index in its order for the current transaction only (SET LOCAL).
INDEX_ORDER_ONLY = text(
    "SELECT set_config('enable_bitmapscan', 'off', true), set_config('enable_sort', 'off', true)"
)


def awaiting_report(state: Any) -> Any:
    """`state IN (sent, sent_to_operator)`, written so that PostgreSQL's planner cannot pick the
    (campaign, state) index for it: due polls are found through `ix_recipients_due_poll` in
    `next_poll_at` order (stopping at the LIMIT) and batches by primary key. With stale statistics
    it otherwise bitmap-scanned every sent recipient for each batch (measured: 10-25 ms a batch)."""
    return state.concat("").in_(list(AWAITING_REPORT))


# ---- a send's or a poll's recipient rows: one set-based UPDATE … FROM <rows> ---------------------------
_ROW_COLUMNS = ("id", "state", "mid", "code", "error", "next", "delivered", "cost")
# One JSON document (arrays of the row's values) rather than eight parallel arrays: psycopg dumps a Python list
# element by element in Python (~12 % of a worker's CPU for a chunk's eight arrays of 100), json.dumps in C.
_PG_ROWS = text(
    "SELECT (e->>0)::bigint AS id, e->>1 AS state, e->>2 AS mid, e->>3 AS code, e->>4 AS error, "
    "(e->>5)::timestamptz AS next, (e->>6)::timestamptz AS delivered, (e->>7)::double precision AS cost "
    "FROM json_array_elements(CAST(:rows AS json)) AS e"
)
# json_extract rather than ->> (3.38+): UPDATE … FROM needs SQLite 3.33, and the store already needs
# 3.35 for RETURNING.
_SQLITE_ROWS = text(
    "SELECT json_extract(value, '$[0]') AS id, json_extract(value, '$[1]') AS state, "
    "json_extract(value, '$[2]') AS mid, json_extract(value, '$[3]') AS code, "
    "json_extract(value, '$[4]') AS error, json_extract(value, '$[5]') AS next, "
    "json_extract(value, '$[6]') AS delivered, json_extract(value, '$[7]') AS cost FROM json_each(:rows)"
)
_SQLITE_TIME = "%Y-%m-%d %H:%M:%S.%f"  # how SQLAlchemy's SQLite DateTime stores a (naive UTC) time


def _sqlite_time(value: datetime | None) -> str | None:
    return None if value is None else value.astimezone(UTC).replace(tzinfo=None).strftime(_SQLITE_TIME)


def _iso(value: datetime | None) -> str | None:
    return None if value is None else value.isoformat()


def update_rows_params(updates: Sequence[RecipientUpdate], *, sqlite: bool) -> dict[str, Any]:
    """The rows of `recipient_update_stmt`: one JSON document, of arrays in `_ROW_COLUMNS`' order (times as
    SQLAlchemy's SQLite text, or ISO-8601 with their offset for PostgreSQL)."""
    spell = _sqlite_time if sqlite else _iso
    times: dict[datetime | None, str | None] = {None: None}  # a chunk's rows share their times: spelt once

    def time(value: datetime | None) -> str | None:
        text = times.get(value, times)
        if text is times:
            text = times[value] = spell(value)
        return text  # type: ignore[return-value]

    rows = [
        [
            u.recipient_id,
            str(u.state),
            u.provider_message_id,
            u.provider_status,
            u.error,
            times[n] if (n := u.next_poll_at) in times else time(n),  # the dict's hit inline: a call less
            times[d] if (d := u.delivered_at) in times else time(d),
            u.cost,
        ]
        for u in updates
    ]
    return {"rows": json.dumps(rows, ensure_ascii=False)}


@cache
def recipient_update_stmt(sqlite: bool, sent: bool) -> Any:
    """The set-based recipient transition, built once per (backend, kind); see `transitions.apply_updates`.

    `sent`: a send result (sets sent_at, counts an attempt), else a status result (counts a poll).
    Parameters: now, plus those of `update_rows_params`. (What runs is this statement with its counters,
    `campaigns.store.tally_stmts.results_stmts`.)
    """
    return result_parts(sqlite, sent)[1]


@cache
def result_parts(sqlite: bool, sent: bool) -> tuple[Any, Update, tuple[Any, ...]]:
    """(the rows' source `v`, the set-based UPDATE, its WHERE terms) of `recipient_update_stmt`."""
    source = (_SQLITE_ROWS if sqlite else _PG_ROWS).columns(*(column(c) for c in _ROW_COLUMNS)).subquery("v")
    r, v = recipients_t.c, source.c
    now = bindparam("now", type_=recipients_t.c.updated_at.type)
    values: dict[str, Any] = {
        "state": v.state,
        "provider_message_id": func.coalesce(v.mid, r.provider_message_id),
        "provider_status": func.coalesce(v.code, r.provider_status),
        "error": v.error,
        "next_poll_at": v.next,
        "delivered_at": func.coalesce(v.delivered, r.delivered_at),
        "cost_rial": func.coalesce(v.cost, r.cost_rial),  # a reply without a price keeps the one known
    }
    if sent:
        values |= {"sent_at": now, "attempts": r.attempts + 1}
        name = RecipientTransition.SEND_RESULT
    else:
        values |= {"polls": r.polls + 1}
        name = RecipientTransition.STATUS_RESULT
    where = transition_where(recipients_t, RECIPIENT_TRANSITIONS, name, r.id == v.id, by_key=True)
    return (
        source,
        transition(recipients_t, RECIPIENT_TRANSITIONS, name, now, r.id == v.id, by_key=True, **values),
        where,
    )
