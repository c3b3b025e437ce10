"""Reads for programs (the HTTP API): one campaign's recipients by page, and every message a number got.

`messages_to` finds a number across campaigns through the unique (campaign_id, phone) index, one probe
per campaign (a nested loop from `campaigns`), never by scanning recipients. Functions over an Engine.
"""

from __future__ import annotations

import json
from typing import Any

from sqlalchemy import select
from sqlalchemy.engine import Engine

from campaigns.store.sql import campaigns_t, recipients_t

r, c = recipients_t.c, campaigns_t.c


def _iso(value: Any) -> str | None:
    return value.isoformat() if value is not None else None


def recipients_of(
    engine: Engine, campaign_id: int, *, state: str | None, after: int, limit: int
) -> list[dict[str, Any]]:
    """Up to `limit` recipients with id > `after`, in id order (`state`: only those in it)."""
    query = (
        select(r.id, r.row, r.phone, r.state, r.parts, r.provider_message_id, r.provider_status, r.error)
        .add_columns(r.sent_at, r.delivered_at, r.fields)
        .where(r.campaign_id == campaign_id, r.id > after)
        .order_by(r.id)
        .limit(limit)
    )
    if state:
        query = query.where(r.state == state)
    with engine.connect() as conn:
        rows = conn.execute(query).all()
    return [
        {
            "id": x.id,
            "row": x.row,
            "phone": x.phone,
            "state": x.state,
            "parts": x.parts,
            "provider_message_id": x.provider_message_id,
            "provider_status": x.provider_status,
            "error": x.error,
            "sent_at": _iso(x.sent_at),
            "delivered_at": _iso(x.delivered_at),
            "fields": json.loads(x.fields or "{}"),
        }
        for x in rows
    ]


def messages_to(engine: Engine, phone: str) -> list[dict[str, Any]]:
    """Every message to `phone` (E.164), newest campaign first: campaign, name, text, state, times."""
    query = (
        select(c.id, c.name, c.message, c.personalised, c.provider, r.text, r.state, r.parts, r.error)
        .add_columns(r.sent_at, r.delivered_at, r.updated_at, c.created_at, r.provider_status)
        .select_from(campaigns_t)
        .join(recipients_t, (r.campaign_id == c.id) & (r.phone == phone))
        .order_by(c.id.desc())
    )
    with engine.connect() as conn:
        rows = conn.execute(query).all()
    return [
        {
            "campaign": x.id,
            "name": x.name,
            "provider": x.provider,
            "text": x.text if x.personalised and x.text is not None else x.message,
            "state": x.state,
            "parts": x.parts,
            "provider_status": x.provider_status,
            "error": x.error,
            "created_at": _iso(x.created_at),
            "sent_at": _iso(x.sent_at),
            "delivered_at": _iso(x.delivered_at),
            "updated_at": _iso(x.updated_at),
        }
        for x in rows
    ]
