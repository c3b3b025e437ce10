"""What the store gauges of the metrics endpoint read (`workers/store_gauges.py` turns them into
Prometheus gauges): totals over every campaign, whatever process did the work (a CLI `send` too).

`recipient_totals` is the one place that counts recipients by provider and state and sums their
reported cost: from the maintained counters (`campaigns.store.counts.store_counts`), a few rows per
campaign whatever its size. The other reads are small: campaigns by state, the running campaigns'
facts for the liveness verdict, when the oldest claimable chunk became due, and what the campaigns
due in the next day still have to send.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import Connection, and_, case, func, or_, select

from campaigns.states import CampaignState, ChunkState, RecipientState
from campaigns.store.counts import store_counts, tallies_of
from campaigns.store.sql import campaigns_t, chunks_t, claimable

C, K, R = CampaignState, ChunkState, RecipientState
UNSENT_CHUNK = (K.PLANNED, K.QUEUED, K.RETRY)  # nothing of these went out yet


@dataclass(frozen=True)
class RecipientTotals:
    """counts: (provider, state) -> recipients; cost: provider -> rial the providers reported."""

    counts: dict[tuple[str, str], int]
    cost: dict[str, float]

    def in_states(self, states: Iterable[str]) -> int:
        wanted = set(states)
        return sum(n for (_, state), n in self.counts.items() if state in wanted)


@dataclass(frozen=True)
class RunningCampaign:
    """What the liveness verdict of a running campaign needs (`campaigns.store.heartbeats.read_liveness`)."""

    id: int
    started_at: datetime | None
    queued_chunks: int
    pending: int


def recipient_totals(conn: Connection) -> RecipientTotals:
    """Recipients by (provider, state) and reported cost by provider, over every campaign; each recipient
    at the provider of its chunk. Read from the maintained counters (`campaigns.store.counts`), never
    from the recipients themselves."""
    counted = store_counts(conn)
    return RecipientTotals(dict(counted.recipients), dict(counted.cost_rial))


def campaigns_by_state(conn: Connection) -> dict[str, int]:
    return {
        state: int(n)
        for state, n in conn.execute(
            select(campaigns_t.c.state, func.count()).group_by(campaigns_t.c.state)
        ).all()
    }


def running_campaigns(conn: Connection) -> list[RunningCampaign]:
    """Every running campaign with its queued chunks and pending recipients (from the counters)."""
    c = campaigns_t.c
    running = conn.execute(select(c.id, c.started_at).where(c.state == C.RUNNING)).all()
    if not running:
        return []
    counted = tallies_of(conn, [row.id for row in running])
    out = []
    for row in running:
        tally = counted.get(row.id)
        queued = tally.chunk_counts().get(K.QUEUED, 0) if tally else 0
        pending = tally.counts().get(R.PENDING, 0) if tally else 0
        out.append(RunningCampaign(row.id, row.started_at, int(queued), int(pending)))
    return out


def claimable_since(conn: Connection, now: datetime) -> dict[int, datetime]:
    """campaign id -> since when its oldest claimable chunk (`sql.claimable`) has been waiting: a queued
    chunk since it was queued (its last transition), a retry since it fell due. The caller leaves out
    campaigns outside their send window."""
    k = chunks_t.c
    due_since = case((k.state == K.RETRY, k.next_attempt_at), else_=k.updated_at)
    rows = conn.execute(
        select(k.campaign_id, func.min(due_since)).where(claimable(now)).group_by(k.campaign_id)
    ).all()
    return {cid: since for cid, since in rows if since is not None}


def scheduled_need(conn: Connection, now: datetime, horizon: float = 86400) -> dict[str, tuple[int, int]]:
    """provider -> (SMS parts, rial) that the campaigns running or due to start within `horizon` seconds
    still have to send (chunks nothing of which went out yet; rial = the plan-time estimate, 0 where the
    price was unknown)."""
    c, k = campaigns_t.c, chunks_t.c
    provider = func.coalesce(k.provider, c.provider)
    due = or_(
        c.state == C.RUNNING,
        and_(c.state == C.SCHEDULED, or_(c.send_at.is_(None), c.send_at <= now + timedelta(seconds=horizon))),
    )
    rows = conn.execute(
        select(provider.label("provider"), func.sum(k.parts), func.sum(k.cost_rial))
        .select_from(chunks_t.join(campaigns_t, c.id == k.campaign_id))
        .where(due, k.state.in_(UNSENT_CHUNK))
        .group_by(provider)
    ).all()
    return {name: (int(parts or 0), int(rial or 0)) for name, parts, rial in rows}
