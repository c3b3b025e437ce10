"""Purging what a finished campaign knew about people: its recipients' phone numbers, file columns and
rendered texts. Their states, parts, costs, times and provider ids stay, so the counts, the costs and the
reports' numbers are unchanged; the audit trail and the suppression list are never touched.

A purged recipient's phone becomes `#<its id>` (the column is required and unique within a campaign).
Functions over an Engine: a campaign of millions is purged in batches, each its own short transaction, so
the workers' claims never wait long behind it; the campaign's `purged_at` and its audit event are written
with the last batch.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Engine, String, cast, func, literal, select, update

from campaigns.states import FINAL_CAMPAIGN
from campaigns.store.audit import record
from campaigns.store.sql import campaigns_t, recipients_t

BATCH = 50_000
PURGED_MARK = "#"  # a purged phone starts with it: `#1234`
c, r = campaigns_t.c, recipients_t.c


@dataclass(frozen=True)
class Purged:
    """One campaign purged: its id, how many recipients lost their number, and its rejects file (which
    holds numbers too; the caller removes it when no campaign left unpurged names it)."""

    campaign_id: int
    recipients: int
    rejects_file: str


def due(engine: Engine, finished_before: datetime) -> list[int]:
    """Finished campaigns (completed, cancelled, failed) that ended before `finished_before`, not yet purged."""
    with engine.connect() as conn:
        query = select(c.id).where(
            c.state.in_(list(FINAL_CAMPAIGN)), c.finished_at < finished_before, c.purged_at.is_(None)
        )
        return list(conn.execute(query.order_by(c.id)).scalars())


def purge_campaign(engine: Engine, campaign_id: int, who: str, now: datetime, batch: int = BATCH) -> Purged:
    """Remove the campaign's recipients' numbers, columns and texts, `batch` rows a transaction."""
    with engine.connect() as conn:
        low, high = conn.execute(
            select(func.min(r.id), func.max(r.id)).where(r.campaign_id == campaign_id)
        ).one()
        rejects = conn.execute(select(c.rejects_file).where(c.id == campaign_id)).scalar_one()
    done = 0
    start = low or 0
    while low is not None and start <= high:
        with engine.begin() as conn:
            done += conn.execute(
                update(recipients_t)
                .where(
                    r.campaign_id == campaign_id,
                    r.id >= start,
                    r.id < start + batch,
                    r.phone.not_like(PURGED_MARK + "%"),
                )
                .values(phone=literal(PURGED_MARK) + cast(r.id, String), fields="{}", text=None)
            ).rowcount
        start += batch
    with engine.begin() as conn:
        conn.execute(update(campaigns_t).where(c.id == campaign_id).values(purged_at=now))
        detail = f"{done:,} recipients' numbers and columns removed"
        record(conn, now, who, "purged", detail, campaign_id)
    return Purged(campaign_id, done, rejects or "")


def rejects_in_use(engine: Engine) -> set[str]:
    """The rejects files that a campaign not purged still names (a file sent twice shares one)."""
    with engine.connect() as conn:
        rows = conn.execute(select(c.rejects_file).where(c.purged_at.is_(None)).distinct()).scalars()
        return {p for p in rows if p}
