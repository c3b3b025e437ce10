"""The webhook outbox (`webhook_deliveries`, migration 0013_web): one row per state change of a campaign
that names a `callback_url`, written by `transitions.campaign_to` in the transition's own transaction, so
every writer of a campaign state (workers, `serve`, `web`, the CLI) records it and none can forget.

Whichever process runs housekeeping delivers the due rows (`workers.operations.webhooks`): a row is
leased before its POST (`claim_due`: a compare-and-set on `lease_until`, so two housekeeping passes
never post it together), then `delivered`, retried later (`retry`) or `given_up`. The rows stay as the
record of what was delivered. Functions over the caller's connection.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import (
    Column,
    Connection,
    Index,
    Integer,
    String,
    Table,
    Text,
    and_,
    insert,
    literal,
    or_,
    select,
    update,
)

from campaigns.models import Base, BigId, UTCDateTime
from campaigns.states import CampaignState
from campaigns.store.sql import campaigns_t

webhook_deliveries_t = Table(
    "webhook_deliveries",
    Base.metadata,
    Column("id", BigId, primary_key=True, autoincrement=True),
    Column("campaign_id", BigId, nullable=False),
    Column("event", String(16), nullable=False),  # the state entered: running, paused, completed, …
    Column("reason", Text, nullable=True),  # the state's reason at the change (a pause's cause)
    Column("url", Text, nullable=False),
    Column("key_id", BigId, nullable=True),  # the API key whose derived secret signs it
    Column("status", String(16), nullable=False),  # pending | delivered | given_up
    Column("attempts", Integer, nullable=False, server_default="0"),
    Column("next_attempt_at", UTCDateTime, nullable=False),
    Column("lease_until", UTCDateTime, nullable=True),
    Column("last_error", Text, nullable=True),
    Column("created_at", UTCDateTime, nullable=False),
    Column("finished_at", UTCDateTime, nullable=True),
    Index("ix_webhook_deliveries_due", "status", "next_attempt_at"),
    Index("ix_webhook_deliveries_campaign", "campaign_id"),
)
w = webhook_deliveries_t.c

PENDING, DELIVERED, GIVEN_UP = "pending", "delivered", "given_up"
# The changes a webhook is sent for (a campaign that is only scheduled has not changed for its caller).
EVENTS = frozenset(
    {CampaignState.RUNNING, CampaignState.PAUSED, CampaignState.COMPLETED, CampaignState.CANCELLED}
    | {CampaignState.FAILED}
)


@dataclass(frozen=True)
class Delivery:
    """One webhook to POST: the campaign, the state it entered (and why), where, signed by which key."""

    id: int
    campaign_id: int
    event: str
    reason: str | None
    url: str
    key_id: int | None
    attempts: int
    created_at: datetime


def record_change(conn: Connection, campaign_id: int, state: str, now: datetime) -> None:
    """In the transition's transaction: an outbox row for the campaign's new `state`, if the campaign
    names a callback_url and the state is one of EVENTS (else nothing is written)."""
    if state not in EVENTS:
        return
    c = campaigns_t.c
    rows = select(
        c.id,
        literal(str(state)),
        c.state_reason,
        c.callback_url,
        c.callback_key_id,
        literal(PENDING),
        literal(0),
        literal(now, UTCDateTime),
        literal(now, UTCDateTime),
    ).where(c.id == campaign_id, c.callback_url.is_not(None))
    cols = ["campaign_id", "event", "reason", "url", "key_id", "status", "attempts", "next_attempt_at"]
    conn.execute(insert(webhook_deliveries_t).from_select([*cols, "created_at"], rows))


def claim_due(conn: Connection, now: datetime, lease_until: datetime, limit: int) -> list[Delivery]:
    """Lease up to `limit` due deliveries (oldest first) until `lease_until`; those another pass holds
    are skipped. Each lease is a compare-and-set, so a row is claimed by one pass only."""
    due = (
        select(webhook_deliveries_t)
        .where(
            w.status == PENDING,
            w.next_attempt_at <= now,
            or_(w.lease_until.is_(None), w.lease_until <= now),
        )
        .order_by(w.next_attempt_at, w.id)
        .limit(limit)
    )
    claimed: list[Delivery] = []
    for row in conn.execute(due).all():
        stmt = (
            update(webhook_deliveries_t)
            .where(
                w.id == row.id,
                w.status == PENDING,
                or_(w.lease_until.is_(None), w.lease_until <= now),
            )
            .values(lease_until=lease_until)
        )
        if conn.execute(stmt).rowcount == 1:
            claimed.append(
                Delivery(
                    row.id,
                    row.campaign_id,
                    row.event,
                    row.reason,
                    row.url,
                    row.key_id,
                    row.attempts,
                    row.created_at,
                )
            )
    return claimed


def finish(conn: Connection, delivery_id: int, status: str, now: datetime, error: str | None) -> None:
    """Record the end of a delivery: `delivered`, or `given_up` with the last error."""
    conn.execute(
        update(webhook_deliveries_t)
        .where(w.id == delivery_id)
        .values(status=status, attempts=w.attempts + 1, finished_at=now, lease_until=None, last_error=error)
    )


def retry(conn: Connection, delivery_id: int, at: datetime, error: str) -> None:
    """A failed attempt: counted, the error kept, tried again at `at`."""
    conn.execute(
        update(webhook_deliveries_t)
        .where(and_(w.id == delivery_id, w.status == PENDING))
        .values(attempts=w.attempts + 1, next_attempt_at=at, lease_until=None, last_error=error)
    )


def of_campaign(conn: Connection, campaign_id: int) -> list[dict]:
    """The campaign's webhook record, oldest first: event, status, attempts, times, last error."""
    rows = conn.execute(select(webhook_deliveries_t).where(w.campaign_id == campaign_id).order_by(w.id)).all()
    return [
        {
            "event": r.event,
            "reason": r.reason,
            "status": r.status,
            "attempts": r.attempts,
            "created_at": r.created_at.isoformat(),
            "finished_at": r.finished_at.isoformat() if r.finished_at else None,
            "last_error": r.last_error,
        }
        for r in rows
    ]
