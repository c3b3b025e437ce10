"""The `smsdispatch` command (shared/DESIGN.md, "The user's interface": a contract).

Exit codes: 0 ok; 2 bad input or usage, with one clear line on stderr; 1 anything else.
Commands decide nothing themselves: they parse, call `campaigns`/`workers`/the runner, and print.
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Annotated, Any

import click
import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from campaigns.load import LoadError, RecipientLoader
from campaigns.plan import PlannedBlock, batch_size, plan
from campaigns.progress import RATE_WINDOW, CampaignProgress, read_progress
from campaigns.store import CampaignSpec, EmptyCampaign, Store, utcnow
from campaigns.text import Template, TemplateError, fold_arabic
from campaigns.windows import TEHRAN, WhenError, parse_when, parse_window
from dispatcher.config import load_config
from workers.deps import ProviderPool, WorkerDeps
from workers.errors import ConfigurationError, ProviderError
from workers.providers import NAMES, client_class
from workers.settings import DispatchSettings

app = typer.Typer(
    add_completion=False,
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    help="Bulk SMS campaigns for Iranian providers.",
)
providers_app = typer.Typer(no_args_is_help=True, help="Provider accounts.")
app.add_typer(providers_app, name="providers")

out = Console()
err = Console(stderr=True)


class BadInput(Exception):
    """Bad input or usage: one line on stderr, exit 2."""


BAD_INPUT = (BadInput, LoadError, TemplateError, ConfigurationError, WhenError, EmptyCampaign)


def _settings() -> DispatchSettings:
    load_config()
    return DispatchSettings.from_env()


def _store(settings: DispatchSettings) -> Store:
    store = Store.from_url(settings.database_url)
    store.migrate()
    return store


def _deps(settings: DispatchSettings, store: Store) -> WorkerDeps:
    return WorkerDeps(store=store, providers=ProviderPool(), settings=settings)


def _progress() -> Progress:
    return Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=err,
        transient=False,
    )


def _emit(data: dict[str, Any] | list[Any], as_json: bool, human: str | None = None) -> None:
    if as_json:
        print(json.dumps(data, ensure_ascii=False, default=str))
    elif human is not None:
        out.print(human)


def _counted(blocks: Iterator[PlannedBlock], on_block) -> Iterator[PlannedBlock]:  # noqa: ANN001
    for block in blocks:
        on_block(len(block.recipients))
        yield block


@app.command()
def send(
    file: Annotated[Path, typer.Argument(help="CSV or .xlsx of recipients")],
    provider: Annotated[str, typer.Option("--provider", "-p", help=f"one of {', '.join(NAMES)}")],
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
        bool, typer.Option("--dry-run", help="load and plan only; send nothing, store nothing")
    ] = False,
    wait: Annotated[
        bool, typer.Option("--wait", help="also follow delivery reports until every recipient is final")
    ] = False,
    as_json: Annotated[bool, typer.Option("--json", help="print one JSON object")] = False,
) -> None:
    """Load, plan and send a campaign (in embedded mode the sending runs here)."""
    settings = _settings()
    if provider not in NAMES:
        raise BadInput(f"unknown provider {provider!r}; choose one of {', '.join(NAMES)}")
    if on_unknown not in ("hold", "resend"):
        raise BadInput(f"--on-unknown {on_unknown!r}: choose hold or resend")
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
    template = Template(fold_arabic(message.strip()))
    send_at = parse_when(at) if at else None
    window = window or settings.send_window or None
    window_obj = parse_window(window) if window and window.strip().lower() != "any" else None
    cls = client_class(provider)
    client = cls(cls.load_settings())  # raises ConfigurationError naming a missing credential
    line = sender or client.settings.sender
    if not file.exists():
        raise BadInput(f"{file}: no such file; check the path")
    rejects_path = rejects or file.with_name(file.stem + ".rejects.csv")
    store = None if dry_run else _store(settings)
    loader = RecipientLoader(
        file, column=column, rejects_path=rejects_path, suppressed=store.suppressed() if store else ()
    )
    template.validate(loader.block_columns)  # the columns a block really has: row, phone (E.164), the others
    extra = [c for c in loader.block_columns if c not in ("row", "phone")]
    batch = batch_size(
        client.settings.batch,
        personalised=not template.is_static,
        provider_personalised=client.capabilities.personalised,
    )
    planned = plan(loader.blocks(), template, batch, extra)

    with _progress() as bar:
        task = bar.add_task("loading", total=None)
        counted = _counted(planned, lambda n: bar.advance(task, n))
        if dry_run:
            chunks = parts = recipients = 0
            for block in counted:
                recipients += len(block.recipients)
                chunks += len(block.chunks)
                parts += int(block.chunks["parts"].sum())
            campaign_id, state = None, "dry-run"
        else:
            assert store is not None
            spec = CampaignSpec(
                name=name or file.stem,
                provider=provider,
                account=client.settings.account_key,
                sender=line,
                message=template.static_text if template.is_static else template.text,
                personalised=not template.is_static,
                source_file=str(file),
                rejects_file=str(rejects_path),
                columns=extra,
                on_unknown=on_unknown,
                send_at=send_at,
                window=str(window_obj) if window_obj else None,
            )
            campaign_id = store.create_campaign(spec, counted, rejected=lambda: loader.stats.rejected)
            view = store.campaign(campaign_id)
            assert view is not None
            recipients, chunks, parts, state = view.recipients, view.chunks, view.parts, view.state
        bar.update(task, total=loader.stats.rows, completed=loader.stats.rows)

    summary = {
        "campaign": campaign_id,
        "recipients": recipients,
        "rejected": loader.stats.rejected,
        "chunks": chunks,
        "parts": parts,
        "rejects_file": str(rejects_path),
        "state": state,
    }
    if not dry_run and recipients and settings.broker_url:
        # Distributed: the rows are committed; now ring the bell. Beat publishes scheduled ones when due.
        from workers.dispatch import publish_campaign
        from workers.tasks import send_chunk_task

        if state == "running":
            publish_campaign(store, campaign_id, send_chunk_task)
        if wait:  # the workers send; this process follows them in the database
            summary["state"] = _follow(store, campaign_id, distributed=True).state
    elif not dry_run and recipients and state == "scheduled" and send_at is not None:
        where = "`smsdispatch serve` starts it" if _service(store) else "sending starts here then"
        err.print(
            f"campaign {campaign_id} is scheduled for {send_at.astimezone(TEHRAN):%Y-%m-%d %H:%M} Tehran time; {where}",
            soft_wrap=True,
        )
    if not dry_run and recipients and not settings.broker_url and state in ("running", "scheduled"):
        assert store is not None and campaign_id is not None
        summary["state"] = _run_embedded(store, settings, campaign_id, follow=wait, role="send")
    _emit(
        summary,
        as_json,
        f"campaign {campaign_id}: {recipients} recipients, {loader.stats.rejected} rejected (see {rejects_path}), "
        f"{chunks} chunks, {parts} SMS parts; state {summary['state']}",
    )
    if wait and store is not None and campaign_id is not None:
        _followed_exit(campaign_id, *store.campaign_state(campaign_id))


def _service(store: Store):  # noqa: ANN202 - Heartbeat | None
    """A live `smsdispatch serve` on this database (campaigns.heartbeats.live_service), or None."""
    from campaigns.heartbeats import live_service

    return live_service(store.engine)


def _run_embedded(
    store: Store, settings: DispatchSettings, campaign_id: int, *, follow: bool, role: str = "run"
) -> str:
    """Send here (with a heartbeat), or hand the campaign to a live `serve` and follow it with --wait.

    Ctrl-C: the chunks in flight finish, then one line says the state left and the command that goes on."""
    from campaigns.heartbeats import Beating
    from dispatcher.runner import LocalRunner
    from dispatcher.watch import ProgressBars

    service = _service(store)
    if service is not None:
        err.print(
            f"campaign {campaign_id} handed to `smsdispatch serve` (pid {service.pid} on {service.host})",
            soft_wrap=True,
        )
        return _follow(store, campaign_id).state if follow else store.campaign_state(campaign_id)[0]
    runner = LocalRunner(_deps(settings, store))
    try:
        with Beating(store.engine, role, campaign_id), ProgressBars(err, delivery=follow) as bars:
            refresh = bars.refresher(store, campaign_id)
            refresh(force=True)
            result = runner.send(campaign_id, progress=refresh)
            refresh(force=True)
            if result.state == "paused" and not follow:  # with --wait, _followed_exit says it
                err.print(
                    f"campaign {campaign_id} paused: {result.reason}. Fix the cause, then: smsdispatch resume {campaign_id}"
                )
            if follow and result.state == "running":
                runner.poll(campaign_id=campaign_id, progress=refresh)
                refresh(force=True)
    except KeyboardInterrupt:
        err.print(_interrupted(store, campaign_id, wait=follow), soft_wrap=True)
        raise typer.Exit(130) from None
    return store.campaign_state(campaign_id)[0]


def _interrupted(store: Store, campaign_id: int, *, wait: bool) -> str:
    from dispatcher.interrupt import interrupted_line

    view, progress = read_progress(store, campaign_id, utcnow())
    assert view is not None and progress is not None
    return interrupted_line(
        campaign_id,
        view.state,
        sent=progress.sent,
        total=progress.total,
        now=utcnow(),
        wait=wait,
        reason=view.state_reason,
        send_at=view.send_at,
        service=_service(store),
    )


def _follow(
    store: Store, campaign_id: int, interval: float = 1.0, *, distributed: bool = False
) -> CampaignProgress:
    """Distributed `send --wait` and `watch`: two bars from the database until the campaign stops moving.

    Ctrl-C stops watching only; the campaign goes on in the workers.
    """
    from dispatcher.watch import ProgressBars, follow

    try:
        err.print(f"following campaign {campaign_id}; Ctrl-C stops following, not the campaign")
        with ProgressBars(err) as bars:
            return follow(store, campaign_id, bars, interval=interval, distributed=distributed)
    except KeyboardInterrupt:
        err.print(
            f"stopped watching; campaign {campaign_id} goes on. Follow it again: smsdispatch watch {campaign_id}"
        )
        raise typer.Exit(130) from None


def _followed_exit(campaign_id: int, state: str, reason: str | None) -> None:
    """After --wait or watch: exit 0 only when the campaign completed; paused, cancelled or failed (or
    still running): the reason on stderr, and exit 1."""
    if state == "completed":
        return
    why = (reason or "no reason recorded").rstrip(".")
    if state == "paused":
        err.print(
            f"campaign {campaign_id} paused: {why}. Fix the cause, then: smsdispatch resume {campaign_id}",
            soft_wrap=True,
        )
    else:
        err.print(f"campaign {campaign_id} {state}: {why}", soft_wrap=True)
    raise typer.Exit(1)


def _campaign_or_fail(store: Store, campaign_id: int):  # noqa: ANN202
    view = store.campaign(campaign_id)
    if view is None:
        raise BadInput(f"no campaign {campaign_id}; see smsdispatch list")
    return view


@app.command()
def status(
    campaign_id: Annotated[int, typer.Argument(metavar="ID")],
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """Counts per state, progress, rate, ETA, and what it is waiting for (pause reason, schedule, window)."""
    from dispatcher.sender import read_shown

    settings = _settings()
    store = _store(settings)
    view, progress, live = read_shown(store, campaign_id, utcnow(), distributed=bool(settings.broker_url))
    if view is None or progress is None or live is None:
        raise BadInput(f"no campaign {campaign_id}; see smsdispatch list")
    data = {
        "campaign": view.id,
        "name": view.name,
        "provider": view.provider,
        "state": view.state,
        "reason": view.state_reason,
        "recipients": view.recipients,
        "rejected": view.rejected,
        "counts": view.counts,
        "chunks": view.chunk_counts,
        "send_at": view.send_at.isoformat() if view.send_at else None,
        "window": view.window,
        "created_at": view.created_at.isoformat(),
        "started_at": view.started_at.isoformat() if view.started_at else None,
        "finished_at": view.finished_at.isoformat() if view.finished_at else None,
        **progress.as_json(),
        "sender": live.sender_json(),
    }
    if as_json:
        _emit(data, True)
        return
    table = Table(title=f"campaign {view.id} ({view.name}) via {view.provider}: {view.state}")
    table.add_column("state")
    table.add_column("recipients", justify="right")
    for state, n in sorted(view.counts.items()):
        table.add_row(state, str(n))
    out.print(table)
    pct = 100 / progress.total if progress.total else 0.0
    out.print(f"sent:    {progress.sent} of {progress.total} ({progress.sent * pct:.1f}%)")
    out.print(f"final:   {progress.final} of {progress.total} ({progress.final * pct:.1f}%)")
    if progress.rate is not None:
        out.print(
            f"rate:    {progress.rate:.2f} recipients/s over the last {RATE_WINDOW.total_seconds() / 60:g} minutes"
        )
    waiting = progress.waiting
    if not progress.finished and (waiting is None or waiting.reason in ("retrying", "reconciling")):
        out.print(f"ETA:     {progress.eta_text}")
    if waiting is not None and waiting.reason != "paused":  # a pause has its reason line below
        out.print(f"waiting: {waiting.detail}")
    if live.detail and (waiting is None or waiting.reason != "unattended"):
        out.print(f"sender:  {live.detail}", soft_wrap=True)
    if view.state_reason:
        out.print(f"reason: {view.state_reason}")
    if view.state == "paused":
        out.print(f"to continue: smsdispatch resume {view.id}")


@app.command()
def watch(
    campaign_id: Annotated[int, typer.Argument(metavar="ID")],
    interval: Annotated[
        float, typer.Option("--interval", help="seconds between looks at the database")
    ] = 1.0,
) -> None:
    """Follow a campaign with two bars (sending, delivery) until it completes, stops or pauses; Ctrl-C leaves it running."""
    if interval <= 0:
        raise BadInput("--interval is a number of seconds above 0")
    settings = _settings()
    store = _store(settings)
    _campaign_or_fail(store, campaign_id)
    p = _follow(store, campaign_id, interval, distributed=bool(settings.broker_url))
    out.print(f"campaign {campaign_id}: {p.state}; {p.sent} sent, {p.final} final of {p.total}")
    _followed_exit(campaign_id, p.state, p.reason)


@app.command()
def report(
    campaign_id: Annotated[int, typer.Argument(metavar="ID")],
    out_path: Annotated[Path, typer.Option("--out", help="report file, .csv or .xlsx")],
    chart: Annotated[
        Path | None,
        typer.Option(
            "--chart", help="also draw delivery over time by state (.png or .svg; needs matplotlib)"
        ),
    ] = None,
) -> None:
    """One row per recipient: phone, state, ids, codes, error, times, then the CSV's own columns."""
    import importlib.util

    from dispatcher.reports import write_report

    if out_path.suffix.lower() not in (".csv", ".xlsx"):
        raise BadInput(f"--out {out_path}: the report is written as .csv or .xlsx; change the file name")
    if chart is not None and chart.suffix.lower() not in (".png", ".svg"):
        raise BadInput(f"--chart {chart}: the chart is drawn as .png or .svg; change the file name")
    if chart is not None and importlib.util.find_spec("matplotlib") is None:
        raise BadInput("--chart needs matplotlib: pip install 'smsdispatch[chart]' (or leave --chart out)")
    store = _store(_settings())
    view = _campaign_or_fail(store, campaign_id)
    counts = write_report(store, campaign_id, out_path)
    out.print(
        f"{sum(counts.values())} recipients written to {out_path}: "
        + ", ".join(f"{k} {v}" for k, v in sorted(counts.items()))
    )
    if chart is not None:
        from dispatcher.chart import delivery_timeline, draw_delivery_chart, resolution_for

        start = view.started_at or view.created_at
        step = resolution_for(start, view.finished_at or utcnow())
        timeline = delivery_timeline(store.timeline_rows(campaign_id), start, step)
        name = f" ({view.name})" if view.name.isascii() else ""
        draw_delivery_chart(
            timeline, chart, f"Campaign {view.id}{name} via {view.provider}: delivery over time"
        )
        out.print(f"chart of delivery over time written to {chart}")


