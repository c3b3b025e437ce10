"""The chunk send path: claim (compare-and-set, committed before any HTTP), record what the provider
said, and the other ways an attempt ends (retry, unknown, failed, refused by the account, split).
Functions over the caller's transaction.

Budget (docs/architecture.md, "Budget"): a claim first charges the chunk's estimated rial and parts to its campaign
(`sql.charge_stmt`, under the caps), then claims; a chunk that would cross a cap is not claimed and its
campaign pauses with the reason, in the same transaction. A transition that says nothing of the chunk
went out (requeue: account refusal, split, part of a reply not sent; retry; failed before sending) gives
the charge back in its own transaction (`refund`); accepted and unknown chunks keep it.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Connection, func, insert, select, update

from campaigns.records import ClaimedChunk, OutMessage, RecipientUpdate, RetryVerdict
from campaigns.states import (
    CampaignTransition,
    ChunkState,
    ChunkTransition,
    RecipientState,
    RecipientTransition,
)
from campaigns.store.caps import charge_daily, refund_daily
from campaigns.store.lifecycle import pause_account
from campaigns.store.sql import (
    CLAIM_READ,
    campaigns_t,
    charge_stmt,
    chunks_t,
    claim_stmt,
    over_cap_stmt,
    recipients_t,
    refund_stmt,
)
from campaigns.store.tally_stmts import claim_stmts
from campaigns.store.transitions import (
    SENDING,
    apply_updates,
    campaign_to,
    chunk_to,
    move_recipients,
    pending_of_chunks_to,
    recount_chunks,
)

K, R, KT = ChunkState, RecipientState, ChunkTransition


class ClaimLost(Exception):
    """The charge applied but the compare-and-set found the chunk taken: roll the transaction back."""


def claim_chunk(
    conn: Connection,
    chunk_id: int,
    attempt: int | None,
    lease: timedelta,
    now: datetime,
    *,
    daily: bool = True,
) -> ClaimedChunk | None:
    """Charge the budget (`sql.charge_stmt`), compare-and-set queued/retry -> sending (`sql.claimable`) with
    its counters (`tally_stmts.claim_stmts`), then load what the send needs: two round trips on PostgreSQL.

    None: somebody else has it, it was sent, its retry is not due, the campaign is not running, or the chunk
    would cross the campaign's budget or part cap (the campaign is then paused with the reason, here).
    Raises ClaimLost when another claim took the chunk between the charge and the compare-and-set
    (PostgreSQL only); the caller rolls back, which undoes the charge, and treats it as None. Raises
    caps.DailyCapReached when the chunk would cross the daily cap of the user or key that started the
    campaign; the caller rolls back and pauses the campaign (`caps.pause_at_daily_cap`). `daily=False`: the
    caller read in this transaction that no user or key with a daily cap started the campaign.
    """
    with_attempt = attempt is not None
    params = {"chunk_id": chunk_id, "now": now, "lease_until": now + lease, "attempt": attempt}
    if conn.dialect.name == "postgresql":  # charge, claim and counters in one statement: one round trip
        claimed = conn.execute(claim_stmts(False, with_attempt), params).first()
        charged = claimed is not None
        if charged and claimed.campaign_id is None:
            raise ClaimLost(chunk_id)
    else:
        charged = conn.execute(charge_stmt(with_attempt), params).first() is not None
        claimed = None
        if charged:
            conn.execute(claim_stmts(True, with_attempt), params)  # the claim's counters, just before it
            claimed = conn.execute(claim_stmt(with_attempt), params).first()
        if charged and claimed is None:
            raise ClaimLost(chunk_id)
    if not charged:
        pause_over_cap(conn, chunk_id, attempt, now)
        return None
    if daily:
        charge_daily(conn, chunk_id)  # the daily cap of who started it (campaigns/store/caps.py); may raise
    return load_claimed(conn, chunk_id, claimed)


BUDGET_REACHED = "budget reached"
PART_CAP_REACHED = "part cap reached"


def resume_command(campaign_id: int, reason: str | None) -> str:
    """The command that continues a paused campaign: a pause at a cap (`cap_reason`) needs the cap raised."""
    why = reason or ""
    option = " --budget RIAL" if why.startswith(BUDGET_REACHED) else ""
    option = " --max-parts N" if why.startswith(PART_CAP_REACHED) else option
    return f"smsdispatch resume {campaign_id}{option}"


def cap_reason(spent_rial: int, budget_rial: int | None, spent_parts: int, max_parts: int | None) -> str:
    """ "budget reached: 49,800 of 50,000 rial" or "part cap reached: 400 of 450 parts" (rial first)."""
    if budget_rial is not None:
        return f"{BUDGET_REACHED}: {spent_rial:,} of {budget_rial:,} rial"
    return f"{PART_CAP_REACHED}: {spent_parts:,} of {max_parts or 0:,} parts"


def pause_over_cap(conn: Connection, chunk_id: int, attempt: int | None, now: datetime) -> bool:
    """After a charge found no row: when the chunk is claimable and would cross a cap, pause its campaign
    with the reason (`cap_reason`, naming the cap it would cross). True when it paused."""
    params = {"chunk_id": chunk_id, "now": now, "attempt": attempt}
    row = conn.execute(over_cap_stmt(attempt is not None), params).first()
    if row is None or not row.claimable or row.within:
        return False  # not claimable (a duplicate or stale message), or a cap was raised meanwhile
    rial_crossed = row.budget_rial is not None and row.max_parts is not None
    if rial_crossed:  # both caps set: name the one this chunk crosses
        probe = conn.execute(select(chunks_t.c.cost_rial).where(chunks_t.c.id == chunk_id)).scalar_one()
        rial_crossed = row.spent_rial + probe > row.budget_rial
    reason = (
        cap_reason(row.spent_rial, row.budget_rial, row.spent_parts, None)
        if rial_crossed or row.max_parts is None
        else cap_reason(row.spent_rial, None, row.spent_parts, row.max_parts)
    )
    return campaign_to(conn, row.id, CampaignTransition.PAUSE, now, reason)


def refund(conn: Connection, chunk_id: int) -> None:
    """Give the chunk's charge back to its campaign; call only when a transition just moved it out of sending."""
    conn.execute(refund_stmt(), {"chunk_id": chunk_id})
    refund_daily(conn, chunk_id)


