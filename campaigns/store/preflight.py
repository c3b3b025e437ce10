"""The store's part of the preflight (issue 11): unfinished campaigns with their fingerprints, numbers sent
within the frequency cap, and writing a new campaign's fingerprint. Functions over an Engine, read-only
except `set_fingerprint`.

A module of the store package (functions over an Engine, like `heartbeats`).
The fingerprint column comes with migration 0004_preflight.
"""

from __future__ import annotations

from datetime import datetime

import numpy as np
from sqlalchemy import or_, select, update
from sqlalchemy.engine import Engine

from campaigns.models import Campaign, Recipient
from campaigns.preflight import RecentSends, UnfinishedCampaign
from campaigns.states import FINAL_CAMPAIGN

__all__ = ["recent_sends", "set_fingerprint", "unfinished_campaigns"]

campaigns_t = Campaign.__table__
recipients_t = Recipient.__table__
_FINAL = sorted(s.value for s in FINAL_CAMPAIGN)
_FETCH = 50_000  # rows per fetch when streaming recent sends


def unfinished_campaigns(engine: Engine) -> list[UnfinishedCampaign]:
    """Campaigns not completed, cancelled or failed (draft, scheduled, running, paused), newest first."""
    query = (
        select(campaigns_t.c.id, campaigns_t.c.name, campaigns_t.c.state, campaigns_t.c.fingerprint)
        .where(campaigns_t.c.state.not_in(_FINAL))
        .order_by(campaigns_t.c.id.desc())
    )
    with engine.connect() as conn:
        return [UnfinishedCampaign(r.id, r.name, r.state, r.fingerprint) for r in conn.execute(query)]


def set_fingerprint(engine: Engine, campaign_id: int, fingerprint: str) -> None:
    """Record a campaign's fingerprint after the fact. `send` writes it at creation instead
    (`CampaignSpec.fingerprint`, in the creating transaction); kept for tests and repairs."""
    with engine.begin() as conn:
        conn.execute(
            update(campaigns_t).where(campaigns_t.c.id == campaign_id).values(fingerprint=fingerprint)
        )


def recent_sends(engine: Engine, since: datetime) -> RecentSends:
    """Every number some campaign sent to at or after `since` (a recorded send: `sent_at`), with the latest
    campaign that did. Test sends (`send --test-to`, the `test` column) are not counted.

    Only campaigns that can have sent since then are read (not finished before `since`), each through
    the (campaign_id, sent_at) index; the rows stream in, 16 bytes a number kept.
    """
    candidates = select(campaigns_t.c.id).where(
        campaigns_t.c.started_at.is_not(None),
        campaigns_t.c.test.is_(False),  # a `send --test-to` reached staff numbers, not the audience
        or_(campaigns_t.c.finished_at.is_(None), campaigns_t.c.finished_at >= since),
    )
    query = (
        select(recipients_t.c.phone, recipients_t.c.campaign_id)
        .where(recipients_t.c.campaign_id.in_(candidates), recipients_t.c.sent_at >= since)
        .order_by(recipients_t.c.sent_at)
    )
    numbers: list[np.ndarray] = []
    campaigns: list[np.ndarray] = []
    with engine.connect() as conn:
        result = conn.execution_options(stream_results=True, yield_per=_FETCH).execute(query)
        for rows in result.partitions(_FETCH):
            numbers.append(np.fromiter((int(phone[1:]) for phone, _ in rows), np.int64, len(rows)))
            campaigns.append(np.fromiter((cid for _, cid in rows), np.int64, len(rows)))
    if not numbers:
        return RecentSends.from_pairs([])
    return RecentSends.from_arrays(np.concatenate(numbers), np.concatenate(campaigns))