@app.command("list")
def list_(as_json: Annotated[bool, typer.Option("--json")] = False) -> None:
    """Every campaign in the store."""
    from dispatcher.sender import liveness_of_view

    settings = _settings()
    store = _store(settings)
    now, distributed = utcnow(), bool(settings.broker_url)
    rows = []
    for v in store.campaigns():
        live = (
            liveness_of_view(store, v, now, distributed=distributed)
            if v.state in ("running", "scheduled")
            else None
        )
        rows.append(
            {
                "campaign": v.id,
                "name": v.name,
                "provider": v.provider,
                "state": v.state,
                "recipients": v.recipients,
                "created_at": v.created_at.isoformat(),
                "sender": live.sender_json() if live else None,
                "sending": live.detail if live else None,
            }
        )
    if as_json:
        _emit(rows, True)
        return
    table = Table("id", "name", "provider", "state", "recipients", "created", "sending")
    for r in rows:
        table.add_row(
            str(r["campaign"]),
            r["name"],
            r["provider"],
            r["state"],
            str(r["recipients"]),
            r["created_at"][:19],
            r["sending"] or "",
        )
    out.print(table)


def _control(campaign_id: int, verb: str) -> None:
    settings = _settings()
    store = _store(settings)
    view = _campaign_or_fail(store, campaign_id)
    ok = {"pause": store.pause, "resume": store.resume, "cancel": store.cancel}[verb](campaign_id)
    if not ok:
        raise BadInput(f"campaign {campaign_id} is {view.state}; it cannot be {verb}d")
    out.print(f"campaign {campaign_id}: {store.campaign(campaign_id).state}")  # type: ignore[union-attr]
    if verb == "resume" and settings.broker_url:
        # Its queued chunks' messages were dropped while it was paused: ring again now.
        from workers.dispatch import publish_campaign
        from workers.tasks import send_chunk_task

        publish_campaign(store, campaign_id, send_chunk_task)
    elif verb == "resume":  # embedded: send the rest here, or hand it to a live `serve`
        _run_embedded(store, settings, campaign_id, follow=False, role="run")


