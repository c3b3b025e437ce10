"""Running the parts: `serve` and `poll` (embedded mode), `worker`, `beat` (distributed mode), `sandbox`
and `demo`."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Annotated

import typer

from dispatcher import app
from dispatcher.app import BadInput
from dispatcher.cli.common import cli, cli_settings, err, out, plural

MetricsPort = Annotated[
    int | None,
    typer.Option(
        "--metrics-port", help="serve /metrics, /healthz and /readyz on this port (0: any free one)"
    ),
]
MetricsHost = Annotated[
    str, typer.Option("--metrics-host", help="address of the metrics port (default loopback only)")
]


@cli.command()
def serve(
    threads: Annotated[int, typer.Option("--threads", help="send threads per campaign")] = 8,
    tick: Annotated[float, typer.Option("--tick", help="seconds between looks at the store")] = 1.0,
    metrics_port: MetricsPort = None,
    metrics_host: MetricsHost = "127.0.0.1",
) -> None:
    """Embedded mode: one long-running process that starts scheduled campaigns, picks up interrupted ones,
    polls delivery and collects opt-outs. SIGTERM or Ctrl-C finishes the chunks in flight and exits 0."""
    import faulthandler
    import logging
    import signal
    import sys
    import threading

    from dispatcher.app.modes import worker_deps
    from dispatcher.engine.eventlog import DedupHandler
    from dispatcher.engine.serve import Service

    settings = cli_settings()
    if settings.dispatch.broker_url:
        raise BadInput(
            "SMSDISPATCH_BROKER_URL is set: in distributed mode the workers and beat do this; unset it"
        )
    if threads < 1 or tick <= 0:
        raise BadInput("--threads is a whole number above 0 and --tick a number of seconds above 0")
    store = app.open_store(settings)
    assert store is not None
    from campaigns.clock import utcnow
    from campaigns.store.heartbeats import live_service

    if (other := live_service(store.engine, stale=settings.heartbeat.stale)) is not None:
        # a warning, not a refusal: a serve killed a moment ago looks alive until its beat goes stale
        err.print(
            f"warning: a `smsdispatch serve` was alive on this database {int((utcnow() - other.seen_at).total_seconds())} s "
            f"ago (pid {other.pid} on {other.host}); one is enough (two share the work, never a send)",
            soft_wrap=True,
        )
    from workers.logs import configure

    configure("serve", DedupHandler(sys.stderr))  # or JSON lines (SMSDISPATCH_LOG_FORMAT=json)
    if metrics_port is not None:
        from dispatcher.app.monitoring import start_monitoring

        start_monitoring(settings, metrics_host, metrics_port, store_gauges=True)
    stop = threading.Event()

    def _stop(signum: int, _frame: object) -> None:
        if not stop.is_set():
            logging.getLogger("dispatcher.engine.serve").info(
                "%s: finishing the chunks in flight, then stopping", signal.Signals(signum).name
            )
        stop.set()

    signal.signal(signal.SIGTERM, _stop)
    signal.signal(signal.SIGINT, _stop)
    faulthandler.register(signal.SIGUSR1)  # `kill -USR1 PID`: every thread's stack on stderr, for a hang
    service = Service(worker_deps(settings, store), heartbeat=settings.heartbeat, tick=tick, threads=threads)
    code = service.run(stop)
    logging.shutdown()
    raise typer.Exit(code)


@cli.command()
def poll(
    until_done: Annotated[
        bool, typer.Option("--until-done", help="keep polling until every recipient is final")
    ] = False,
    timeout: Annotated[
        float | None, typer.Option("--timeout", help="give up after this many seconds")
    ] = None,
) -> None:
    """Run delivery-status polling now (embedded mode; workers do it on their own)."""
    import time

    from dispatcher.app.modes import poll_here

    settings = cli_settings()
    store = app.open_store(settings)
    assert store is not None
    said: dict[str, object] = {"line": None, "at": -1e9}

    def waiting(awaiting: int, next_check: datetime | None) -> None:
        """One line when what is awaited changes (at most every 10 s), so a long wait is never silent."""
        if not until_done or not awaiting:
            return
        due = f"; next check at {settings.show_time(next_check)}" if next_check is not None else ""
        line = f"{plural(awaiting, 'recipient')} awaiting a delivery report{due}"
        if line != said["line"] and time.monotonic() - float(said["at"]) >= 10:  # type: ignore[arg-type]
            said.update(line=line, at=time.monotonic())
            err.print(line, soft_wrap=True)

    settled = poll_here(settings, store, until_done=until_done, timeout=timeout, waiting=waiting)
    if until_done and not settled:
        err.print("timed out with recipients still waiting for a delivery report")
        raise typer.Exit(1)
    out.print("all recipients have a final state" if settled else "polled once")


@cli.command()
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
    keep_alive: Annotated[
        bool,
        typer.Option(
            "--keep-alive",
            envvar="SMSDISPATCH_SANDBOX_KEEP_ALIVE",
            help="keep HTTP/1.1 connections open between requests (default: close after each reply; "
            "what the real providers do is not documented)",
        ),
    ] = False,
) -> None:
    """Serve every provider's protocol on loopback (for tests, demos and dry runs)."""
    from dispatcher.sandbox.core import SandboxState, sandbox_env
    from dispatcher.sandbox.server import serve_forever

    if not 0 <= fail_rate <= 1:
        raise BadInput("--fail-rate is a share between 0 and 1")
    state = SandboxState(seed=seed, latency_ms=latency_ms, fail_rate=fail_rate, final_after_s=final_after)

    import socket

    with socket.socket() as probe:  # a taken port is bad input, said before the instructions
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError as exc:
            raise BadInput(
                f"--port {port}: cannot listen on {host}:{port} ({exc.strerror}); choose another port"
            ) from None

    def ready(base: str) -> None:  # the port it got (--port 0: a free one), then the instructions
        err.print(f"sandbox on {base}; point the clients at it with:")
        for key, value in sandbox_env(base).items():
            err.print(f"  export {key}={value}", soft_wrap=True)

    serve_forever(state, host, port, on_ready=ready, keep_alive=keep_alive)


