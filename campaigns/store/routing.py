"""Failover (docs/architecture.md, "Failover through a route"): a chunk re-planned for another provider of its campaign's route, in one transaction.

Only ever from a state in which the chunk is known not to have gone out at its provider (the `reroute`
transition of `campaigns.states`, guarded by the attempt that was read or claimed): its pending
recipients move to new queued chunks of at most the new provider's batch, which carry that provider,
account and sender line, and the old chunk becomes `rerouted` (final, keeping what its own provider
accepted). Texts are the recipients' own (rendered once at planning), so nothing is rendered again.
The new chunks are priced at the new provider's price where the campaign stored its table
(`campaigns.route_prices`, the preflight's reading of each provider's prices), so the estimate, the
budget's charge and the cost shown follow the provider that sends.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from datetime import datetime
from typing import Any

import numpy as np
import pandas as pd
from sqlalchemy import Connection, insert, select, update

from campaigns.prices import PriceError, PriceTable, UnpricedError, recipient_costs
from campaigns.states import CampaignTransition, ChunkState, ChunkTransition, RecipientState
from campaigns.store.counts import tallies
from campaigns.store.sending import refund
from campaigns.store.sql import campaigns_t, chunks_t, recipients_t
from campaigns.store.transitions import SENDING, campaign_to, chunk_to, move_recipients, recount_chunks

K, R, KT = ChunkState, RecipientState, ChunkTransition


def reroute_chunk(
    conn: Connection,
    chunk_id: int,
    attempt: int,
    *,
    provider: str,
    account: str,
    sender: str,
    batch: int,
    reason: str,
    now: datetime,
    personal_batch: int | None = None,
) -> list[int] | None:
    """Move the chunk's pending recipients to new queued chunks of ≤ `batch` for `provider`; the chunk ->
    rerouted with `reason`. `personal_batch`: the batch when the campaign's texts differ per recipient
    (`campaigns.plan.batch_size`: one when the provider carries one text a call). Returns the new chunks' ids (empty: nothing was pending), or None when the
    chunk is no longer at `attempt` in a state the reroute is allowed from (someone else moved it)."""
    if batch < 1:
        raise ValueError(f"batch must be at least 1, not {batch}")
    before = conn.execute(
        select(chunks_t.c.state, chunks_t.c.cost_rial, chunks_t.c.parts).where(chunks_t.c.id == chunk_id)
    ).first()
    if not chunk_to(conn, chunk_id, KT.REROUTE, now, attempt, lease_until=None, last_error=reason):
        return None
    # The budget (docs/architecture.md, "Budget") follows the recipients: a claimed chunk's charge is given back (nothing of it
    # went out), and the new chunks carry their estimate (below), charged at their claims.
    if before.state == K.SENDING:
        refund(conn, chunk_id)
    cost, parts_before = int(before.cost_rial or 0), max(int(before.parts or 0), 1)
    head = conn.execute(
        select(
            chunks_t.c.campaign_id,
            chunks_t.c.seq,
            campaigns_t.c.personalised,
            campaigns_t.c.message,
            campaigns_t.c.route_prices,
        )
        .join(campaigns_t, campaigns_t.c.id == chunks_t.c.campaign_id)
        .where(chunks_t.c.id == chunk_id)
    ).one()
    if head.personalised and personal_batch is not None:
        batch = max(1, personal_batch)
    pending = conn.execute(
        select(recipients_t.c.id, recipients_t.c.parts, recipients_t.c.phone, recipients_t.c.text)
        .where(recipients_t.c.chunk_id == chunk_id, recipients_t.c.state == R.PENDING)
        .order_by(recipients_t.c.id)
    ).all()
    # At the new provider's price when the campaign stored its table (the route's prices, read at the
    # preflight); else the moved recipients carry their share of the old chunk's estimate.
    priced = moved_costs(pending, head.message, route_table(head.route_prices, provider))
    new_ids: list[int] = []
    for start in range(0, len(pending), batch):
        group = pending[start : start + batch]
        share = -(-cost * sum(int(r.parts) for r in group) // parts_before)  # rounded up
        new_cost = share if priced is None else math.ceil(float(priced[start : start + batch].sum()) - 1e-9)
        new_id = conn.execute(
            insert(chunks_t)
            .values(
                campaign_id=head.campaign_id,
                seq=head.seq,
                state=K.QUEUED,
                attempt=0,
                size=len(group),
                parts=sum(int(r.parts) for r in group),
                cost_rial=new_cost,
                queued_at=now,
                updated_at=now,
                provider=provider,
                account=account,
                sender=sender,
            )
            .returning(chunks_t.c.id)
        ).scalar_one()
        recount_chunks(conn, [new_id], 1, recipients=False)
        # their state does not change; their counters move to the new chunk's provider
        move_recipients(conn, [r.id for r in group], new_id, now)
        new_ids.append(new_id)
    if new_ids:
        conn.execute(
            update(campaigns_t)
            .where(campaigns_t.c.id == head.campaign_id)
            .values(chunks=campaigns_t.c.chunks + len(new_ids))
        )
    return new_ids


def route_table(stored: str | None, provider: str) -> PriceTable | None:
    """`provider`'s price table from a campaign's `route_prices` JSON; None when it has none."""
    if not stored:
        return None
    try:
        entry = json.loads(stored).get(provider)
        return PriceTable.from_json(entry) if entry else None
    except (ValueError, AttributeError, PriceError):
        return None  # a table we cannot read prices nothing: the share of the old estimate stays


def moved_costs(rows: Sequence[Any], message: str, table: PriceTable | None) -> np.ndarray | None:
    """Estimated rial of each moved recipient (`rows`: parts, phone, text) at `table`'s prices; None when
    there is no table or it lacks a price some recipient needs."""
    if not table or not rows:
        return None
    try:
        return recipient_costs(
            pd.Series([r.phone for r in rows], dtype=object),
            pd.Series([r.text for r in rows], dtype=object),
            pd.Series([int(r.parts) for r in rows], dtype=np.int64),
            table,
            message,
        )
    except UnpricedError:
        return None


def pause_route(
    conn: Connection, campaign_id: int, chunk_id: int, attempt: int | None, reason: str, now: datetime
) -> bool:
    """Every provider of the campaign's route is unusable: a chunk claimed at `attempt` (None: not
    claimed) goes back to the queue (nothing went out), and the campaign pauses with `reason`."""
    if attempt is not None:
        requeued = chunk_to(
            conn,
            chunk_id,
            KT.REQUEUE,
            now,
            attempt,
            SENDING,
            lease_until=None,
            last_error=reason,
            queued_at=now,
        )
        if requeued:  # nothing of it went out: its budget charge comes back (the next claim charges again)
            refund(conn, chunk_id)
    return campaign_to(conn, campaign_id, CampaignTransition.PAUSE, now, reason)


def by_provider(conn: Connection, campaign_id: int) -> dict[str, dict[str, int]]:
    """provider -> recipient state -> count: each recipient counted at the provider of its chunk (the one
    that accepted it, or that holds it now). From the campaign's counters."""
    return tallies(conn, campaign_id).by_provider()
