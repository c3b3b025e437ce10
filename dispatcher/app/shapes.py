"""The JSON documents the front ends print or answer, built once: `send --json` and the API's
`POST /api/v1/campaigns` are `send_json`, `list --json` and `GET /api/v1/campaigns` `list_json`, `optouts
--json` and `GET /api/v1/optouts` `suppressions_json`. Times ISO-8601."""

from __future__ import annotations

from typing import Any

from campaigns.preflight import PreflightSummary
from dispatcher.app.accounts import Suppressions
from dispatcher.app.campaign import CampaignSummary
from dispatcher.app.views import CampaignList


def send_json(summary: CampaignSummary, preflight: PreflightSummary, start: Any = None) -> dict[str, Any]:
    """`send --json`: the campaign (or dry run), the preflight's keys, and `start` (campaigns.when.Start:
    when it starts and its window) when known."""
    return {
        **summary.as_json(),
        **preflight.to_json(),
        **({"start": start.as_json()} if start is not None else {}),
    }


def list_rows(found: CampaignList) -> list[dict[str, Any]]:
    """`list --json`: one object per campaign, newest last, as the store lists them."""
    return [
        {
            "campaign": v.id,
            "name": v.name,
            "provider": v.provider,
            "state": v.state,
            "recipients": v.recipients,
            "created_at": v.created_at.isoformat(),
            "sender": found.liveness[v.id].sender_json() if v.id in found.liveness else None,
            "sending": found.liveness[v.id].detail if v.id in found.liveness else None,
            "test": v.test,  # a `send --test-to` (its name starts with TEST too)
        }
        for v in found.campaigns
    ]


def suppressions_json(found: Suppressions) -> dict[str, Any]:
    """`optouts --json`: how many a collection added (None without one) and the list."""
    rows = [
        {"phone": s.phone, "reason": s.reason, "created_at": s.created_at.isoformat()} for s in found.rows
    ]
    return {"added": found.added, "suppressions": rows}
