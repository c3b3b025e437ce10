"""`smsdispatch summary`: one row per campaign, with the same numbers as `status`.

Use case over the store: `summarise(store, ids, since, now)` returns `CampaignSummary` rows; the CLI
only prints them. Counts come from `Store.counted_campaigns` (the views `Store.campaign` gives, every
campaign's from the maintained counters in two reads) and `sent` from `campaigns.progress.progress_of`, the
function `status` uses, so the two can never disagree.

Cost (`dispatcher.reports.money`): planned (the estimate), spent so far (the estimate for the recipients
a provider accepted) and reported by the provider (its own unit), each by the provider that sent, from
the views' own counters (`CampaignView.costs`, what `Store.costs` reads); `campaign_cost` falls back on the
view's creation estimate when it has none. `totals`
sums the rows: the table's last row for people, `summary --json --totals` for machines.

A cancelled campaign's recipients cancelled before sending were never sent: they are not "undelivered".
`parts` counts the SMS parts of the recipients not cancelled (the plan, less what a cancel kept from being
sent), and `delivered_pct` is delivered of the recipients not cancelled (`sendable`); `counts` still has
the cancelled ones.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Any

from campaigns.progress import progress_of
from campaigns.records import CampaignCosts
from campaigns.states import RecipientState
from campaigns.store import CampaignView, Store
from campaigns.windows import WhenError, parse_when
from dispatcher.humane import Calendar, duration_text, percent, when
from dispatcher.reports.outcomes import OUTCOMES

R = RecipientState
_AGO = re.compile(r"^\s*(\d+)\s*([mhdw])\s*$")
_UNIT = {"m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}


def sendable(recipients: int, counts: Mapping[str, int]) -> int:
    """Of `recipients`, those not cancelled before sending (`counts`: recipients by state): the whole of
    which the delivered share is taken (module docstring)."""
    return recipients - counts.get(R.CANCELLED, 0)


def campaign_cost(
    view: CampaignView, costs: CampaignCosts | None = None
) -> tuple[int | None, int | None, int | None]:
    """(planned, spent so far, reported) of a campaign in whole rial (reported: the provider's unit); None
    where not known. From `costs` (`Store.costs`); without it, the view's creation estimate and reported
    sum (`Store.campaign`), and no spent figure."""
    if costs is None or not costs.by_provider:
        actual = None if view.cost_actual is None else round(view.cost_actual)
        return view.cost_estimated, None, actual
    whole = [None if x is None else round(x) for x in (costs.planned, costs.spent, costs.reported)]
    return whole[0], whole[1], whole[2]


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
    parts: int  # of the recipients not cancelled before sending (module docstring)
    cost_estimated: int | None  # planned: the estimate, at the price of the provider holding each recipient
    cost_actual: int | None  # reported by the provider(s), in their unit (`reported_unit`)
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    duration_seconds: float | None
    # provider -> recipient state -> count, each recipient at the provider of its chunk
    by_provider: dict[str, dict[str, int]] = field(default_factory=dict)
    cost_spent: int | None = None  # the estimate for the recipients a provider accepted (rial)

    @property
    def delivered(self) -> int:
        return self.counts.get(R.DELIVERED, 0)

    @property
    def sendable(self) -> int:
        """Recipients not cancelled before sending: the whole of which `delivered_pct` is a share."""
        return sendable(self.recipients, self.counts)

    @property
    def delivered_pct(self) -> float:
        """Delivered, as a percentage of the recipients not cancelled before sending (one decimal)."""
        return percent(self.delivered, self.sendable)

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
            "cost_spent": self.cost_spent,
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
            **cost_cells(self.cost_spent, self.cost_estimated, self.cost_actual),
            "duration": duration_text(self.duration_seconds),
            "started": (show_time(self.started_at) if self.started_at else "")
            if show_time
            else when(self.started_at, calendar),
        }


def cost_cells(spent: int | None, planned: int | None, reported: int | float | None) -> dict[str, str]:
    """The summary table's cost cells for people: spent so far of planned (rial), and reported."""
    shown = "not known" if planned is None else f"{spent or 0:,} of {planned:,}"
    return {"spent (rial)": shown, "reported": "" if reported is None else f"{round(reported):,}"}


def summary_of(view: CampaignView, now: datetime, costs: CampaignCosts | None = None) -> CampaignSummary:
    """A campaign's summary from its view (which must carry its counts: `Store.campaign`) and its money
    (`Store.costs`; None: the view's creation estimate, no spent figure)."""
    progress = progress_of(view, None, None, now)
    counts = {str(s): view.counts.get(s, 0) for s in OUTCOMES}
    counts.update({k: v for k, v in view.counts.items() if k not in counts})
    estimated, spent, actual = campaign_cost(view, costs)
    end = view.finished_at or now
    return CampaignSummary(
        campaign=view.id,
        name=view.name,
        provider=view.provider,
        state=view.state,
        recipients=view.recipients,
        sent=progress.sent,
        counts=counts,
        parts=view.parts - view.cancelled_parts,
        cost_estimated=estimated,
        cost_actual=actual,
        cost_spent=spent,
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
        replace(summary_of(v, now, v.costs), by_provider=v.by_provider)
        for v in views
        if since is None or v.created_at >= since
    ]


@dataclass(frozen=True)
class SummaryTotals:
    """The rows of a summary added up: campaigns, recipients by state, parts, rial. Costs are None when no
    row knows them; `cost_actual` adds up what providers reported, each in its own unit."""

    campaigns: int
    recipients: int
    sent: int
    counts: dict[str, int]
    parts: int
    cost_estimated: int | None
    cost_spent: int | None
    cost_actual: int | None

    @property
    def delivered_pct(self) -> float:
        """Delivered, as a percentage of the recipients not cancelled before sending (one decimal)."""
        return percent(self.counts.get(R.DELIVERED, 0), sendable(self.recipients, self.counts))

    def as_json(self) -> dict[str, Any]:
        """`summary --json --totals`: one object."""
        delivered = self.counts.get(R.DELIVERED, 0)
        return {
            "campaigns": self.campaigns,
            "recipients": self.recipients,
            "sent": self.sent,
            "delivered": delivered,
            "delivered_pct": self.delivered_pct,
            "failed": self.counts.get(R.FAILED, 0),
            "blacklisted": self.counts.get(R.BLACKLISTED, 0),
            "counts": self.counts,
            "parts": self.parts,
            "cost_estimated": self.cost_estimated,
            "cost_spent": self.cost_spent,
            "cost_actual": self.cost_actual,
        }

    def as_row(self, columns: list[str]) -> list[str]:
        """The table's last row for people, in `columns` (the keys of `CampaignSummary.as_row`)."""
        cells = {
            "id": "total",
            "name": f"{self.campaigns:,} campaign{'' if self.campaigns == 1 else 's'}",
            "recipients": f"{self.recipients:,}",
            "sent": f"{self.sent:,}",
            "delivered": f"{self.delivered_pct:.1f}%",
            "failed": f"{self.counts.get(R.FAILED, 0):,}",
            "blacklisted": f"{self.counts.get(R.BLACKLISTED, 0):,}",
            "parts": f"{self.parts:,}",
            **cost_cells(self.cost_spent, self.cost_estimated, self.cost_actual),
        }
        return [cells.get(c, "") for c in columns]


def totals(rows: list[CampaignSummary]) -> SummaryTotals:
    """The rows added up (`SummaryTotals`)."""
    counts: Counter[str] = Counter()
    for row in rows:
        counts.update(row.counts)

    def known(name: str) -> int | None:
        values = [getattr(r, name) for r in rows if getattr(r, name) is not None]
        return sum(values) if values else None

    return SummaryTotals(
        campaigns=len(rows),
        recipients=sum(r.recipients for r in rows),
        sent=sum(r.sent for r in rows),
        counts={str(s): counts.get(str(s), 0) for s in OUTCOMES} | dict(counts),
        parts=sum(r.parts for r in rows),
        cost_estimated=known("cost_estimated"),
        cost_spent=known("cost_spent"),
        cost_actual=known("cost_actual"),
    )
