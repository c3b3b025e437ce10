"""A campaign's life: launch (start or schedule), pause, resume, cancel, fail, start what is due and
complete what is finished. Functions over the caller's transaction; every state write is a transition.
"""

from __future__ import annotations

import json
from datetime import datetime

from sqlalchemy import Connection, func, select, update

from campaigns.prices import UnpricedError
from campaigns.records import Cancelled
from campaigns.states import (
    AWAITING_REPORT,
    CHUNK_TRANSITIONS,
    FINAL_CAMPAIGN,
    OPEN_CHUNK,
    CampaignState,
    CampaignTransition,
    ChunkState,
    ChunkTransition,
    RecipientState,
    RecipientTransition,
)
from campaigns.store.audit import SYSTEM
from campaigns.store.health import probe_now
from campaigns.store.reads import has_pending
from campaigns.store.sql import campaigns_t, chunks_t, recipients_t
from campaigns.store.transitions import campaign_to, chunks_to, pending_of_chunks_to, queue_planned

C, K, R = CampaignState, ChunkState, RecipientState
CT = CampaignTransition


def launch(
    conn: Connection, campaign_id: int, send_at: datetime | None, now: datetime, who: str = SYSTEM
) -> None:
    """A draft campaign -> scheduled when `send_at` is ahead, else running with its chunks queued."""
    if send_at is not None and send_at > now:
        campaign_to(conn, campaign_id, CT.SCHEDULE, now, who=who)
        return
    campaign_to(conn, campaign_id, CT.START, now, who=who, started_at=now)
    queue_planned(conn, campaign_id, now)


def resume(conn: Connection, campaign_id: int, now: datetime, who: str = SYSTEM) -> bool:
    """Paused -> running (chunks queued), or back to scheduled when its start time has not come yet."""
    row = conn.execute(
        select(campaigns_t.c.send_at, campaigns_t.c.started_at, campaigns_t.c.route).where(
            campaigns_t.c.id == campaign_id
        )
    ).first()
    if row is None:
        return False
    if row.started_at is None and row.send_at is not None and row.send_at > now:
        return campaign_to(conn, campaign_id, CT.RESCHEDULE, now, None, who=who)
    ok = campaign_to(conn, campaign_id, CT.RESUME, now, None, who=who)
    if ok and row.route:  # tries again from the first provider of its route: every open circuit probes now
        probe_now(conn, json.loads(row.route), now)
    if ok:
        if row.started_at is None:
            conn.execute(update(campaigns_t).where(campaigns_t.c.id == campaign_id).values(started_at=now))
        queue_planned(conn, campaign_id, now)
    return ok


def raise_budget(
    conn: Connection, campaign_id: int, budget_rial: int | None, max_parts: int | None, now: datetime
) -> bool:
    """Set the campaign's caps (None leaves a cap as it is); False when there is no such campaign or it has
    finished. Raises UnpricedError for a rial budget on a campaign whose parts were not all priced."""
    c = campaigns_t.c
    row = conn.execute(select(c.state, c.estimated_rial, c.provider).where(c.id == campaign_id)).first()
    if row is None or row.state in FINAL_CAMPAIGN:
        return False
    if budget_rial is not None and row.estimated_rial is None:
        from campaigns.preflight.checks import price_hint

        raise UnpricedError(
            f"campaign {campaign_id} was stored without a price for every SMS part, so it can take no budget "
            f"in rial; give --max-parts instead ({price_hint(row.provider)}, for the next campaign)"
        )
    values: dict[str, object] = {"updated_at": now}
    if budget_rial is not None:
        values["budget_rial"] = budget_rial
    if max_parts is not None:
        values["max_parts"] = max_parts
    conn.execute(update(campaigns_t).where(c.id == campaign_id).values(**values))
    return True