_RID = list(CLAIM_READ.selected_columns.keys()).index("rid")  # rid, phone, text, parts follow in that order
assert list(CLAIM_READ.selected_columns.keys())[_RID : _RID + 4] == ["rid", "phone", "text", "parts"]


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
    # by position (CLAIM_READ's rid, phone, text, parts): a Row's attribute lookups cost more per recipient
    pending = [t[_RID : _RID + 4] for t in rows if t[_RID] is not None]
    return to_send(chunk_id, claimed.campaign_id, claimed.attempt, claimed.sending_since, rows[0], pending)


def to_send(
    chunk_id: int,
    campaign_id: int,
    attempt: int,
    sending_since: datetime,
    facts: Any,
    pending: Sequence[Sequence[Any]],
) -> ClaimedChunk:
    """A claimed chunk from what its claim read: `facts` (by attribute, as CLAIM_READ's columns: the
    campaign's provider, account, sender, message, ref_prefix, on_unknown and the chunk's own
    chunk_provider, chunk_account, chunk_sender) and `pending` ((recipient id, phone, text or None for the
    campaign's message, SMS parts) per pending recipient, by id). Pure."""
    # A chunk re-planned for another provider of the route (failover) carries its own; "" sender: the
    # provider's configured line.
    own = facts.chunk_provider
    message, prefix = facts.message, facts.ref_prefix
    messages = tuple(
        OutMessage(rid, phone, message if text is None else text, f"{prefix}{rid}")
        for rid, phone, text, _ in pending
    )
    return ClaimedChunk(
        chunk_id=chunk_id,
        campaign_id=campaign_id,
        attempt=attempt,
        provider=own or facts.provider,
        account=facts.chunk_account or facts.account,
        sender=facts.sender if own is None else (facts.chunk_sender or ""),
        parts=sum(t[3] for t in pending),
        on_unknown=facts.on_unknown,
        sending_since=sending_since,
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
        ok = chunk_to(
            conn, chunk.chunk_id, KT.REQUEUE, now, chunk.attempt, SENDING, lease_until=None, queued_at=now
        )
        if ok:
            shrink_to_pending(conn, chunk.chunk_id)
        return ok
    return chunk_to(conn, chunk.chunk_id, KT.ACCEPT, now, chunk.attempt, lease_until=None, last_error=None)


def shrink_to_pending(conn: Connection, chunk_id: int) -> None:
    """A chunk requeued after part of it went out: its parts and estimated rial become those of its still-pending
    recipients (the cost in proportion to the parts, rounded up), and that part of the charge is given back;
    the part that went out stays committed. The next claim charges what is left."""
    old = conn.execute(select(chunks_t.c.parts, chunks_t.c.cost_rial).where(chunks_t.c.id == chunk_id)).one()
    pending_parts = conn.execute(
        select(func.coalesce(func.sum(recipients_t.c.parts), 0)).where(
            recipients_t.c.chunk_id == chunk_id, recipients_t.c.state == R.PENDING
        )
    ).scalar_one()
    cost = _share(old.cost_rial, int(pending_parts), old.parts)
    recount_chunks(conn, [chunk_id], -1)  # its counters follow its new parts and estimate
    conn.execute(
        update(chunks_t).where(chunks_t.c.id == chunk_id).values(parts=int(pending_parts), cost_rial=cost)
    )
    recount_chunks(conn, [chunk_id], 1)
    refund(conn, chunk_id)


def chunk_retry(
    conn: Connection, chunk: ClaimedChunk, error: str, delay: float, max_attempts: int, now: datetime
) -> RetryVerdict:
    """Transient failure: back off `delay` seconds, or fail the chunk once `max_attempts` sends were tried."""
    if chunk.attempt >= max_attempts:
        fail_chunk(
            conn, chunk.chunk_id, f"gave up after {chunk.attempt} attempts: {error}", now, chunk.attempt
        )
        return RetryVerdict.FAILED
    retried = chunk_to(
        conn,
        chunk.chunk_id,
        KT.RETRY,
        now,
        attempt=chunk.attempt,
        next_attempt_at=now + timedelta(seconds=delay),
        lease_until=None,
        last_error=error,
    )
    if retried:  # nothing went out; the retry's claim charges again
        refund(conn, chunk.chunk_id)
    return RetryVerdict.RETRY


def chunk_unknown(conn: Connection, chunk: ClaimedChunk, error: str, now: datetime) -> bool:
    """An ambiguous send: the attempt -> unknown, for reconciliation."""
    return chunk_to(
        conn, chunk.chunk_id, KT.UNKNOWN, now, attempt=chunk.attempt, lease_until=None, last_error=error
    )


def fail_chunk(
    conn: Connection, chunk_id: int, error: str, now: datetime, attempt: int | None = None
) -> bool:
    """The chunk -> failed and its still-pending recipients -> failed, with `error`.

    From `sending` (the provider refused the request, or retries gave up: nothing went out) its charge is
    given back; from `unknown` (it may have gone out) it is kept.
    """
    ok = chunk_to(conn, chunk_id, KT.FAIL, now, attempt, SENDING, lease_until=None, last_error=error)
    if ok:
        refund(conn, chunk_id)
    else:
        ok = chunk_to(conn, chunk_id, KT.FAIL, now, attempt, lease_until=None, last_error=error)
    if ok:
        pending_of_chunks_to(conn, [chunk_id], RecipientTransition.FAIL, now, error)
    return ok


def requeue_sent_nothing(conn: Connection, chunk: ClaimedChunk, reason: str, now: datetime) -> bool:
    """The claimed attempt sent nothing (account refusal, refused batch): back to the queue, its charge
    given back (the next claim charges again)."""
    ok = chunk_to(
        conn,
        chunk.chunk_id,
        KT.REQUEUE,
        now,
        chunk.attempt,
        SENDING,
        lease_until=None,
        last_error=reason,
        queued_at=now,
    )
    if ok:
        refund(conn, chunk.chunk_id)
    return ok


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
    k = chunks_t.c
    head = conn.execute(
        select(k.seq, k.parts, k.cost_rial, k.provider, k.account, k.sender).where(k.id == chunk.chunk_id)
    ).one()
    seq = head.seq
    parts = conn.execute(
        select(func.coalesce(func.sum(recipients_t.c.parts), 0)).where(recipients_t.c.id.in_(second))
    ).scalar_one()
    # the estimated rial follows the parts, each half rounded up (the refund above gave the whole back)
    cost2 = _share(head.cost_rial, int(parts), head.parts)
    cost1 = _share(head.cost_rial, head.parts - int(parts), head.parts)
    new_id = conn.execute(
        insert(chunks_t)
        .values(
            campaign_id=chunk.campaign_id,
            seq=seq,
            state=K.QUEUED,
            attempt=0,
            size=len(second),
            parts=int(parts),
            cost_rial=cost2,
            queued_at=now,
            updated_at=now,
            # a chunk failover moved keeps its provider in both halves
            provider=head.provider,
            account=head.account,
            sender=head.sender,
        )
        .returning(chunks_t.c.id)
    ).scalar_one()
    recount_chunks(conn, [new_id], 1, recipients=False)
    move_recipients(conn, second, new_id, now)  # their state does not change
    recount_chunks(conn, [chunk.chunk_id], -1)  # its counters follow its new parts and estimate
    conn.execute(
        update(chunks_t)
        .where(chunks_t.c.id == chunk.chunk_id)
        .values(size=len(ids) - len(second), parts=chunks_t.c.parts - int(parts), cost_rial=cost1)
    )
    recount_chunks(conn, [chunk.chunk_id], 1)
    conn.execute(
        update(campaigns_t)
        .where(campaigns_t.c.id == chunk.campaign_id)
        .values(chunks=campaigns_t.c.chunks + 1)
    )
    return new_id


def _share(cost: int, parts: int, of_parts: int) -> int:
    """`cost` rial in proportion to `parts` of `of_parts`, rounded up (never less than its share)."""
    return -(-cost * parts // of_parts) if of_parts > 0 else 0
