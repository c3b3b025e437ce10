"""The audit trail: who changed what and when (`audit_events`). Functions over the caller's transaction,
so an event is written in the transaction of the change it records.

`who` is "alice" (a user), "key:crm" (an API key), "cli:USER@HOST" (the command line, unauthenticated) or
"system" (a worker or the clock: a cap reached, an account refusing, a campaign completing). Every
campaign transition is recorded by `campaign_to` (campaigns/store/transitions.py) through `transition_event`;
campaign creation by `record_created`; users, keys, opt-outs and purges by their use cases through `record`.
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, insert, select

from campaigns.identity import spend_day
from campaigns.records import CampaignSpec
from campaigns.states import CampaignTransition
from campaigns.store.identity_tables import audit_events_t
from campaigns.store.sql import campaigns_t

SYSTEM = "system"
CT = CampaignTransition
# A transition as the audit names it: what happened to the campaign.
ACTIONS: dict[CampaignTransition, str] = {
    CT.SCHEDULE: "scheduled",
    CT.START: "started",
    CT.PAUSE: "paused",
    CT.RESUME: "resumed",
    CT.RESCHEDULE: "rescheduled",
    CT.CANCEL: "cancelled",
    CT.COMPLETE: "completed",
    CT.FAIL: "failed",
}
a = audit_events_t.c


def record(
    conn: Connection, at: datetime, who: str, action: str, detail: str = "", campaign_id: int | None = None
) -> None:
    """One event. `detail` is for people and must never hold a secret (a key, a password)."""
    conn.execute(
        insert(audit_events_t).values(
            at=at, who=who[:200], action=action[:32], detail=detail, campaign_id=campaign_id
        )
    )


def transition_event(
    conn: Connection, campaign_id: int, name: CampaignTransition, at: datetime, reason: str | None, who: str
) -> None:
    """The event of a campaign transition that applied: `paused` with its reason, `resumed`, `cancelled`…"""
    record(conn, at, who, ACTIONS.get(name, str(name)), reason or "", campaign_id)


def started_by(spec: CampaignSpec, now: datetime) -> dict[str, Any]:
    """The campaign columns saying who started it, and the day its spend counts against (when capped)."""
    return {
        "created_by": spec.created_by,
        "created_by_user_id": spec.created_by_user_id,
        "created_by_key_id": spec.created_by_key_id,
        "spend_principal": spec.spend_principal,
        "spend_day": spend_day(now) if spec.spend_principal else None,
    }


def record_created(
    conn: Connection, campaign_id: int, spec: CampaignSpec, recipients: int, at: datetime
) -> None:
    """The `created` event, in the creating transaction."""
    what = "test send" if spec.test else f"{recipients:,} recipients via {spec.provider}"
    record(conn, at, spec.created_by or SYSTEM, "created", what, campaign_id)


def campaign_events(conn: Connection, campaign_id: int) -> list[dict[str, Any]]:
    """The campaign's events, oldest first: `{"at", "who", "action", "detail"}` (at: an aware datetime)."""
    rows = conn.execute(
        select(a.at, a.who, a.action, a.detail).where(a.campaign_id == campaign_id).order_by(a.id)
    )
    return [{"at": r.at, "who": r.who, "action": r.action, "detail": r.detail} for r in rows]


def created_by(conn: Connection, campaign_id: int) -> str | None:
    """Who started the campaign (None: stored before the audit existed)."""
    return conn.execute(
        select(campaigns_t.c.created_by).where(campaigns_t.c.id == campaign_id)
    ).scalar_one_or_none()


def events(conn: Connection, limit: int = 200, before_id: int | None = None) -> list[dict[str, Any]]:
    """The newest events of every kind (users, keys, opt-outs, campaigns), newest first, with their id."""
    query = select(a.id, a.at, a.who, a.action, a.campaign_id, a.detail).order_by(a.id.desc()).limit(limit)
    if before_id is not None:
        query = query.where(a.id < before_id)
    return [dict(r._mapping) for r in conn.execute(query)]


def detail_json(**fields: Any) -> str:
    """A detail made of fields (for changes to users and keys), as compact JSON."""
    return json.dumps({k: v for k, v in fields.items() if v is not None}, ensure_ascii=False, default=str)