def cancel(
    conn: Connection, campaign_id: int, reason: str, now: datetime, who: str = SYSTEM
) -> Cancelled | None:
    """Cancel the campaign, every chunk not yet handed to the provider and their pending recipients.

    A chunk in flight finishes and is recorded. Returns the recipients cancelled by the provider of their
    chunk (rows written, for the final-outcome metric); None when the campaign's state does not allow it.
    """
    if not campaign_to(conn, campaign_id, CT.CANCEL, now, reason, who=who, finished_at=now):
        return None
    allowed, _ = CHUNK_TRANSITIONS[ChunkTransition.CANCEL]
    k = chunks_t.c
    provider = func.coalesce(
        k.provider, select(campaigns_t.c.provider).where(campaigns_t.c.id == campaign_id).scalar_subquery()
    )
    rows = conn.execute(
        select(k.id, provider).where(k.campaign_id == campaign_id, k.state.in_(allowed))
    ).all()
    by_provider: dict[str, list[int]] = {}
    for chunk_id, name in rows:
        by_provider.setdefault(name, []).append(chunk_id)
    cancelled: dict[str, int] = {}
    if rows:
        chunks_to(conn, ChunkTransition.CANCEL, now, k.id.in_([r[0] for r in rows]))
        for name, ids in by_provider.items():
            if n := pending_of_chunks_to(conn, ids, RecipientTransition.CANCEL, now, reason):
                cancelled[name] = n
    return Cancelled(cancelled)


def pause_campaign_of_chunk(conn: Connection, chunk_id: int, reason: str, now: datetime) -> bool:
    """Pause the campaign the chunk belongs to; False when there is no such chunk or it cannot pause."""
    campaign_id = conn.execute(
        select(chunks_t.c.campaign_id).where(chunks_t.c.id == chunk_id)
    ).scalar_one_or_none()
    return campaign_id is not None and campaign_to(conn, campaign_id, CT.PAUSE, now, reason)


def start_due(conn: Connection, now: datetime) -> list[int]:
    """Scheduled campaigns whose time has come -> running, chunks queued; their ids. Safe to run twice."""
    started: list[int] = []
    due = conn.execute(
        select(campaigns_t.c.id).where(campaigns_t.c.state == C.SCHEDULED, campaigns_t.c.send_at <= now)
    ).scalars()
    for campaign_id in list(due):
        if campaign_to(conn, campaign_id, CT.START, now, started_at=now):
            queue_planned(conn, campaign_id, now)
            started.append(campaign_id)
    return started


def complete_finished(conn: Connection, now: datetime) -> list[int]:
    """Running campaigns with nothing left in flight and no recipient awaiting a report -> completed."""
    done: list[int] = []
    waiting = [R.PENDING, *AWAITING_REPORT]
    running = conn.execute(select(campaigns_t.c.id).where(campaigns_t.c.state == C.RUNNING)).scalars().all()
    for campaign_id in running:
        busy = conn.execute(
            select(chunks_t.c.id)
            .where(chunks_t.c.campaign_id == campaign_id, chunks_t.c.state.in_(OPEN_CHUNK))
            .limit(1)
        ).first()
        if busy:
            continue
        unresolved = conn.execute(
            select(chunks_t.c.id)
            .where(chunks_t.c.campaign_id == campaign_id, chunks_t.c.state == K.UNKNOWN)
            .where(has_pending(chunks_t.c.id))
            .limit(1)
        ).first()
        if unresolved:
            continue
        awaiting = conn.execute(
            select(recipients_t.c.id)
            .where(recipients_t.c.campaign_id == campaign_id, recipients_t.c.state.in_(waiting))
            .limit(1)
        ).first()
        if awaiting:
            continue
        if campaign_to(conn, campaign_id, CT.COMPLETE, now, finished_at=now):
            done.append(campaign_id)
    return done


def pause_account(conn: Connection, account: str, reason: str, now: datetime) -> list[int]:
    """Pause every running campaign on the account (an account-level refusal); their ids."""
    # A campaign with a failover route is not paused here: its next chunk finds the account's circuit
    # open and goes on through the next provider (workers.operations.failover).
    same_account = conn.execute(
        select(campaigns_t.c.id).where(
            campaigns_t.c.account == account, campaigns_t.c.state == C.RUNNING, campaigns_t.c.route.is_(None)
        )
    ).scalars()
    return [i for i in list(same_account) if campaign_to(conn, i, CT.PAUSE, now, reason)]
