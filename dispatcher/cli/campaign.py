"""`send` and `run`: create a campaign and send it, or send what is left of one.

An option of `send` is declared in `dispatcher.cli.send_options` (flags, help, panel), passed here to the
field it fills in `SendRequest` (`dispatcher.app`), where its meaning lives.
"""

from __future__ import annotations

import dataclasses
import sys
from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from campaigns.states import CampaignState
from dispatcher import app
from dispatcher.app import BadInput, SendRequest, notices
from dispatcher.app.modes import Mode, StartResult
from dispatcher.app.shapes import send_json
from dispatcher.cli import send_options as opts
from dispatcher.cli.common import (
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
from dispatcher.cli.preflight_view import confirm, render_start, render_summary
from dispatcher.config import AppSettings
from dispatcher.humane import local_phone


def _loading_bar(*, transient: bool = False) -> Progress:
    return Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=err,
        transient=transient,
        disable=transient and not err.is_terminal,  # off a terminal it would only leave a blank line
    )


def start_and_show(settings: AppSettings, mode: Mode, campaign_id: int, *, follow: bool) -> StartResult:
    """Start the campaign in its mode with bars on stderr: sending here (embedded), or following the
    workers or a live `serve` in the database when asked (Ctrl-C stops following, not the campaign).

    Ctrl-C while sending here: the chunks in flight finish, then one line says the state left and the
    command that goes on (exit 130)."""
    from dispatcher.cli.bars import ProgressBars

    if not mode.sends_here and not follow:
        result = mode.start(campaign_id)
        if result.handed_to:
            err.print(notices.handed_to(campaign_id, result.handed_to))
        return result
    try:
        if not mode.sends_here:
            err.print(f"following campaign {campaign_id}; Ctrl-C stops following, not the campaign")
        with ProgressBars(err, delivery=follow or not mode.sends_here) as bars:
            result = mode.start(campaign_id, follow=follow, observer=bars)
    except KeyboardInterrupt:
        if mode.sends_here:
            err.print(app.interrupted(settings, mode.store, campaign_id, wait=follow))
        else:
            err.print(
                f"stopped watching; campaign {campaign_id} goes on. Follow it again: smsdispatch watch {campaign_id}"
            )
        raise typer.Exit(130) from None
    if (
        mode.sends_here and result.state == CampaignState.PAUSED and not follow
    ):  # --wait: followed_exit says it
        err.print(resume_hint(campaign_id, result.reason or "no reason recorded"))
    return result


@cli.command()
def send(
    file: opts.File,
    provider: opts.Provider,
    message: opts.Message = None,
    message_file: opts.MessageFile = None,
    sender: opts.Sender = None,
    name: opts.Name = None,
    column: opts.Column = None,
    sheet: opts.Sheet = None,
    header_row: opts.HeaderRow = None,
    rejects: opts.Rejects = None,
    at: opts.At = None,
    window: opts.Window = None,
    campaign_type: opts.CampaignType = "promotional",
    allow_partial: opts.AllowPartial = False,
    allow_duplicate: opts.AllowDuplicate = False,
    include_blacklisted: opts.IncludeBlacklisted = False,
    skip_recent: opts.SkipRecent = False,
    budget: opts.Budget = None,
    max_parts: opts.MaxParts = None,
    on_unknown: opts.OnUnknown = "hold",
    dry_run: opts.DryRun = False,
    test_to: opts.TestTo = None,
    yes: opts.Yes = False,
    wait: opts.Wait = False,
    as_json: opts.AsJson = False,
) -> None:
    """Check, load, plan and send a campaign: a preflight summary first (cost, credit, previews, checks;
    a refusal exits 3 with nothing stored), a question in a terminal, then the sending (in embedded
    mode it runs here)."""
    settings = cli_settings()
    if (message is None) == (message_file is None):
        raise BadInput("give the text with exactly one of --message TEXT or --message-file FILE")
    if message_file is not None:
        message = _message_from(message_file)
    assert message is not None
    request = SendRequest(
        file=file,
        provider=provider,
        message=message,
        sender=sender,
        column=column,
        sheet=sheet,
        header_row=header_row,
        name=name,
        at=at,
        window=window,
        on_unknown=on_unknown,
        rejects=rejects,
        campaign_type=campaign_type,
        allow_partial=allow_partial,
        allow_duplicate=allow_duplicate,
        skip_recent=skip_recent,
        include_blacklisted=include_blacklisted,
        budget=budget,
        max_parts=max_parts,
    )
    looking = dry_run or test_to is not None  # the real campaign is not created
    prepared = app.prepare(settings, request, dry_run=looking)
    if prepared.at is not None:  # what --at was taken to mean, always (a person checks it)
        err.print(escape(prepared.at.echo()))
    if prepared.loader.notice:
        err.print(prepared.loader.notice)
    with _loading_bar(transient=True) as bar:  # a refusal's line stays the only one
        task = bar.add_task("checking", total=None)
        preflight = app.preflight(
            settings,
            prepared,
            refuse=not looking,
            on_rows=lambda n: bar.advance(task, n),
            offline=dry_run and test_to is None,
        )
        rows = prepared.loader.stats.rows
        bar.update(task, total=rows, completed=rows)
    asking = not looking and not yes and sys.stdin.isatty()  # a terminal: the question, after the summary
    if not as_json or asking:
        err.print(render_summary(preflight))
        if prepared.start is not None and test_to is None:
            err.print(render_start(prepared.start))
    if test_to is not None:
        _test_send(settings, prepared, test_to, wait=wait, as_json=as_json)
        return
    starts = prepared.start.question() if prepared.start is not None else None
    if not dry_run and not confirm(err, assume_yes=yes, interactive=asking, starts=starts):
        err.print("not sent; nothing stored")
        raise typer.Exit(1)
    with _loading_bar() as bar:
        task = bar.add_task("storing" if not dry_run else "planning", total=preflight.recipients)
        advance = lambda n: bar.advance(task, n)  # noqa: E731
        summary = app.dry_run(prepared, advance) if dry_run else app.create(prepared, advance)

    store = prepared.store
    reports_here = False  # sent here, and nothing else will collect its delivery reports
    if store is not None and summary.campaign is not None and summary.recipients:
        mode = app.mode_for(settings, store)
        for line in notices.after_create(settings, store, summary, mode):
            err.print(line)
        result = start_and_show(settings, mode, summary.campaign, follow=wait)
        summary = dataclasses.replace(summary, state=result.state)
        reports_here = mode.sends_here and not wait and result.state == CampaignState.RUNNING
    if as_json:
        emit(send_json(summary, preflight, prepared.start))
    else:
        head = "dry run, nothing stored" if summary.campaign is None else f"campaign {summary.campaign}"
        out.print(
            f"{head}: {plural(summary.recipients, 'recipient')}, {summary.rejected} rejected "
            f"(see {summary.rejects_file}), {plural(summary.chunks, 'chunk')}, "
            f"{plural(summary.parts, 'SMS part')}; state {summary.state}",
        )
    if reports_here:
        err.print(notices.reports_hint(summary.campaign or 0))
    if wait and store is not None and summary.campaign is not None:
        followed_exit(store, summary.campaign)