@app.command()
def pause(campaign_id: Annotated[int, typer.Argument(metavar="ID")]) -> None:
    """Stop sending at the next chunk."""
    _control(campaign_id, "pause")


@app.command()
def resume(campaign_id: Annotated[int, typer.Argument(metavar="ID")]) -> None:
    """Continue a paused campaign where it stopped."""
    _control(campaign_id, "resume")


@app.command()
def cancel(campaign_id: Annotated[int, typer.Argument(metavar="ID")]) -> None:
    """Cancel: unsent recipients become `cancelled`; a chunk already at the provider finishes."""
    _control(campaign_id, "cancel")


@app.command()
def run(
    campaign_id: Annotated[int, typer.Argument(metavar="ID")],
    wait: Annotated[bool, typer.Option("--wait")] = False,
) -> None:
    """Embedded mode: send what is left of a running campaign (after a crash), or wait for a scheduled one's time."""
    settings = _settings()
    store = _store(settings)
    view = _campaign_or_fail(store, campaign_id)
    from campaigns.liveness import clock

    if view.state == "scheduled" and view.send_at is not None and _service(store) is None:
        err.print(
            f"campaign {campaign_id} is scheduled for {clock(view.send_at, utcnow())} Tehran time; "
            "waiting for it here (Ctrl-C stops waiting; `smsdispatch serve` would start it without a terminal)",
            soft_wrap=True,
        )
    state = (
        _run_embedded(store, settings, campaign_id, follow=wait)
        if view.state in ("running", "scheduled")
        else view.state
    )
    out.print(f"campaign {campaign_id}: {state}")
    if wait:
        _followed_exit(campaign_id, *store.campaign_state(campaign_id))


