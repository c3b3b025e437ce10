"""Reading a campaign: its status, the list of campaigns, the per-recipient report and the chart.
Read-only: none of these creates a database (`open_store(read_only=True)`)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from campaigns.circuit import Health
from campaigns.clock import utcnow
from campaigns.liveness import Liveness
from campaigns.progress import CampaignProgress, Waiting
from campaigns.states import CampaignState
from campaigns.store import CampaignView, Store
from dispatcher.app.common import BadInput, NoCampaign, campaign_view, database_label, open_store
from dispatcher.config import AppSettings
from dispatcher.reports.summary import CampaignSummary as CampaignSummaryRow


# ---- reading -----------------------------------------------------------------------------------------
@dataclass(frozen=True)
class CampaignStatus:
    view: CampaignView
    progress: CampaignProgress  # as shown: no rate or ETA when nothing is sending it (`unattended`)
    live: Liveness  # who is sending it, or since when nothing is
    # provider -> recipient state -> count (each at the provider of its chunk), and the
    # circuits of those providers' accounts
    by_provider: dict[str, dict[str, int]] = field(default_factory=dict)
    circuits: list[Health] = field(default_factory=list)
    cost_by_provider: dict[str, dict[str, float | None]] = field(default_factory=dict)  # rial

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
            "cost": {"estimated": v.cost_estimated, "actual": v.cost_actual, "currency": "IRR"},
            "budget": {
                "budget_rial": v.budget_rial,
                "max_parts": v.max_parts,
                "spent_rial": v.spent_rial,
                "spent_parts": v.spent_parts,
            },
            "by_provider": self.by_provider,
            "cost_by_provider": self.cost_by_provider,
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
        }


def status(settings: AppSettings, campaign_id: int) -> CampaignStatus:
    """The campaign's counts and progress (rate, ETA, what it waits for); NoCampaign when there is none."""
    from dispatcher.app.following import read_shown

    store, _ = campaign_view(settings, campaign_id)
    distributed = bool(settings.dispatch.broker_url)
    view, progress, live = read_shown(store, campaign_id, utcnow(), distributed=distributed)
    if view is None or progress is None or live is None:
        raise NoCampaign(f"no campaign {campaign_id}; see smsdispatch list")
    by_provider = view.by_provider  # the view's own counters: no read more
    providers = {view.provider, *by_provider}
    circuits = [h for h in store.all_health() if h.provider in providers]
    costs = view.cost_by_provider
    return CampaignStatus(view, progress, live, by_provider, circuits, costs)


@dataclass(frozen=True)
class CampaignList:
    database: str  # for people: where we looked
    exists: bool
    campaigns: list[CampaignView]
    liveness: dict[int, Liveness]  # of the running and scheduled campaigns: who sends them, if anyone


def list_campaigns(settings: AppSettings) -> CampaignList:
    """Every campaign in the database (none, without creating it, when the database is not there)."""
    from dispatcher.app.following import liveness_of_view

    store = open_store(settings, read_only=True)
    label = database_label(settings.dispatch.database_url)
    if store is None:
        return CampaignList(label, False, [], {})
    now, distributed = utcnow(), bool(settings.dispatch.broker_url)
    views = store.campaigns()
    live = {
        v.id: liveness_of_view(store, v, now, distributed=distributed)
        for v in views
        if v.state in (CampaignState.RUNNING, CampaignState.SCHEDULED)
    }
    return CampaignList(label, True, views, live)


@dataclass(frozen=True)
class ReportResult:
    path: Path
    counts: dict[str, int]  # recipients written, by state
    charts: tuple[Path, ...] = ()  # delivery over time, then outcomes by operator


def report(settings: AppSettings, campaign_id: int, out: Path, chart: Path | None = None) -> ReportResult:
    """One row per recipient to `out` (.csv or .xlsx), and a delivery chart (.png or .svg) if asked.

    BadInput for a wrong suffix, a folder that does not exist or cannot be written, or a chart
    without matplotlib; NoCampaign when there is no such campaign."""
    import importlib.util

    from dispatcher.reports.recipients import write_report

    if out.suffix.lower() not in (".csv", ".xlsx"):
        raise BadInput(f"--out {out}: the report is written as .csv or .xlsx; change the file name")
    if chart is not None and chart.suffix.lower() not in (".png", ".svg"):
        raise BadInput(f"--chart {chart}: the chart is drawn as .png or .svg; change the file name")
    for path, option in ((out, "--out"), (chart, "--chart")):
        if path is not None and not path.parent.is_dir():
            raise BadInput(f"{option} {path}: the folder {path.parent} does not exist; create it first")
    if chart is not None and importlib.util.find_spec("matplotlib") is None:
        raise BadInput("--chart needs matplotlib: pip install 'smsdispatch[chart]' (or leave --chart out)")
    store, view = campaign_view(settings, campaign_id)
    try:
        counts = write_report(store, campaign_id, out)
        charts: tuple[Path, ...] = ()
        if chart is not None:
            from dispatcher.reports.chart_operators import campaign_charts

            charts = tuple(campaign_charts(store, view, chart, utcnow()))
    except OSError as exc:
        raise BadInput(
            f"{exc.filename or out}: cannot write there ({exc.strerror}); choose another path"
        ) from None
    return ReportResult(out, dict(counts), charts)


# ---- across campaigns --------------------------------------------------------------------------------
def summary(
    settings: AppSettings, campaign_ids: list[int] | None = None, since: str | None = None
) -> list[CampaignSummaryRow]:
    """One row per campaign (all, or `campaign_ids`, created since `since`: `24h`, `7d`, ISO or Jalali);
    the same numbers as `status`. NoCampaign for an id that is not there; [] without a database."""
    from dispatcher.reports.summary import parse_since, summarise

    now = utcnow()
    after = parse_since(since, now) if since else None
    store = open_store(settings, read_only=True)
    if store is None:
        if campaign_ids:
            where = database_label(settings.dispatch.database_url)
            raise NoCampaign(
                f"no campaign {campaign_ids[0]} in {where} (no database there); see smsdispatch list"
            )
        return []
    try:
        return summarise(store, campaign_ids, after, now)
    except KeyError as exc:
        where = database_label(settings.dispatch.database_url)
        raise NoCampaign(f"no campaign {exc.args[0]} in {where}; see smsdispatch list") from None


def waiting_for(store: Store, campaign_id: int) -> Waiting | None:
    """What holds the campaign up by its own facts (schedule, window, pause, retries), whoever sends it."""
    from campaigns.progress import read_progress

    _, progress = read_progress(store, campaign_id, utcnow())
    return progress.waiting if progress is not None else None