def _message_from(path: Path) -> str:
    """`--message-file`'s text (UTF-8, with or without a BOM); BadInput naming what is wrong and the fix."""
    where = f"--message-file {path}"
    try:
        return path.read_text(encoding="utf-8-sig")
    except FileNotFoundError:
        raise BadInput(f"{where}: no such file; check the path") from None
    except IsADirectoryError:
        raise BadInput(f"{where}: is a folder; give the text file in it") from None
    except UnicodeDecodeError:
        raise BadInput(
            f"{where}: not UTF-8 text; save it as UTF-8 (in Notepad: Save as, Encoding UTF-8)"
        ) from None
    except OSError as exc:
        raise BadInput(f"{where}: cannot be read ({exc.strerror or 'an input/output error'})") from None


def _test_send(
    settings: AppSettings, prepared: app.Prepared, phones: str, *, wait: bool, as_json: bool
) -> None:
    """`send --test-to`: the previews to the test numbers, one small test campaign each; what happened."""
    done = app.test_send(settings, prepared, phones.split(","), follow=wait)
    store = prepared.store
    assert store is not None
    rows = []
    for created, result in zip(done.campaigns, done.results, strict=True):
        view = store.campaign(created.campaign or 0)
        assert view is not None
        rows.append({"campaign": view.id, "name": view.name, "state": result.state, "counts": view.counts})
    if as_json:
        emit(
            {
                "test": True,
                "phones": done.phones,
                "campaigns": rows,
                **(prepared.summary.to_json() if prepared.summary else {}),
            }
        )
        return
    to = ", ".join(local_phone(p) for p in done.phones)
    for row in rows:
        counts = ", ".join(f"{k} {v}" for k, v in sorted(row["counts"].items()))
        out.print(
            f"test campaign {row['campaign']} ({row['name']}) to {to}: {row['state']}; {counts}",
        )
    out.print("the campaign itself was not created; send again without --test-to to create it")


@cli.command()
def run(
    campaign_id: CampaignId,
    wait: Annotated[bool, typer.Option("--wait", help="also follow delivery reports to the end")] = False,
) -> None:
    """Send what is left of a running campaign (after a crash or Ctrl-C), or wait for a scheduled one's time."""
    settings = cli_settings()
    store, view = app.campaign_view(settings, campaign_id)
    state = view.state
    if view.state in (CampaignState.RUNNING, CampaignState.SCHEDULED):
        mode = app.mode_for(settings, store)
        if mode.sends_here and view.state == CampaignState.SCHEDULED and view.send_at is not None:
            err.print(notices.waiting_here(settings, campaign_id, view.send_at))
        state = start_and_show(settings, mode, campaign_id, follow=wait).state
    out.print(f"campaign {campaign_id}: {state}")
    if wait:
        followed_exit(store, campaign_id)