@app.command()
def serve(
    threads: Annotated[int, typer.Option("--threads", help="send threads per campaign")] = 8,
    tick: Annotated[float, typer.Option("--tick", help="seconds between looks at the store")] = 1.0,
) -> None:
    """Embedded mode: one long-running process that starts scheduled campaigns, picks up interrupted ones,
    polls delivery and collects opt-outs. SIGTERM or Ctrl-C finishes the chunks in flight and exits 0."""
    import faulthandler
    import logging
    import signal
    import threading

    from campaigns.liveness import HeartbeatSettings
    from dispatcher.eventlog import DedupHandler
    from dispatcher.serve import Service

    settings = _settings()
    if settings.broker_url:
        raise BadInput(
            "SMSDISPATCH_BROKER_URL is set: in distributed mode the workers and beat do this; unset it"
        )
    if threads < 1 or tick <= 0:
        raise BadInput("--threads is a whole number above 0 and --tick a number of seconds above 0")
    try:
        heartbeat = HeartbeatSettings.from_env(os.environ)
    except ValueError as exc:
        raise BadInput(str(exc)) from None
    store = _store(settings)
    root = logging.getLogger()
    root.handlers[:] = [DedupHandler(sys.stderr)]
    root.setLevel(logging.INFO)
    for noisy in ("httpx", "httpcore", "urllib3"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    stop = threading.Event()

    def _stop(signum: int, _frame: object) -> None:
        if not stop.is_set():
            logging.getLogger("dispatcher.serve").info(
                "%s: finishing the chunks in flight, then stopping", signal.Signals(signum).name
            )
        stop.set()

    signal.signal(signal.SIGTERM, _stop)
    signal.signal(signal.SIGINT, _stop)
    faulthandler.register(signal.SIGUSR1)  # `kill -USR1 PID`: every thread's stack on stderr, for a hang
    code = Service(_deps(settings, store), heartbeat=heartbeat, tick=tick, threads=threads).run(stop)
    logging.shutdown()
    raise typer.Exit(code)


@app.command()
def poll(
    until_done: Annotated[
        bool, typer.Option("--until-done", help="keep polling until every recipient is final")
    ] = False,
    timeout: Annotated[
        float | None, typer.Option("--timeout", help="give up after this many seconds")
    ] = None,
) -> None:
    """Run delivery-status polling now (embedded mode; workers do it on their own)."""
    from dispatcher.runner import LocalRunner

    settings = _settings()
    store = _store(settings)
    runner = LocalRunner(_deps(settings, store))
    settled = runner.poll(until_done=until_done, timeout=timeout)
    if until_done and not settled:
        err.print("timed out with recipients still waiting for a delivery report")
        raise typer.Exit(1)
    out.print("all recipients have a final state" if settled else "polled once")


@providers_app.command("check")
def providers_check(as_json: Annotated[bool, typer.Option("--json")] = False) -> None:
    """Credentials and balance of every configured provider."""
    load_config()
    rows = []
    for name in NAMES:
        cls = client_class(name)
        try:
            client = cls(cls.load_settings())
        except ConfigurationError as exc:
            rows.append({"provider": name, "configured": False, "ok": False, "detail": str(exc)})
            continue
        if not client.capabilities.balance:
            rows.append(
                {
                    "provider": name,
                    "configured": True,
                    "ok": True,
                    "detail": "no balance call documented; credentials not checked",
                }
            )
            continue
        try:
            bal = client.balance()
            rows.append(
                {
                    "provider": name,
                    "configured": True,
                    "ok": True,
                    "balance": bal.amount,
                    "unit": bal.unit,
                    "detail": "",
                }
            )
        except (ProviderError, NotImplementedError) as exc:
            rows.append(
                {"provider": name, "configured": True, "ok": False, "detail": str(exc) or type(exc).__name__}
            )
    if as_json:
        _emit(rows, True)
    else:
        table = Table("provider", "configured", "ok", "balance", "detail")
        for r in rows:
            bal = f"{r['balance']:g} {r['unit']}" if "balance" in r else ""
            table.add_row(
                r["provider"],
                "yes" if r["configured"] else "no",
                "yes" if r["ok"] else "no",
                bal,
                r["detail"],
            )
        out.print(table)
    if any(r["configured"] and not r["ok"] for r in rows):
        raise typer.Exit(1)


# ---- opt-outs: the suppression list -------------------------------------------------------------------
optouts_app = typer.Typer(help="The suppression list: numbers that opted out (the loader rejects them).")
app.add_typer(optouts_app, name="optouts")


def _suppression_rows(store: Store) -> list[dict[str, str]]:
    return [
        {"phone": s.phone, "reason": s.reason, "created_at": s.created_at.isoformat()}
        for s in store.suppressions()
    ]


def _phones_or_fail(values: list[str]) -> list[str]:
    """Every value as E.164, or bad input naming the first that is not an Iranian mobile."""
    from campaigns.normalise import normalise_one

    phones = []
    for value in values:
        phone, why = normalise_one(value)
        if phone is None:
            raise BadInput(f"{value!r} is {why}; give Iranian mobile numbers such as 09121234567")
        phones.append(phone)
    return phones


@optouts_app.callback(invoke_without_command=True)
def optouts(
    ctx: typer.Context,
    collect: Annotated[
        bool, typer.Option("--collect", help="read the providers' inboxes for opt-outs now")
    ] = False,
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """List the suppression list; --collect first reads the inboxes for opt-out replies."""
    if ctx.invoked_subcommand is not None:
        return
    from workers.operations.optout import collect_optouts, inbox_clients

    settings = _settings()
    store = _store(settings)
    deps = _deps(settings, store)
    if collect and not inbox_clients(deps):
        inboxes = ", ".join(n for n in NAMES if client_class(n).capabilities.inbox)
        err.print(f"no provider with an inbox is configured ({inboxes}): nothing to collect")
    added = collect_optouts(deps) if collect else None
    rows = _suppression_rows(store)
    if as_json:
        _emit({"added": added, "suppressions": rows}, True)
        return
    if added is not None:
        err.print(f"{added} new opt-out{'s' if added != 1 else ''} collected")
    table = Table("phone", "reason", "since")
    for r in rows:
        table.add_row(r["phone"], r["reason"], r["created_at"][:19])
    out.print(table)
    out.print(f"{len(rows)} suppressed number{'s' if len(rows) != 1 else ''}")


@optouts_app.command("add")
def optouts_add(
    phones: Annotated[list[str], typer.Argument(metavar="PHONE...")],
    reason: Annotated[str, typer.Option("--reason", help="why (kept with the number)")] = "added by hand",
) -> None:
    """Suppress numbers by hand (an opt-out received by phone, e-mail, in the shop)."""
    numbers = _phones_or_fail(phones)  # all checked before anything is written
    settings = _settings()
    store = _store(settings)
    text = reason.strip() or "added by hand"
    added = store.suppress(numbers, text if text.startswith("opted out") else f"opted out: {text}")
    out.print(f"{added} added, {len(set(numbers)) - added} already suppressed")


@optouts_app.command("remove")
def optouts_remove(phones: Annotated[list[str], typer.Argument(metavar="PHONE...")]) -> None:
    """Take numbers off the suppression list (they asked to hear from you again)."""
    numbers = _phones_or_fail(phones)
    settings = _settings()
    removed = _store(settings).unsuppress(numbers)
    out.print(f"{removed} removed, {len(set(numbers)) - removed} were not suppressed")


@app.command()
def sandbox(
    host: Annotated[str, typer.Option("--host")] = "127.0.0.1",
    port: Annotated[int, typer.Option("--port")] = 8700,
    latency_ms: Annotated[float, typer.Option("--latency-ms")] = 0.0,
    fail_rate: Annotated[
        float, typer.Option("--fail-rate", help="share of sends answered with a transient code")
    ] = 0.0,
    seed: Annotated[int, typer.Option("--seed")] = 0,
    final_after: Annotated[
        float, typer.Option("--final-after", help="seconds before a final delivery state")
    ] = 1.0,
) -> None:
    """Serve the four providers' protocols on loopback (for tests, demos and dry runs)."""
    from dispatcher.sandbox.core import SandboxState, sandbox_env
    from dispatcher.sandbox.server import serve_forever

    if not 0 <= fail_rate <= 1:
        raise BadInput("--fail-rate is a share between 0 and 1")
    state = SandboxState(seed=seed, latency_ms=latency_ms, fail_rate=fail_rate, final_after_s=final_after)
    base = f"http://{host}:{port}"
    err.print(f"sandbox on {base}; point the clients at it with:")
    for key, value in sandbox_env(base).items():
        err.print(f"  export {key}={value}")
    serve_forever(state, host, port)


@app.command(context_settings={"allow_extra_args": True, "ignore_unknown_options": True})
def worker(ctx: typer.Context) -> None:
    """Distributed mode: a Celery worker for sends and housekeeping (extra options go to celery worker)."""
    settings = _settings()
    if not settings.broker_url:
        raise BadInput("set SMSDISPATCH_BROKER_URL (Redis or RabbitMQ) to run a worker")
    _store(settings)  # the schema is there before the first task
    from workers.celery_app import CONTROL_QUEUE, SEND_QUEUE
    from workers.tasks import app as celery_app

    args = [
        "worker",
        "-Q",
        f"{SEND_QUEUE},{CONTROL_QUEUE}",
        "-P",
        "threads",
        "-c",
        "8",
        "--without-gossip",
        "--without-mingle",
        "--loglevel",
        "INFO",
    ]
    celery_app.worker_main([*args, *ctx.args])


@app.command(context_settings={"allow_extra_args": True, "ignore_unknown_options": True})
def beat(ctx: typer.Context) -> None:
    """Distributed mode: the one scheduler (releases scheduled work, sweeps, polls). Run exactly one."""
    settings = _settings()
    if not settings.broker_url:
        raise BadInput("set SMSDISPATCH_BROKER_URL (Redis or RabbitMQ) to run beat")
    _store(settings)
    from workers.tasks import app as celery_app

    celery_app.start(["beat", "--loglevel", "INFO", *ctx.args])


@app.command()
def demo(
    recipients: Annotated[int, typer.Option("--recipients")] = 2000,
    folder: Annotated[
        Path, typer.Option("--folder", help="where the demo writes its CSV, database and report")
    ] = Path("smsdispatch-demo"),
    provider: Annotated[str, typer.Option("--provider")] = "ghasedak",
) -> None:
    """A complete campaign against an in-process sandbox, from a generated CSV to the final report."""
    from dispatcher.demo import run_demo

    if provider not in NAMES:
        raise BadInput(f"unknown provider {provider!r}; choose one of {', '.join(NAMES)}")
    run_demo(folder, recipients, provider, out, err)


def main(argv: list[str] | None = None) -> None:
    try:
        rv = app(args=argv, standalone_mode=False, prog_name="smsdispatch")
    except click.exceptions.UsageError as exc:
        print(f"error: {exc.format_message()}", file=sys.stderr)
        sys.exit(2)
    except click.exceptions.Exit as exc:
        sys.exit(exc.exit_code)
    except click.exceptions.Abort:
        sys.exit(1)
    except BAD_INPUT as exc:
        print(f"error: {exc}", file=sys.stderr)
        sys.exit(2)
    except KeyboardInterrupt:
        sys.exit(130)
    except Exception as exc:  # noqa: BLE001 - one line, not a traceback; SMSDISPATCH_DEBUG=1 shows it
        if os.environ.get("SMSDISPATCH_DEBUG"):
            raise
        print(f"error: {type(exc).__name__}: {exc}", file=sys.stderr)
        sys.exit(1)
    sys.exit(rv if isinstance(rv, int) else 0)
