"""Reading a campaign: its status, the list of campaigns, the per-recipient report and the chart.
Read-only: none of these creates a database (`open_store(read_only=True)`)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from campaigns.clock import utcnow
from campaigns.liveness import Liveness
from campaigns.progress import Waiting
from campaigns.states import CampaignState
from campaigns.store import CampaignView, Store
from dispatcher.app.common import BadInput, NoCampaign, campaign_view, database_label, open_store
from dispatcher.config import AppSettings
from dispatcher.reports.summary import CampaignSummary as CampaignSummaryRow
from dispatcher.reports.summary import SummaryTotals
from workers.statusdoc import CampaignStatus


# ---- reading -----------------------------------------------------------------------------------------
def status(settings: AppSettings, campaign_id: int) -> CampaignStatus:
    """The campaign's counts and progress (rate, ETA, what it waits for); NoCampaign when there is none."""
    from workers.statusdoc import read_status

    store, _ = campaign_view(settings, campaign_id)
    found = read_status(store, campaign_id, utcnow(), distributed=bool(settings.dispatch.broker_url))
    if found is None:
        raise NoCampaign(f"no campaign {campaign_id}; see smsdispatch list", f"no campaign {campaign_id}")
    return found


def _whole(amount: float | None, otherwise: float | None) -> float | None:
    """`amount` (a read of `Store.costs`), else the view's own figure (a campaign with no recipients)."""
    return amount if amount is not None else otherwise


@dataclass(frozen=True)
class CampaignList:
    database: str  # for people: where we looked
    exists: bool
    campaigns: list[CampaignView]
    liveness: dict[int, Liveness]  # of the running and scheduled campaigns: who sends them, if anyone


def list_campaigns(settings: AppSettings) -> CampaignList:
    """Every campaign in the database (none, without creating it, when the database is not there)."""
    from workers.statusdoc import liveness_of_view

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
                f"no campaign {campaign_ids[0]} in {where} (no database there); see smsdispatch list",
                f"no campaign {campaign_ids[0]}",
            )
        return []
    try:
        return summarise(store, campaign_ids, after, now)
    except KeyError as exc:
        where = database_label(settings.dispatch.database_url)
        raise NoCampaign(
            f"no campaign {exc.args[0]} in {where}; see smsdispatch list", f"no campaign {exc.args[0]}"
        ) from None


def summary_totals(rows: list[CampaignSummaryRow]) -> SummaryTotals:
    """The summary's rows added up: its totals row, and `summary --json --totals`."""
    from dispatcher.reports.summary import totals

    return totals(rows)


def campaign_page(
    settings: AppSettings,
    *,
    state: str | None = None,
    since: str | None = None,
    cursor: int = 0,
    limit: int = 100,
    newest_first: bool = False,
) -> tuple[list[CampaignSummaryRow], int | None]:
    """A page of `summary` rows, filtered by state and creation time (`since` as `summary --since` takes
    it), and the next page's cursor (None on the last page). Oldest first, after the id `cursor` (the API);
    or newest first, below the id `cursor` (0: from the newest; the console). BadInput for a bad state."""
    from dispatcher.reports.summary import parse_since

    if state is not None and state not in set(CampaignState):
        raise BadInput(f"state={state!r}: choose one of {', '.join(CampaignState)}")
    store = open_store(settings, read_only=True)
    if store is None:
        return [], None
    after = parse_since(since, utcnow()) if since else None
    views = [
        v
        for v in store.campaigns()
        if (state is None or v.state == state)
        and (after is None or v.created_at >= after)
        and (not cursor or (v.id < cursor if newest_first else v.id > cursor))
    ]
    views.sort(key=lambda v: v.id, reverse=newest_first)
    chosen = views[:limit]
    if not chosen:
        return [], None
    order = {v.id: n for n, v in enumerate(chosen)}
    rows = sorted(summary(settings, list(order)), key=lambda r: order[r.campaign])  # summary sorts by id
    return rows, (chosen[-1].id if len(views) > limit else None)


def number_history(settings: AppSettings, phone: str) -> tuple[str, list[dict[str, Any]]]:
    """Every message a number got, across campaigns, newest first: (its E.164, the rows of
    `campaigns.store.lookup.messages_to`). BadInput for a number that is not an Iranian mobile."""
    from campaigns.store import lookup
    from dispatcher.app.accounts import phones_or_fail

    e164 = phones_or_fail([phone])[0]
    store = open_store(settings, read_only=True)
    return e164, (lookup.messages_to(store.engine, e164) if store is not None else [])


def waiting_for(store: Store, campaign_id: int) -> Waiting | None:
    """What holds the campaign up by its own facts (schedule, window, pause, retries), whoever sends it."""
    from campaigns.progress import read_progress

    _, progress = read_progress(store, campaign_id, utcnow())
    return progress.waiting if progress is not None else None
