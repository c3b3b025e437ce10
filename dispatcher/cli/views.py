"""Read-only commands: `status`, `watch`, `list`, `report`. None of them creates a database; when
there is no such campaign they name the database they looked in (`dispatcher.app.NoCampaign`)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from campaigns.progress import RATE_WINDOW
from campaigns.states import CampaignState
from campaigns.store.sending import resume_command
from dispatcher import app
from dispatcher.app.shapes import list_rows
from dispatcher.cli.common import (
    AsJson,
    CampaignId,
    Wide,
    cli,
    cli_settings,
    emit,
    err,
    followed_exit,
    out,
    plural,
    positive,
    print_labelled,
)
from dispatcher.cli.tables import Column, columns_for, print_fitted

# What a terminal of 80 columns leaves out first (the highest `drop`); `--wide` shows every column.
SUMMARY_COLUMNS = {
    c.name: c
    for c in (
        Column("id", right=True),
        Column("name", wrap=True),
        Column("state"),
        Column("recipients", right=True),
        Column("sent", drop=5, right=True),
        Column("delivered", right=True),
        Column("failed", drop=6, right=True),
        Column("blacklisted", drop=7, right=True),
        Column("parts", drop=8, right=True),
        Column("spent (rial)", drop=1, right=True),
        Column("reported", drop=2, right=True),
        Column("duration", drop=9),
        Column("started", drop=4),
    )
}
LIST_COLUMNS = [
    Column("id", right=True),
    Column("name", wrap=True),
    Column("provider", drop=2),
    Column("state"),
    Column("recipients", drop=1, right=True),
    Column("created", drop=3),
    Column("sending", wrap=True),
]


@cli.command()
def status(campaign_id: CampaignId, as_json: AsJson = False) -> None:
    """Counts per state, progress, rate, ETA, and what it is waiting for (pause reason, schedule, window)."""
    settings = cli_settings()
    found = app.status(settings, campaign_id)
    if as_json:
        emit(found.as_json())
        return
    view, progress = found.view, found.progress
    out.print(f"campaign {view.id} ({view.name}) via {view.provider}: {view.state}", soft_wrap=True)
    table = Table()
    table.add_column("state")
    table.add_column("recipients", justify="right")
    for state, n in sorted(view.counts.items()):
        table.add_row(state, str(n))
    out.print(table)
    if len(found.by_provider) > 1 or any(h.state != "closed" for h in found.circuits):
        for name, counts in sorted(found.by_provider.items()):
            out.print(f"via {name}: " + ", ".join(f"{n} {s}" for s, n in sorted(counts.items())))
        for h in found.circuits:
            out.print(f"circuit {h.provider}: {h.state}" + (f" ({h.reason})" if h.reason else ""))
    pct = 100 / progress.total if progress.total else 0.0
    out.print(f"sent:    {progress.sent} of {progress.total} ({progress.sent * pct:.1f}%)")
    if progress.cancelled:
        out.print(f"cancelled: {progress.cancelled} of {progress.total} (never sent)")
    out.print(f"final:   {progress.final} of {progress.total} ({progress.final * pct:.1f}%)")
    if progress.awaiting:
        out.print(f"reports: {progress.awaiting} awaiting a delivery report{progress.next_check_text}")
    if progress.rate is not None:
        out.print(
            f"rate:    {progress.rate:.2f} recipients/s over the last {RATE_WINDOW.total_seconds() / 60:g} minutes"
        )
    waiting = progress.waiting
    if not progress.finished and (waiting is None or waiting.reason in ("retrying", "reconciling")):
        out.print(f"ETA:     {progress.eta_text}")
    if waiting is not None and waiting.reason != "paused":  # a pause has its reason line below
        print_labelled(out, "waiting:", waiting.detail)
    if found.live.detail and (waiting is None or waiting.reason != "unattended"):
        print_labelled(out, "sender:", found.live.detail)
    times = (("created", view.created_at), ("starts", view.send_at), ("started", view.started_at))
    for label, moment in (*times, ("finished", view.finished_at)):
        if moment is not None and not (label == "starts" and view.started_at is not None):
            out.print(f"{label + ':':<8} {settings.show_time(moment)}")
    from dispatcher.app.budget import budget_line
    from dispatcher.reports.money import cost_lines

    for i, line in enumerate(cost_lines(found.costs)):  # planned, spent so far, reported by the provider
        print_labelled(out, "cost:" if i == 0 else "", line)
    if (caps := budget_line(view)) is not None:
        out.print(caps)
    if view.state_reason:
        out.print(f"reason: {view.state_reason}")
    if view.state == CampaignState.PAUSED:
        out.print(f"to continue: {resume_command(view.id, view.state_reason)}")


@cli.command()
def watch(
    campaign_id: CampaignId,
    interval: Annotated[
        float, typer.Option("--interval", help="seconds between looks at the database")
    ] = 1.0,
) -> None:
    """Follow a campaign with two bars (sending, delivery) until it completes, stops or pauses; Ctrl-C leaves it running."""
    from dispatcher.app.modes import follow_campaign
    from dispatcher.cli.bars import ProgressBars

    positive(interval, "--interval")
    settings = cli_settings()
    store, _ = app.campaign_view(settings, campaign_id)
    try:
        err.print(f"following campaign {campaign_id}; Ctrl-C stops following, not the campaign")
        with ProgressBars(err) as bars:
            distributed = bool(settings.dispatch.broker_url)
            p = follow_campaign(store, campaign_id, bars, interval=interval, distributed=distributed)
    except KeyboardInterrupt:
        err.print(
            f"stopped watching; campaign {campaign_id} goes on. Follow it again: smsdispatch watch {campaign_id}"
        )
        raise typer.Exit(130) from None
    cancelled = f", {p.cancelled} cancelled" if p.cancelled else ""
    out.print(f"campaign {campaign_id}: {p.state}; {p.sent} sent{cancelled}, {p.final} final of {p.total}")
    followed_exit(store, campaign_id)


@cli.command()
def report(
    campaign_id: CampaignId,
    out_path: Annotated[Path, typer.Option("--out", help="report file, .csv or .xlsx")],
    chart: Annotated[
        Path | None,
        typer.Option(
            "--chart",
            help="also draw delivery over time and, to FILE-operators, outcomes by operator (.png or .svg)",
        ),
    ] = None,
) -> None:
    """One row per recipient: phone, state, ids, codes, error, times, then the CSV's own columns."""
    done = app.report(cli_settings(), campaign_id, out_path, chart)
    out.print(
        f"{plural(sum(done.counts.values()), 'recipient')} written to {done.path}: "
        + ", ".join(f"{k} {v}" for k, v in sorted(done.counts.items()))
    )
    if done.charts:
        out.print(
            f"charts written to {', '.join(map(str, done.charts))} (delivery over time; outcomes by operator)"
        )


