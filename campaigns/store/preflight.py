"""The store's part of the preflight (README, "Preflight"): earlier campaigns with their fingerprints (the duplicate
check), numbers sent within the frequency cap, the operator blacklist memory, and writing a new
campaign's fingerprint. Functions over an Engine, read-only except `set_fingerprint`.

A module of the store package (functions over an Engine, like `heartbeats`).
The fingerprint column comes with migration 0004_preflight, the campaign's type with 0012_blacklist.
"""

from __future__ import annotations

from datetime import datetime

import numpy as np
from sqlalchemy import Connection, func, or_, select, update
from sqlalchemy.engine import Engine

from campaigns.models import Campaign, Recipient
from campaigns.preflight import CampaignType, DuplicateCampaign, EarlierCampaign, RecentSends
from campaigns.states import FINAL_CAMPAIGN, RecipientState

__all__ = [
    "blacklisted_numbers",
    "earlier_campaigns",
    "refuse_duplicate",
    "recent_sends",
    "set_fingerprint",
    "unfinished_campaigns",
]

campaigns_t = Campaign.__table__
recipients_t = Recipient.__table__
_FINAL = sorted(s.value for s in FINAL_CAMPAIGN)
_FETCH = 50_000  # rows per fetch when streaming recent sends


def earlier_campaigns(engine: Engine, since: datetime | None = None) -> list[EarlierCampaign]:
    """This store's campaigns the checks compare with, newest first: every unfinished one (draft,
    scheduled, running, paused), and those created or finished at or after `since` (None: no finished
    one). Test sends (`send --test-to`) are left out: they reached staff numbers, not the audience."""
    c = campaigns_t.c
    recent = [c.state.not_in(_FINAL)]
    if since is not None:
        recent += [c.created_at >= since, c.finished_at >= since]
    query = (
        select(c.id, c.name, c.state, c.fingerprint, c.created_at, c.finished_at)
        .where(or_(*recent), c.test.is_(False))
        .order_by(c.id.desc())
    )
    with engine.connect() as conn:
        return [
            EarlierCampaign(r.id, r.name, r.state, r.fingerprint, r.created_at, r.finished_at)
            for r in conn.execute(query)
        ]


def refuse_duplicate(conn: Connection, fingerprint: str, since: datetime) -> None:
    """In the transaction that creates a campaign: raise DuplicateCampaign when another (not a test send)
    has `fingerprint` and is unfinished, or was created or finished at or after `since`. On PostgreSQL a
    transaction-level advisory lock on the fingerprint makes two creations of the same list and text take
    turns (the second sees the first once it commits); SQLite's `BEGIN IMMEDIATE` already serialises them."""
    c = campaigns_t.c
    if conn.dialect.name == "postgresql":
        conn.execute(select(func.pg_advisory_xact_lock(func.hashtext(fingerprint))))
    row = conn.execute(
        select(c.id, c.name, c.state, c.fingerprint, c.created_at, c.finished_at)
        .where(
            c.fingerprint == fingerprint,
            c.test.is_(False),
            or_(c.state.not_in(_FINAL), c.created_at >= since, c.finished_at >= since),
        )
        .order_by(c.id.desc())
        .limit(1)
    ).first()
    if row is not None:
        raise DuplicateCampaign(
            EarlierCampaign(row.id, row.name, row.state, row.fingerprint, row.created_at, row.finished_at)
        )


def unfinished_campaigns(engine: Engine) -> list[EarlierCampaign]:
    """Campaigns not completed, cancelled or failed (draft, scheduled, running, paused), newest first."""
    return earlier_campaigns(engine)


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


def blacklisted_numbers(engine: Engine, since: datetime) -> RecentSends:
    """The operator blacklist memory: every number a delivery report marked `blacklisted` at or after
    `since` on a promotional campaign of this store, with the latest campaign that learnt it.

    Only promotional campaigns teach it (`campaign_type`, migration 0012_blacklist; campaigns stored
    before that have none and teach nothing), and only a delivery report does (`polls > 0`): a number a
    provider refused at the send is not known to be on the operator's list. Read through the
    (campaign_id, state) index of the candidate campaigns; 16 bytes a number kept.
    """
    c, r = campaigns_t.c, recipients_t.c
    candidates = select(c.id).where(
        c.campaign_type == CampaignType.PROMOTIONAL.value,
        c.started_at.is_not(None),
        or_(c.finished_at.is_(None), c.finished_at >= since),
    )
    query = (
        select(r.phone, r.campaign_id)
        .where(
            r.campaign_id.in_(candidates),
            r.state == RecipientState.BLACKLISTED,
            r.polls > 0,
            r.updated_at >= since,
            r.phone.like("+%"),  # a purged number (`#<id>`, campaigns.store.purge) is forgotten
        )
        .order_by(r.updated_at)
    )
    with engine.connect() as conn:
        rows = conn.execute(query).all()
    return RecentSends.from_pairs((phone, cid) for phone, cid in rows)