def _distributed(what: str) -> None:
    settings = cli_settings()
    if not settings.dispatch.broker_url:
        raise BadInput(f"set SMSDISPATCH_BROKER_URL (Redis or RabbitMQ) to run {what}")
    app.open_store(settings)  # the schema is there before the first task


def _pool(args: list[str]) -> str:
    """The pool named in celery's options (-P X, --pool X, --pool=X); ours is threads."""
    pool = "threads"
    for i, arg in enumerate(args):
        if arg in ("-P", "--pool") and i + 1 < len(args):
            pool = args[i + 1]
        elif arg.startswith("--pool="):
            pool = arg.split("=", 1)[1]
        elif arg.startswith("-P") and len(arg) > 2:
            pool = arg[2:]
    return pool


def _multiprocess_metrics() -> None:
    """Prefork: prometheus_client's multiprocess mode wants PROMETHEUS_MULTIPROC_DIR set before it is
    imported, in the start-up of the process, and a fresh directory per run (its documentation): set it,
    run this same command again in its place, and wipe the directory when it ends."""
    import os
    import shutil
    import sys
    import tempfile

    from workers.metrics_server import MULTIPROC_ENV

    if not os.environ.get(MULTIPROC_ENV):
        os.environ[MULTIPROC_ENV] = tempfile.mkdtemp(prefix="smsdispatch-metrics-")
        os.execv(sys.executable, [sys.executable, "-m", "dispatcher", *sys.argv[1:]])
    import atexit

    from celery import signals
    from prometheus_client import multiprocess

    folder = os.environ[MULTIPROC_ENV]
    atexit.register(shutil.rmtree, folder, ignore_errors=True)
    signals.worker_process_shutdown.connect(
        lambda pid=None, **_: multiprocess.mark_process_dead(pid or os.getpid()), weak=False
    )


@cli.command(context_settings={"allow_extra_args": True, "ignore_unknown_options": True})
def worker(
    ctx: typer.Context, metrics_port: MetricsPort = None, metrics_host: MetricsHost = "127.0.0.1"
) -> None:
    """Distributed mode: a Celery worker for sends and housekeeping (extra options go to celery worker)."""
    if metrics_port is not None and _pool(ctx.args) in ("prefork", "processes"):
        _multiprocess_metrics()
    _distributed("a worker")
    from workers.celery_app import CONTROL_QUEUE, SEND_QUEUE
    from workers.logs import install_celery
    from workers.tasks import app as celery_app

    install_celery("worker")

    if metrics_port is not None:
        from dispatcher.app.monitoring import start_monitoring
        from workers import celery_metrics

        celery_metrics.install()
        start_monitoring(cli_settings(), metrics_host, metrics_port, store_gauges=False)

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


@cli.command(context_settings={"allow_extra_args": True, "ignore_unknown_options": True})
def beat(
    ctx: typer.Context, metrics_port: MetricsPort = None, metrics_host: MetricsHost = "127.0.0.1"
) -> None:
    """Distributed mode: the one scheduler (releases scheduled work, sweeps, polls). Run exactly one.
    With --metrics-port it also serves the store gauges (what every process did, read from the store)."""
    _distributed("beat")
    from workers.logs import install_celery
    from workers.tasks import app as celery_app

    install_celery("beat")

    if metrics_port is not None:
        from dispatcher.app.monitoring import start_monitoring
        from workers import celery_metrics

        celery_metrics.install()
        start_monitoring(cli_settings(), metrics_host, metrics_port, store_gauges=True)

    celery_app.start(["beat", "--loglevel", "INFO", *ctx.args])


@cli.command()
def demo(
    recipients: Annotated[int, typer.Option("--recipients")] = 2000,
    folder: Annotated[
        Path, typer.Option("--folder", help="where the demo writes its CSV, database and report")
    ] = Path("smsdispatch-demo"),
    provider: Annotated[str, typer.Option("--provider")] = "ghasedak",
) -> None:
    """A complete campaign against an in-process sandbox, from a generated CSV to the final report."""
    from dispatcher.cli.bars import ProgressBars
    from dispatcher.demo.run import run_demo

    name = app.resolve_provider(provider)
    err.print(f"demo: {recipients} rows, provider {name}, everything in {folder}")
    with ProgressBars(err) as bars:
        done = run_demo(folder, recipients, name, observer=bars)
    out.print(
        f"demo done in {done.seconds:.1f} s: campaign {done.campaign} {done.state}; the sandbox accepted "
        f"{done.accepted} messages for {done.numbers} numbers ({done.twice} numbers more than once); "
        f"report: {done.report}"
    )
