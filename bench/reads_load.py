"""Benchmark: the reads of bench/reads.py at ten million recipients, quiet and while a send and a poll run.

    python bench/reads_load.py --recipients 10000000 --others 20 --other-size 100000 --send 500000

Builds the store bench/reads.py builds (PostgreSQL: one running campaign of N recipients, 2.7 M of them
awaiting a delivery report, beside `--others` completed ones), times each read quietly (median of `--runs`),
then starts, each in its own process, against the sandbox (its own process, no latency):

* a send at full speed: a new campaign of `--send` recipients through the embedded runner's 8 threads
  (claim, HTTP, record: the send path), whose housekeeping also sends the big campaign's queued chunks;
* a poll at full speed: a claimer and `--poll-workers` processes running `poll_batch` on the claimed
  messages (the distributed mode's steps), over the big campaign's recipients awaiting a report, all made
  due (the sandbox does not know their ids, so each answer is "not final": a full write per recipient);

and times every read once a second for `--window` seconds while both run. Prints, per read, the quiet median
and, under load, the median and the slowest query time (the database calls alone) and the median wall time,
with the rates the send and the poll reached meanwhile and the machine's load. The campaign's next check is
also timed alone both ways, side by side (`next_check_cases`).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import os
import signal
import statistics
import subprocess
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from datetime import timedelta
from pathlib import Path

from sqlalchemy import text

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from bench.common import wait_for_sandbox  # noqa: E402

EXE = [sys.executable, "-m", "dispatcher"]
AHEAD = timedelta(seconds=1000)  # the poller's "now": past every next check the build gave (<= 900 s ahead)


# ---- the load, each in its own process ------------------------------------------------------------------
def send_child(url: str, n: int) -> None:
    import pandas as pd

    from campaigns.plan import plan
    from campaigns.store import CampaignSpec, Store
    from campaigns.text import Template
    from dispatcher.engine.runner import LocalRunner
    from workers.deps import ProviderPool, WorkerDeps
    from workers.settings import DispatchSettings

    store = Store.from_url(url)
    df = pd.DataFrame({"row": range(2, n + 2), "phone": [f"+98935{i:07d}" for i in range(n)]})
    cid = store.create_campaign(
        CampaignSpec("load", "ghasedak", "ghasedak:bench", "", "Load", False),
        plan([df], Template("Load"), 100, []),
    )
    print(json.dumps({"campaign": cid}), flush=True)
    deps = WorkerDeps(store, ProviderPool(), DispatchSettings.from_env())
    LocalRunner(deps, threads=8, tick=0.01, poll_every=3600).send(cid, timeout=3600)


_DEPS = None


def _init_poller(url: str) -> None:
    global _DEPS
    from campaigns.store import Store
    from workers.deps import ProviderPool, WorkerDeps
    from workers.settings import DispatchSettings

    _DEPS = WorkerDeps(Store.from_url(url), ProviderPool(), DispatchSettings.from_env())


def _poll(ids: list[int], message: str) -> int:
    from campaigns.clock import utcnow
    from workers.operations.poll import poll_batch

    return poll_batch(ids, _DEPS, utcnow() + AHEAD, claimed=json.loads(message))


def poll_child(url: str, workers: int) -> None:
    from campaigns.clock import utcnow
    from campaigns.store import Store
    from workers.deps import ProviderPool, WorkerDeps
    from workers.operations.poll import batch_message, plan_polls
    from workers.settings import DispatchSettings

    deps = WorkerDeps(Store.from_url(url), ProviderPool(), DispatchSettings.from_env())
    done, started = 0, time.monotonic()
    with ProcessPoolExecutor(workers, initializer=_init_poller, initargs=(url,)) as pool:
        while batches := plan_polls(deps, limit=5000, now=utcnow() + AHEAD):
            futures = [
                pool.submit(_poll, [d.recipient_id for d in b], json.dumps(batch_message(b))) for b in batches
            ]
            done += sum(f.result() for f in futures)
            print(json.dumps({"polled": done, "seconds": time.monotonic() - started}), flush=True)


# ---- the reads ---------------------------------------------------------------------------------------------
def next_check_cases(store, big: int) -> list:  # noqa: ANN001 - bench
    """The campaign's next check both ways, timed side by side each second: the walk of its index from the
    start (the read before the claim log's end was used), and `polling.next_poll_time` (from the latest
    claim's end; inside the claims' stretches only when nothing after is due)."""
    from sqlalchemy import select

    from campaigns.states import AWAITING_REPORT
    from campaigns.store import recipients_t
    from campaigns.store.polling import next_poll_time

    r = recipients_t.c
    walk = (
        select(r.next_poll_at)
        .where(r.next_poll_at.is_not(None), r.state.in_(list(AWAITING_REPORT)), r.campaign_id == big)
        .order_by(r.next_poll_at)
        .limit(1)
    )

    def from_start() -> object:
        with store.engine.connect() as conn:
            return conn.execute(walk).scalar_one_or_none()

    def after_claims() -> object:
        with store.engine.connect() as conn:
            return next_poll_time(conn, big)

    return [
        ("next check: the walk from the index's start (before)", from_start),
        ("next check: from the latest claim's end (polling.next_poll_time)", after_claims),
    ]


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--recipients", type=int, default=10_000_000)
    p.add_argument("--others", type=int, default=20)
    p.add_argument("--other-size", type=int, default=100_000)
    p.add_argument("--send", type=int, default=500_000, help="recipients of the campaign sent meanwhile")
    p.add_argument("--poll-workers", type=int, default=3)
    p.add_argument("--runs", type=int, default=7, help="quiet: median of this many")
    p.add_argument("--window", type=float, default=90, help="seconds of reads under load")
    p.add_argument("--port", type=int, default=8841)
    p.add_argument("--child", nargs=3, metavar=("KIND", "URL", "N"), help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.child:
        logging.getLogger("workers").setLevel(logging.ERROR)  # ids the sandbox never gave: said per batch
        kind, url, n = args.child
        (send_child if kind == "send" else poll_child)(url, int(n))
        return
    args.no_reference, args.explain = True, False
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(1))  # stopped: the finally below still cleans up
    from bench import reads
    from campaigns.store import Store
    from dispatcher.sandbox.core import sandbox_env

    print(
        f"reads under load: {args.recipients:,} recipients + {args.others} x {args.other_size:,}", flush=True
    )
    url = reads.fresh_pg()
    procs: list[subprocess.Popen] = []
    try:
        store = Store.from_url(url)
        store.migrate()
        big = reads.build(store, args.recipients, args.others, args.other_size)
        with store.engine.begin() as conn:  # the build wrote chunk ids itself: their sequence follows
            conn.execute(
                text("SELECT setval(pg_get_serial_sequence('chunks', 'id'), (SELECT max(id) FROM chunks))")
            )
        clock = reads.QueryClock()
        cases = reads.read_cases(store, url, big, args) + next_check_cases(store, big)
        quiet = {name: reads.timed(clock, fn, args.runs)[1] for name, fn in cases}

        sandbox_url = f"http://127.0.0.1:{args.port}"
        env = {**os.environ, **sandbox_env(sandbox_url)}
        procs.append(
            subprocess.Popen([*EXE, "sandbox", "--port", str(args.port)], env=env, stderr=subprocess.DEVNULL)
        )
        wait_for_sandbox(sandbox_url)
        me = [sys.executable, __file__, "--child"]
        out = {
            k: Path(f"{os.environ.get('TMPDIR', '/tmp')}/reads_load_{k}_{os.getpid()}.log")
            for k in ("send", "poll")
        }
        for kind, n in (("send", args.send), ("poll", args.poll_workers)):
            procs.append(
                subprocess.Popen(
                    [*me, kind, url, str(n)], env=env, stdout=out[kind].open("w"), start_new_session=True
                )
            )

        def last(kind: str) -> dict:
            lines = out[kind].read_text().strip().splitlines()
            return json.loads(lines[-1]) if lines else {}

        while not (last("send") and last("poll")):
            time.sleep(0.5)
        load0 = os.getloadavg()[0]
        polled0, pending0, t0 = last("poll")["polled"], store.store_counts().pending, time.monotonic()
        under: dict[str, list[tuple[float, float]]] = {name: [] for name, _ in cases}
        slowest: dict[str, list] = {}
        while time.monotonic() - t0 < args.window and all(p.poll() is None for p in procs):
            for name, fn in cases:
                clock.seconds, clock.log = 0.0, []
                start = time.perf_counter()
                fn()
                under[name].append((clock.seconds * 1000, (time.perf_counter() - start) * 1000))
                if clock.seconds * 1000 >= max(q for q, _ in under[name]):
                    slowest[name] = sorted(clock.log, key=lambda x: -x[0])[:2]
                clock.log = None
            time.sleep(1)
        span = time.monotonic() - t0
        sent = pending0 - store.store_counts().pending  # every campaign's: the runner sends stale chunks too
        polled = last("poll")["polled"] - polled0
        print(
            f"load over {span:.0f} s of reads: sending {sent / span:,.0f} recipients/s (a new campaign of "
            f"{args.send:,}), polling {polled / span:,.0f} recipients/s ({args.poll_workers} workers); machine load "
            f"{load0:.1f} -> {os.getloadavg()[0]:.1f}"
        )
        print(f"  {'read':<62} {'quiet':>8} {'load med':>9} {'load max':>9} {'wall med':>9}  (ms; n)")
        for name, _ in cases:
            q = [x[0] for x in under[name]]
            w = [x[1] for x in under[name]]
            print(
                f"  {name:<62} {quiet[name]:8.1f} {statistics.median(q):9.1f} {max(q):9.1f} "
                f"{statistics.median(w):9.1f}  ({len(q)})",
                flush=True,
            )
        print("  the slowest call of each read under load, its two slowest statements:")
        for name, found in slowest.items():
            for took, statement, _, _ in found:
                print(f"    {name[:40]:<40} {took * 1000:7.1f} ms  {' '.join(statement.split())[:150]}")
        store.engine.dispose()
    finally:
        for proc in procs:  # the children's own pools too (each child leads its process group)
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGTERM) if proc.pid != procs[0].pid else proc.terminate()
        for proc in procs:
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()
        reads.drop_pg(url)


if __name__ == "__main__":
    main()
