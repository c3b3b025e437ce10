"""`smsdispatch summary`: one row per campaign, with the same numbers as `status`.

Use case over the store: `summarise(store, ids, since, now)` returns `CampaignSummary` rows; the CLI
only prints them. Counts come from `Store.counted_campaigns` (the views `Store.campaign` gives, every
campaign's from the maintained counters in two reads) and `sent` from `campaigns.progress.progress_of`, the
function `status` uses, so the two can never disagree.

Cost: `campaign_cost` reads both from the view `Store.campaign` gives (the same numbers as
`Store.campaign_costs`): the estimate stored at creation (parts x the price table), and the sum of what the
provider reported per message (Ghasedak's status `price`, Amoot's `Cost`); None where not known.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Any

from campaigns.progress import progress_of
from campaigns.states import RecipientState
from campaigns.store import CampaignView, Store
from campaigns.windows import WhenError, parse_when
from dispatcher.humane import Calendar, duration_text, percent, rial, when
from dispatcher.reports.outcomes import OUTCOMES

R = RecipientState
_AGO = re.compile(r"^\s*(\d+)\s*([mhdw])\s*$")
_UNIT = {"m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}


def campaign_cost(view: CampaignView) -> tuple[int | None, int | None]:
    """(estimated, actual) cost of a campaign in whole rial; None where not known (no price when it was
    stored; no provider reply that carried a price). The view must come from `Store.campaign`."""
    actual = None if view.cost_actual is None else round(view.cost_actual)
    return view.cost_estimated, actual


def parse_since(text: str, now: datetime) -> datetime:
    """`--since`: `24h`, `7d`, `30m`, `2w` ago, or a date-time as `--at` takes it (Tehran unless an offset).

    Raises WhenError (bad input) naming the value and the forms accepted.
    """
    match = _AGO.match(text)
    if match:
        return now - timedelta(seconds=int(match.group(1)) * _UNIT[match.group(2)])
    try:
        return parse_when(text)
    except WhenError:
        raise WhenError(
            f"--since {text!r}: write a time ago such as 24h or 7d, or a date-time such as "
            "2026-11-01 or 1405/08/10"
        ) from None


@dataclass(frozen=True)
class CampaignSummary:
    """One campaign in numbers. Counts are recipients; parts are SMS parts; cost in rial; seconds."""

    campaign: int
    name: str
    provider: str
    state: str
    recipients: int
    sent: int
    counts: dict[str, int]  # every state of OUTCOMES, plus any other the store holds
    parts: int
    cost_estimated: int | None
    cost_actual: int | None
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    duration_seconds: float | None
    # provider -> recipient state -> count, each recipient at the provider of its chunk
    by_provider: dict[str, dict[str, int]] = field(default_factory=dict)

    @property
    def delivered(self) -> int:
        return self.counts.get(R.DELIVERED, 0)

    @property
    def delivered_pct(self) -> float:
        """Delivered, as a percentage of the recipients (one decimal)."""
        return percent(self.delivered, self.recipients)

    def as_json(self) -> dict[str, Any]:
        """For machines: ISO-8601 UTC times, plain numbers."""
        return {
            "campaign": self.campaign,
            "name": self.name,
            "provider": self.provider,
            "state": self.state,
            "recipients": self.recipients,
            "sent": self.sent,
            "delivered": self.delivered,
            "delivered_pct": self.delivered_pct,
            "failed": self.counts.get(R.FAILED, 0),
            "blacklisted": self.counts.get(R.BLACKLISTED, 0),
            "counts": self.counts,
            "parts": self.parts,
            "cost_estimated": self.cost_estimated,
            "cost_actual": self.cost_actual,
            "duration_seconds": None if self.duration_seconds is None else round(self.duration_seconds, 1),
            "created_at": self.created_at.isoformat(),
            "started_at": self.started_at.isoformat() if self.started_at else None,
            "finished_at": self.finished_at.isoformat() if self.finished_at else None,
            "by_provider": self.by_provider,
        }

    def as_row(
        self, calendar: Calendar, show_time: Callable[[datetime], str] | None = None
    ) -> dict[str, str]:
        """For people: the summary table's cells (rial with separators; the start as `show_time` writes
        it, the CLI's one time format, else Tehran or Jalali time)."""
        cost = rial(self.cost_actual if self.cost_actual is not None else self.cost_estimated)
        if self.cost_estimated is not None:  # the estimate beside what the provider reported
            cost += (
                f" (estimated {rial(self.cost_estimated)})"
                if self.cost_actual is not None
                else " (estimated)"
            )
        return {
            "id": str(self.campaign),
            "name": self.name,
            "state": self.state,
            "recipients": f"{self.recipients:,}",
            "sent": f"{self.sent:,}",
            "delivered": f"{self.delivered_pct:.1f}%",
            "failed": f"{self.counts.get(R.FAILED, 0):,}",
            "blacklisted": f"{self.counts.get(R.BLACKLISTED, 0):,}",
            "parts": f"{self.parts:,}",
            "cost": cost,
            "duration": duration_text(self.duration_seconds),
            "started": (show_time(self.started_at) if self.started_at else "")
            if show_time
            else when(self.started_at, calendar),
        }


def summary_of(view: CampaignView, now: datetime) -> CampaignSummary:
    """A campaign's summary from its view (which must carry its counts: `Store.campaign`)."""
    progress = progress_of(view, None, None, now)
    counts = {str(s): view.counts.get(s, 0) for s in OUTCOMES}
    counts.update({k: v for k, v in view.counts.items() if k not in counts})
    estimated, actual = campaign_cost(view)
    end = view.finished_at or now
    return CampaignSummary(
        campaign=view.id,
        name=view.name,
        provider=view.provider,
        state=view.state,
        recipients=view.recipients,
        sent=progress.sent,
        counts=counts,
        parts=view.parts,
        cost_estimated=estimated,
        cost_actual=actual,
        created_at=view.created_at,
        started_at=view.started_at,
        finished_at=view.finished_at,
        duration_seconds=(end - view.started_at).total_seconds() if view.started_at else None,
    )


def summarise(
    store: Store, ids: list[int] | None, since: datetime | None, now: datetime
) -> list[CampaignSummary]:
    """Summaries of the campaigns `ids` (all when None or empty), created at or after `since`, by id.

    Raises KeyError(id) for an id the store does not have.
    """
    wanted = sorted(set(ids)) if ids else None
    views = store.counted_campaigns(wanted)  # two reads, whatever the number of campaigns
    missing = set(wanted or ()) - {v.id for v in views}
    if missing:
        raise KeyError(min(missing))
    return [
        replace(summary_of(v, now), by_provider=v.by_provider)
        for v in views
        if since is None or v.created_at >= since
    ]
