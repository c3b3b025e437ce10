"""`send` and `run`: create a campaign and send it, or send what is left of one.

An option of `send` is three lines here: its declaration, and the field it fills in `SendRequest`
(`dispatcher.app`), where its meaning lives.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Annotated

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from campaigns.states import CampaignState
from dispatcher import app
from dispatcher.app import BadInput, SendRequest
from dispatcher.cli.common import (
    AsJson,
    CampaignId,
    cli,
    cli_settings,
    emit,
    err,
    followed_exit,
    out,
    plural,
    resume_hint,
)
from dispatcher.config import AppSettings
from dispatcher.modes import Mode, StartResult
from workers.providers import NAMES


def _loading_bar() -> Progress:
    return Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=err,
        transient=False,
    )


def start_and_show(settings: AppSettings, mode: Mode, campaign_id: int, *, follow: bool) -> StartResult:
    """Start the campaign in its mode with bars on stderr: sending here (embedded), or following the
    workers in the database when asked (distributed; Ctrl-C stops following, not the campaign)."""
    from dispatcher.watch import ProgressBars

    if not mode.sends_here and not follow:
        return mode.start(campaign_id)
    try:
        if not mode.sends_here:
            err.print(f"following campaign {campaign_id}; Ctrl-C stops following, not the campaign")
        with ProgressBars(err, delivery=follow or not mode.sends_here) as bars:
            result = mode.start(campaign_id, follow=follow, observer=bars)
    except KeyboardInterrupt:
        if mode.sends_here:
            raise
        err.print(
            f"stopped watching; campaign {campaign_id} goes on. Follow it again: smsdispatch watch {campaign_id}"
        )
        raise typer.Exit(130) from None
    if (
        mode.sends_here and result.state == CampaignState.PAUSED and not follow
    ):  # --wait: followed_exit says it
        err.print(resume_hint(campaign_id, result.reason or "no reason recorded"), soft_wrap=True)
    return result


@cli.command()
def send(
    file: Annotated[Path, typer.Argument(help="CSV or .xlsx of recipients")],
    provider: Annotated[
        str,
        typer.Option(
            "--provider",
            "-p",
            help=f"one of {', '.join(NAMES)}; or a failover route: a comma list (ghasedak,mediapayamak) "
            "or a route named in the settings ([routes.NAME] providers = [...])",
        ),
    ],
    message: Annotated[
        str | None, typer.Option("--message", "-m", help="text; {column} fills in a CSV column")
    ] = None,
    message_file: Annotated[
        Path | None, typer.Option("--message-file", help="read the text from a file")
    ] = None,
    sender: Annotated[
        str | None, typer.Option("--sender", help="line number (default SMSDISPATCH_<P>_SENDER)")
    ] = None,
    column: Annotated[
        str | None, typer.Option("--column", help="the phone column, when it is not found by name")
    ] = None,
    sheet: Annotated[
        str | None, typer.Option("--sheet", help="the workbook sheet to read: NAME or NUMBER (1 = first)")
    ] = None,
    name: Annotated[str | None, typer.Option("--name", help="campaign name")] = None,
    at: Annotated[
        str | None,
        typer.Option(
            "--at", help="ISO-8601 or Jalali (1405/09/10 10:00), Tehran time unless an offset is given"
        ),
    ] = None,
    window: Annotated[
        str | None,
        typer.Option(
            "--window",
            help="daily send window, Tehran time, e.g. 09:00-21:00 (default SMSDISPATCH_SEND_WINDOW; 'any' for none)",
        ),
    ] = None,
    on_unknown: Annotated[
        str,
        typer.Option(
            "--on-unknown", help="hold (default) or resend recipients whose send could not be confirmed"
        ),
    ] = "hold",
    rejects: Annotated[
        Path | None, typer.Option("--rejects", help="where to write rejected rows (default FILE.rejects.csv)")
    ] = None,
    dry_run: Annotated[
        bool,
        typer.Option(
            "--dry-run", help="load and plan only (suppressions applied); send nothing, create nothing"
        ),
    ] = False,
    wait: Annotated[
        bool, typer.Option("--wait", help="also follow delivery reports until every recipient is final")
    ] = False,
    as_json: AsJson = False,
) -> None:
    """Load, plan and send a campaign (in embedded mode the sending runs here)."""
    settings = cli_settings()
    if (message is None) == (message_file is None):
        raise BadInput("give the text with exactly one of --message TEXT or --message-file FILE")
    if message_file is not None:
        try:
            message = message_file.read_text(encoding="utf-8-sig")
        except (OSError, UnicodeDecodeError) as exc:
            raise BadInput(
                f"--message-file {message_file}: cannot read it as UTF-8 text ({exc.__class__.__name__})"
            ) from None
    assert message is not None
    request = SendRequest(
        file=file,
        provider=provider,
        message=message,
        sender=sender,
        column=column,
        sheet=sheet,
        name=name,
        at=at,
        window=window,
        on_unknown=on_unknown,
        rejects=rejects,
    )
    prepared = app.prepare(settings, request, dry_run=dry_run)
    if prepared.loader.notice:
        err.print(prepared.loader.notice)
    # A preflight (checks on the whole prepared campaign, refusing with exit 3) goes here, before create.
    with _loading_bar() as bar:
        task = bar.add_task("loading", total=None)
        advance = lambda n: bar.advance(task, n)  # noqa: E731
        summary = app.dry_run(prepared, advance) if dry_run else app.create(prepared, advance)
        rows = prepared.loader.stats.rows
        bar.update(task, total=rows, completed=rows)

    store = prepared.store
    if store is not None and summary.campaign is not None and summary.recipients:
        mode = app.mode_for(settings, store)
        if mode.sends_here and summary.state == CampaignState.SCHEDULED and summary.send_at is not None:
            err.print(
                f"campaign {summary.campaign} is scheduled for {settings.show_time(summary.send_at)}; "
                "sending starts here then"
            )
        result = start_and_show(settings, mode, summary.campaign, follow=wait)
        summary = dataclasses.replace(summary, state=result.state)
    if as_json:
        emit(summary.as_json())
    else:
        head = "dry run, nothing stored" if summary.campaign is None else f"campaign {summary.campaign}"
        out.print(
            f"{head}: {plural(summary.recipients, 'recipient')}, {summary.rejected} rejected "
            f"(see {summary.rejects_file}), {plural(summary.chunks, 'chunk')}, "
            f"{plural(summary.parts, 'SMS part')}; state {summary.state}"
        )
    if wait and store is not None and summary.campaign is not None:
        followed_exit(summary.campaign, *store.campaign_state(summary.campaign))


@cli.command()
def run(
    campaign_id: CampaignId,
    wait: Annotated[bool, typer.Option("--wait", help="also follow delivery reports to the end")] = False,
) -> None:
    """Send what is left of a running campaign (after resume, or after a crash)."""
    settings = cli_settings()
    store, view = app.campaign_view(settings, campaign_id)
    state = view.state
    if view.state == CampaignState.RUNNING:
        state = start_and_show(settings, app.mode_for(settings, store), campaign_id, follow=wait).state
    out.print(f"campaign {campaign_id}: {state}")
    if wait:
        followed_exit(campaign_id, *store.campaign_state(campaign_id))
