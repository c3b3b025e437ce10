"""The send path in one round trip each way (PostgreSQL): the quick claim and the quick record.

A chunk's send used to take eleven round trips to the database besides its HTTP call: the peek before the
claim (its own transaction), the claim's transaction (BEGIN, the claim, the read of what to send, the daily
cap's charge, COMMIT) and the record's (BEGIN, the recipients' results, the chunk's transition, COMMIT), with
a ping at each of the three checkouts (docs/benchmarks.md). Here each side is ONE statement, run on its own
(autocommit: one statement is one transaction):

* `quick_claim_stmt`: the peek, and, when the chunk needs nothing the peek is for, the claim with its
  budget charge and counters and the read of its pending recipients. "Nothing the peek is for": the campaign
  has no send window, no failover route and no daily-capped principal, the provider is one this process
  sends to without a rate limit (`:providers`), the chunk's caps hold. Otherwise nothing is claimed and the
  peek's columns say what the caller's usual path (`Store.chunk_cost`'s facts, without reading them again)
  must look at. The compare-and-set is the same `claim` transition as `sql.claim_stmt`, guarded by the same
  `sql.claimable` at the message's attempt, on the chunk row locked first: never twice.
* `quick_record_stmt`: a send's results (`sql.recipient_update_stmt`, set-based) and the chunk's
  `accept` transition, with their counters, in one statement.

Lock order is the claim's and `cancel`'s everywhere: the campaign row, then the chunk (claim); recipients,
then the chunk (record), as the two-statement record did. The budget is charged only by a claim that applied:
the charge reads the claim's own returned row, so a racing duplicate can never charge without claiming (the
two-statement claim charged first and rolled back: `sending.ClaimLost`).

SQLite keeps the transaction path (in-process: a statement costs no round trip there).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from functools import cache
from types import SimpleNamespace
from typing import Any

from sqlalchemy import (
    ARRAY,
    BigInteger,
    Connection,
    Text,
    any_,
    bindparam,
    exists,
    func,
    select,
    true,
    union_all,
    update,
)

from campaigns.records import ChunkPeek, ClaimedChunk, RecipientUpdate
from campaigns.states import CHUNK_TRANSITIONS, CampaignState, ChunkState, ChunkTransition, RecipientState
from campaigns.store import raw, sending
from campaigns.store.polling import after_claims_pg
from campaigns.store.queue import peek_of, peek_stmt
from campaigns.store.raw import RawStatement
from campaigns.store.sql import (
    campaigns_t,
    chunks_t,
    claim_stmt,
    claim_where,
    claimable,
    recipients_t,
    result_parts,
    transition,
    transition_where,
    update_rows_params,
    within_caps,
)
from campaigns.store.tally import bucket_of, chunk_deltas, chunk_pre, recipient_deltas, recipient_pre, upsert


@cache
def quick_claim_stmt() -> Any:
    """The peek and, when nothing else must be asked first, the claim (see the module's docstring).

    Parameters: chunk_id, attempt (the message's: a quick claim always names it), now, lease_until, providers
    (names this process sends to without a rate limit). Rows: one per pending recipient when claimed (else one
    row), ordered by recipient id; columns `provider`, `window`, `parts`, `claimable`, `route`, `attempt`
    (the peek's, as `queue.chunk_cost` reads them), the campaign's send facts (`campaign_provider`, `account`,
    `sender`, `message`, `ref_prefix`, `on_unknown`, `chunk_provider`, `chunk_account`, `chunk_sender`), and
    the claim's `campaign_id`, `claimed_attempt`, `sending_since` (NULL: not claimed) with `rid`, `phone`, `text`,
    `rparts` per pending recipient. No row: no such chunk.
    """
    k, c = chunks_t.c, campaigns_t.c
    now = bindparam("now", type_=k.updated_at.type)
    provider = func.coalesce(k.provider, c.provider)
    at_attempt = k.attempt == bindparam("attempt")
    peek = (
        peek_stmt(True)  # `queue.chunk_cost`'s peek, at the message's attempt
        .add_columns(
            c.provider.label("campaign_provider"),
            c.account,
            c.sender,
            c.message,
            c.ref_prefix,
            c.on_unknown,
            k.provider.label("chunk_provider"),
            k.account.label("chunk_account"),
            k.sender.label("chunk_sender"),
        )
        .cte("peek")
    )
    # The campaign row first (as `cancel` and the two-statement claim take them), locked, with its caps read
    # as they are once the lock is held: only when the chunk needs nothing the peek is for.
    quick = (
        c.state == str(CampaignState.RUNNING),  # on the locked row: a pause that committed meanwhile holds
        c.window.is_(None),
        c.route.is_(None),
        c.spend_principal.is_(None),
        provider == any_(bindparam("providers", type_=ARRAY(Text))),
    )
    campaign = (
        select(c.id)
        .select_from(chunks_t.join(campaigns_t, c.id == k.campaign_id))
        .where(
            k.id == bindparam("chunk_id"),
            claimable(now),
            at_attempt,
            within_caps(k.cost_rial, k.parts),
            *quick,
        )
        .with_for_update(of=campaigns_t)
        .cte("campaign")
    )
    # Then the chunk: its claim's pre-image, locked, re-checked on the newest row (the compare-and-set).
    locked = (
        chunk_pre((*claim_where(True), exists(select(campaign.c.id))), str(ChunkState.SENDING))
        .with_for_update(of=chunks_t)
        .cte("pre")
    )
    claim = claim_stmt(True).where(k.id.in_(select(locked.c.id))).cte("claim")
    charge = (
        update(campaigns_t)
        .where(c.id.in_(select(claim.c.campaign_id)))
        .values(
            spent_rial=c.spent_rial + select(locked.c.cost_rial).scalar_subquery(),
            spent_parts=c.spent_parts + select(locked.c.parts).scalar_subquery(),
        )
        .returning(c.id)
        .cte("charge")
    )
    tally = upsert(chunk_deltas(locked), sqlite=False).cte("tally")
    r = recipients_t.alias("r")
    return (
        select(
            *peek.c,
            claim.c.campaign_id,
            claim.c.attempt.label("claimed_attempt"),
            claim.c.sending_since,
            r.c.id.label("rid"),
            r.c.phone,
            r.c.text,
            r.c.parts.label("rparts"),
        )
        .select_from(
            peek.outerjoin(claim, true()).outerjoin(
                r,
                (r.c.chunk_id == bindparam("chunk_id"))
                & (r.c.state == str(RecipientState.PENDING))
                & claim.c.campaign_id.is_not(None),
            )
        )
        .order_by(r.c.id)
        .add_cte(charge)
        .add_cte(tally)
    )


@cache
def quick_record_stmt() -> Any:
    """A send's results and the chunk's `accept`, with their counters, as ONE statement (PostgreSQL).

    Parameters: those of `sql.recipient_update_stmt` (the rows' arrays, `now`), `bucket`
    (`tally.bucket_of(now)`), `k_id` and `at_attempt` (the chunk and its claimed attempt). Returns one row: `recipients`
    written, and `accepted` (1 when the chunk's transition applied, else 0).
    """
    source, results, where = result_parts(False, True)
    bucket = bindparam("bucket", type_=BigInteger)
    r_pre = (
        recipient_pre(
            where,
            source=source,
            new_state=source.c.state,
            new_cost=func.coalesce(source.c.cost, recipients_t.c.cost_rial),
        )
        .with_for_update(of=recipients_t)
        .cte("rpre")
    )
    results = results.values(next_poll_at=after_claims_pg(source.c.next))  # as apply_updates floors it
    r_upd = results.where(recipients_t.c.id.in_(select(r_pre.c.id))).returning(recipients_t.c.id).cte("rupd")
    k = chunks_t.c
    now = bindparam("now", type_=k.updated_at.type)
    # not named `chunk_id` or `attempt`: a parameter named as a column of an UPDATE's table is one more SET
    on_chunk = (k.id == bindparam("k_id"), k.attempt == bindparam("at_attempt"))
    _, to = CHUNK_TRANSITIONS[ChunkTransition.ACCEPT]
    k_pre = (
        chunk_pre(transition_where(chunks_t, CHUNK_TRANSITIONS, ChunkTransition.ACCEPT, *on_chunk), to)
        .with_for_update(of=chunks_t)
        .cte("kpre")
    )
    accept = transition(
        chunks_t, CHUNK_TRANSITIONS, ChunkTransition.ACCEPT, now, *on_chunk, lease_until=None, last_error=None
    )
    k_upd = accept.where(k.id.in_(select(k_pre.c.id))).returning(k.id).cte("kupd")
    tally = upsert(union_all(recipient_deltas(r_pre, bucket), chunk_deltas(k_pre)), sqlite=False).cte("tally")
    return select(
        select(func.count()).select_from(r_upd).scalar_subquery().label("recipients"),
        select(func.count()).select_from(k_upd).scalar_subquery().label("accepted"),
    ).add_cte(tally)


@cache
def _raw_claim() -> tuple[RawStatement, dict[str, int]]:
    stmt = quick_claim_stmt()
    col = {c.key: i for i, c in enumerate(stmt.selected_columns)}
    assert list(col)[-4:] == ["rid", "phone", "text", "rparts"]  # `quick_claim` slices them off together
    return RawStatement.of(stmt), col


@cache
def _raw_record() -> RawStatement:
    return RawStatement.of(quick_record_stmt())


def quick_claim(
    conn: Any,
    chunk_id: int,
    attempt: int,
    lease_until: datetime,
    providers: Sequence[str],
    now: datetime,
) -> ClaimedChunk | ChunkPeek | None:
    """Run `quick_claim_stmt` on a pooled DBAPI connection in autocommit (`raw.run`): the claimed chunk (as `sending.load_claimed` gives
    it), or the peek (`queue.chunk_cost`'s facts: nothing was claimed), or None (no such chunk)."""
    stmt, col = _raw_claim()
    params = {
        "chunk_id": chunk_id,
        "attempt": attempt,
        "now": now,
        "lease_until": lease_until,
        "providers": list(providers),
    }
    rows = raw.run(conn, stmt, params)
    if not rows:
        return None
    head = rows[0]
    if head[col["campaign_id"]] is None:
        return peek_of(head)  # the statement's first six columns are the peek's
    facts = SimpleNamespace(
        provider=head[col["campaign_provider"]], **{name: head[col[name]] for name in _SEND_FACTS}
    )
    rid = col["rid"]  # rid, phone, text, rparts: the statement's last columns, in that order
    pending = [r[rid:] for r in rows if r[rid] is not None]
    return sending.to_send(
        chunk_id,
        head[col["campaign_id"]],
        head[col["claimed_attempt"]],
        head[col["sending_since"]].astimezone(UTC),
        facts,
        pending,
    )


# `sending.to_send`'s facts, as the statement names them (the campaign's provider is `campaign_provider`)
_SEND_FACTS = (
    "account",
    "sender",
    "message",
    "ref_prefix",
    "on_unknown",
    "chunk_provider",
    "chunk_account",
    "chunk_sender",
)


def quick_record(conn: Any, chunk: ClaimedChunk, updates: Sequence[RecipientUpdate], now: datetime) -> bool:
    """Run `quick_record_stmt` on a pooled DBAPI connection in autocommit (`raw.run`): the results written and the chunk accepted, as
    `sending.record_send` without a requeue does in its transaction. True when the chunk's transition applied."""
    params = update_rows_params(updates, sqlite=False)
    params |= {"now": now, "bucket": bucket_of(now), "k_id": chunk.chunk_id, "at_attempt": chunk.attempt}
    ((_, accepted),) = raw.run(conn, _raw_record(), params)
    return accepted == 1


@cache
def _sqlite_peek_stmt() -> Any:
    """`queue.chunk_cost`'s peek at the message's attempt, with whether a principal started the campaign."""
    return peek_stmt(True).add_columns(campaigns_t.c.spend_principal)


def quick_claim_sqlite(
    conn: Connection, chunk_id: int, attempt: int, lease: timedelta, providers: Sequence[str], now: datetime
) -> ClaimedChunk | ChunkPeek | None:
    """SQLite, in the caller's transaction (BEGIN IMMEDIATE: nothing changes in between): the peek, then, when
    the chunk needs nothing the peek is for (as `quick_claim_stmt` decides), `sending.claim_chunk` without the
    daily cap's read. Returns as `quick_claim`; a claim that found the chunk over a cap returns the peek as not
    claimable (the campaign is paused then, in this transaction)."""
    row = conn.execute(_sqlite_peek_stmt(), {"chunk_id": chunk_id, "attempt": attempt, "now": now}).first()
    if row is None:
        return None
    peek = peek_of(row)
    quick = row.window is None and row.route is None and row.spend_principal is None
    if not (peek.claimable and quick and row.provider in providers):
        return peek
    claimed = sending.claim_chunk(conn, chunk_id, attempt, lease, now, daily=False)
    return claimed if claimed is not None else peek._replace(claimable=False)