@cli.command()
def summary(
    campaign_ids: Annotated[list[int] | None, typer.Argument(metavar="[ID]...")] = None,
    since: Annotated[
        str | None, typer.Option("--since", help="created since: 24h, 7d, or a date-time (Tehran or Jalali)")
    ] = None,
    wide: Wide = False,
    as_json: AsJson = False,
    with_totals: Annotated[
        bool, typer.Option("--totals", help="with --json: print the totals as one object instead of the list")
    ] = False,
) -> None:
    """One row per campaign (state, recipients, sent, delivered %, failed, blacklisted, parts, cost spent of
    planned, cost reported by the provider, duration), then the totals."""
    settings = cli_settings()
    rows = app.summary(settings, campaign_ids, since)
    if as_json:
        emit(app.summary_totals(rows).as_json() if with_totals else [r.as_json() for r in rows])
        return
    cells = [r.as_row(settings.calendar, settings.show_time) for r in rows]
    names = list(cells[0]) if cells else ["id", "name", "state", "recipients"]
    columns = columns_for(names, SUMMARY_COLUMNS)
    table_rows = [[row.get(n, "") for n in names] for row in cells]
    total_row = app.summary_totals(rows).as_row(names) if len(rows) > 1 else None
    print_fitted(out, columns, table_rows, wide=wide, totals=total_row)
    reporting = sorted(
        {p for r in rows if r.cost_actual is not None for p in (r.by_provider or [r.provider])}
    )
    legend = "spent: the estimate for the recipients a provider accepted, of the planned total"
    if reporting:
        from dispatcher.reports.money import UNIT_NOT_DOCUMENTED, reported_unit

        units = ", ".join(f"{p}: {reported_unit(p) or UNIT_NOT_DOCUMENTED}" for p in reporting)
        legend += f"; reported: what the provider said the messages cost ({units})"
    if rows:
        out.print(legend, highlight=False)  # wraps at words in a terminal; one line to a pipe


@cli.command("list")
def list_(wide: Wide = False, as_json: AsJson = False) -> None:
    """Every campaign in the database (times in Tehran, or SMSDISPATCH_TIMEZONE)."""
    settings = cli_settings()
    found = app.list_campaigns(settings)
    if not found.exists:
        err.print(f"no database at {found.database}: no campaigns yet", soft_wrap=True)
    if as_json:
        emit(list_rows(found))
        return
    rows = []
    for v in found.campaigns:
        live = found.liveness.get(v.id)
        rows.append(
            [
                str(v.id),
                v.name,
                v.provider,
                v.state,
                f"{v.recipients:,}",
                settings.show_time(v.created_at),
                (live.detail if live else None) or "",
            ]
        )
    print_fitted(out, LIST_COLUMNS, rows, wide=wide)
