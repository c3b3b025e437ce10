"""A campaign's status as one document: the store's view, its progress as shown (no rate or ETA when
nothing sends it), who sends it, per-provider counts, circuits and costs. `status --json`, the API's
`GET /api/v1/campaigns/{id}` and the webhooks' body are this one `CampaignStatus.as_json()`. It lives in
`workers/` because it names what each provider's reported cost is counted in (its client's `cost_unit`),
and the webhook delivery (a worker operation) sends it.

Reads only (a few small queries); `read_shown` is `campaigns.progress.read_progress` plus the liveness
verdict (campaigns/liveness.py).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from campaigns.circuit import Health
from campaigns.liveness import Liveness, attended
from campaigns.prices import CURRENCY
from campaigns.progress import CampaignProgress, read_progress
from campaigns.store import CampaignCosts, CampaignView, Store
from campaigns.store.heartbeats import read_liveness
from campaigns.windows import closed_windows
from workers.errors import ConfigurationError
from workers.providers import client_class


def read_shown(
    store: Store, campaign_id: int, now: datetime, *, distributed: bool
) -> tuple[CampaignView | None, CampaignProgress | None, Liveness | None]:
    """(view, progress as shown, liveness), or three Nones when there is no such campaign."""
    view, progress = read_progress(store, campaign_id, now)
    if view is None or progress is None:
        return None, None, None
    live = liveness_of_view(store, view, now, distributed=distributed)
    return view, attended(progress, live), live


def liveness_of_view(store: Store, view: CampaignView, now: datetime, *, distributed: bool) -> Liveness:
    """The liveness verdict of one campaign (a few small reads of the heartbeats and chunks)."""
    return read_liveness(
        store.engine,
        view.id,
        view.state,
        now,
        distributed=distributed,
        queued_chunks=view.chunk_counts.get("queued", 0),
        pending=view.counts.get("pending", 0) if view.counts else None,
        started_at=view.started_at,
        window_opens=closed_windows({view.id: view.window}, now).get(view.id) if view.window else None,
    )


@dataclass(frozen=True)
class CampaignStatus:
    view: CampaignView
    progress: CampaignProgress  # as shown: no rate or ETA when nothing is sending it (`unattended`)
    live: Liveness  # who is sending it, or since when nothing is
    # provider -> recipient state -> count (each at the provider of its chunk), and the
    # circuits of those providers' accounts
    by_provider: dict[str, dict[str, int]] = field(default_factory=dict)
    circuits: list[Health] = field(default_factory=list)
    costs: CampaignCosts = field(default_factory=CampaignCosts)  # planned, spent, reported by provider
    # Who started it ("alice", "key:crm", "cli:USER@HOST"; None before the audit existed) and its audit
    # trail, oldest first: {"at" (aware datetime), "who", "action", "detail"} (campaigns/store/audit.py).
    created_by: str | None = None
    events: list[dict[str, Any]] = field(default_factory=list)

    def as_json(self) -> dict[str, Any]:
        v = self.view
        return {
            "campaign": v.id,
            "name": v.name,
            "provider": v.provider,
            "state": v.state,
            "reason": v.state_reason,
            "recipients": v.recipients,
            "rejected": v.rejected,
            "counts": v.counts,
            "chunks": v.chunk_counts,
            "send_at": v.send_at.isoformat() if v.send_at else None,
            "window": v.window,
            "created_at": v.created_at.isoformat(),
            "started_at": v.started_at.isoformat() if v.started_at else None,
            "finished_at": v.finished_at.isoformat() if v.finished_at else None,
            **self.progress.as_json(),
            "sender": self.live.sender_json(),
            # planned (`estimated`) and spent in rial by the provider that sent; `actual` as reported,
            # in each provider's unit (`actual_unit` per provider below; null: not documented)
            "cost": {
                "estimated": _whole(self.costs.planned, v.cost_estimated),
                "spent": _whole(self.costs.spent, None),
                "unsure": _whole(self.costs.unsure, None),  # held unknown: may have gone out
                "actual": _whole(self.costs.reported, v.cost_actual),
                "currency": CURRENCY,  # ISO 4217, as in the preflight's cost
            },
            "budget": {
                "budget_rial": v.budget_rial,
                "max_parts": v.max_parts,
                "spent_rial": v.spent_rial,
                "spent_parts": v.spent_parts,
            },
            "by_provider": self.by_provider,
            "cost_by_provider": {
                name: {
                    "estimated": c.planned,
                    "spent": c.spent,
                    "actual": c.reported,
                    "actual_unit": reported_unit(name),
                }
                for name, c in self.costs.by_provider.items()
            },
            "circuits": [
                {
                    "provider": h.provider,
                    "account": h.account,
                    "state": h.state,
                    "failures": h.failures,
                    "reason": h.reason,
                    "probe_at": h.probe_at.isoformat() if h.probe_at else None,
                }
                for h in self.circuits
            ],
            "created_by": self.created_by,
            "events": [{**e, "at": e["at"].isoformat()} for e in self.events],
        }


def _whole(amount: float | None, otherwise: float | None) -> float | None:
    """`amount` (a read of `Store.costs`), else the view's own figure (a campaign with no recipients)."""
    return amount if amount is not None else otherwise


def reported_unit(provider: str) -> str | None:
    """The unit of what `provider` reports a message cost; None when its documents give none."""
    try:
        return client_class(provider).cost_unit
    except ConfigurationError:  # a provider this version does not know
        return None


def read_status(store: Store, campaign_id: int, now: datetime, *, distributed: bool) -> CampaignStatus | None:
    """The campaign's status document, or None when there is no such campaign."""
    view, progress, live = read_shown(store, campaign_id, now, distributed=distributed)
    if view is None or progress is None or live is None:
        return None
    by_provider = view.by_provider  # the view's own counters (Store.campaign): no read more
    providers = {view.provider, *by_provider}
    circuits = [h for h in store.all_health() if h.provider in providers]
    costs = view.costs if view.costs is not None else store.costs(campaign_id)
    events = store.campaign_events(campaign_id)
    return CampaignStatus(
        view, progress, live, by_provider, circuits, costs, store.created_by(campaign_id), events
    )
