"""Benchmark: delivery-status polling of 100,000 sent recipients (docs/architecture.md, "Delivery-status polling"), on PostgreSQL and SQLite.

Seeds a campaign sent through the real send path to the sandbox (its own process), so every recipient
has a message id the sandbox knows; makes them all due; then times what a poller does: claim the due
recipients in one thread as beat's poll task does (the leased `FOR UPDATE SKIP LOCKED` claim, cut into
batches), while worker processes standing in for the Celery workers run each batch's `poll_batch` steps (read
the batch by id, one status call over HTTP, one set-based UPDATE). Prints recipients/s recorded and where the time went (DB vs HTTP).

    python bench/poll.py --recipients 100000 --db all
    python bench/poll.py --recipients 100000 --db postgres --workers 4 --provider mediapayamak
"""

from __future__ import annotations

import argparse
import contextlib
import json
import multiprocessing
import os
import subprocess
import sys
import threading
import time
from concurrent.futures import ProcessPoolExecutor
from datetime import timedelta
from pathlib import Path

import psycopg
import requests

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # a pool process (spawn) has it already, behind the --code checkout: kept there
    sys.path.insert(0, str(ROOT))
from bench.common import cpu_seconds, drop_pg, fresh_pg, machine_busy, wait_for_sandbox  # noqa: E402

OUT = ROOT / "bench" / "out"
EXE = [sys.executable, "-m", "dispatcher"]


def backend_cpu(dbname: str) -> dict[int, float]:
    """CPU seconds of every PostgreSQL backend connected to `dbname`, by pid (same machine, /proc)."""
    with psycopg.connect(host="127.0.0.1", user="postgres", dbname="postgres", autocommit=True) as conn:
        pids = [p for (p,) in conn.execute("SELECT pid FROM pg_stat_activity WHERE datname = %s", (dbname,))]
    out = {}
    for pid in pids:
        with contextlib.suppress(OSError):  # gone meanwhile
            out[pid] = cpu_seconds(pid)
    return out


def fresh_url(kind: str, pg_db: str) -> str:
    if kind == "sqlite":
        path = OUT / "poll_bench.db"
        for suffix in ("", "-wal", "-shm"):
            Path(str(path) + suffix).unlink(missing_ok=True)
        return f"sqlite:///{path}"
    return fresh_pg(pg_db)


class Clock:
    """Wall seconds per phase, summed over workers."""

    def __init__(self) -> None:
        self.spent: dict[str, float] = {}
        self._lock = threading.Lock()

    def add(self, phase: str, seconds: float) -> None:
        with self._lock:
            self.spent[phase] = self.spent.get(phase, 0.0) + seconds


_DEPS = None


def _init_worker(url: str) -> None:
    """A worker process: its own store and provider clients, as a Celery worker has."""
    global _DEPS
    from campaigns.store import Store
    from workers.deps import ProviderPool, WorkerDeps
    from workers.settings import DispatchSettings

    _DEPS = WorkerDeps(Store.from_url(url), ProviderPool(), DispatchSettings.from_env())


def _warm(_: int) -> int:
    time.sleep(0.2)  # long enough that every process of the pool takes one
    return os.getpid()


def _poll_batch(ids: list[int], message: str | None) -> tuple[int, dict[str, float]]:
    """Exactly the steps of the `poll_batch` operation (a worker's task), each timed: the batch from the
    message beat published (JSON, as Celery carries it), or read by id (`--read-by-id`, a message
    without the claimed rows)."""
    from campaigns.clock import utcnow
    from workers.operations.poll import ask, record

    store = _DEPS.store
    t0 = time.perf_counter()
    if message:
        from workers.operations.poll import batch_from_message

        batch = batch_from_message(json.loads(message))
    else:
        batch = store.polls_of(ids)
    t1 = time.perf_counter()
    answers = ask(_DEPS, batch, utcnow())
    t2 = time.perf_counter()
    written = record(_DEPS, answers)
    return written, {"read": t1 - t0, "http": t2 - t1, "record": time.perf_counter() - t2}


def run(kind: str, args: argparse.Namespace, sandbox_url: str, sandbox_pid: int) -> None:
    import pandas as pd

    from campaigns.clock import utcnow
    from campaigns.plan import plan
    from campaigns.store import CampaignSpec, Store, recipients_t
    from campaigns.text import Template
    from dispatcher.engine.runner import LocalRunner
    from workers.deps import ProviderPool, WorkerDeps
    from workers.operations.poll import plan_polls

    try:
        from workers.operations.poll import batch_message
    except ImportError:  # --code: a checkout whose poll_batch messages carry ids only
        args.read_by_id = True
    from workers.settings import DispatchSettings

    url = fresh_url(kind, args.pg_db)
    store = Store.from_url(url)
    store.migrate()
    n = args.recipients
    df = pd.DataFrame({"row": range(2, n + 2), "phone": [f"+98912{i:07d}" for i in range(n)]})
    spec = CampaignSpec("poll bench", args.provider, f"{args.provider}:bench", "", "Bench", False)
    cid = store.create_campaign(spec, plan([df], Template("Bench"), 100, []))
    deps = WorkerDeps(store, ProviderPool(), DispatchSettings.from_env())
    seeded = time.perf_counter()
    send_pg0 = backend_cpu(args.pg_db) if kind == "postgres" else {}
    LocalRunner(deps, threads=8, tick=0.01).send(cid)
    send_pg = sum(c - send_pg0.get(pid, 0.0) for pid, c in backend_cpu(args.pg_db).items()) if send_pg0 else 0
    counts = store.campaign(cid).counts
    assert counts == {"sent": n}, counts
    with store.engine.begin() as conn:  # every recipient due now
        conn.execute(recipients_t.update().values(next_poll_at=utcnow() - timedelta(seconds=1)))
    print(
        f"[{kind}] seeded {n:,} sent recipients in {time.perf_counter() - seeded:.1f} s (the embedded runner, 8 "
        "threads"
        + (f"; PostgreSQL backends {send_pg / n * 1e6:.1f} us CPU per recipient sent)" if send_pg else ")"),
        flush=True,
    )

    store.engine.dispose()  # the worker processes open their own connections

    clock = Clock()
    sandbox_cpu0 = cpu_seconds(sandbox_pid)
    recorded = 0
    ctx = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(args.workers, ctx, initializer=_init_worker, initargs=(url,)) as pool:
        pids: set[int] = set()
        for _ in range(
            50
        ):  # every process up before the clock counts (one slow to start was left out of the CPU)
            pids |= set(pool.map(_warm, range(args.workers * 2)))
            if len(pids) >= args.workers:
                break
        worker_cpu0 = sum(cpu_seconds(p) for p in pids)
        pg_cpu0 = backend_cpu(args.pg_db) if kind == "postgres" else {}
        busy0, total0 = machine_busy()
        load0 = os.getloadavg()[0]
        cpu0 = time.process_time()
        started = time.perf_counter()
        pending = []
        while True:
            t0 = time.perf_counter()
            batches = plan_polls(deps, limit=args.claim)
            clock.add("claim", time.perf_counter() - t0)
            if not batches:
                break
            pending += [
                pool.submit(
                    _poll_batch,
                    [d.recipient_id for d in b],
                    None if args.read_by_id else json.dumps(batch_message(b)),
                )
                for b in batches
            ]
        for future in pending:
            written, spent = future.result()
            recorded += written
            for phase, seconds in spent.items():
                clock.add(phase, seconds)
        elapsed = time.perf_counter() - started
        worker_cpu = sum(cpu_seconds(p) for p in pids) - worker_cpu0
        pg_cpu1 = backend_cpu(args.pg_db) if kind == "postgres" else {}
        busy1, total1 = machine_busy()
    pg_cpu = sum(c - pg_cpu0.get(pid, 0.0) for pid, c in pg_cpu1.items())
    cpu = time.process_time() - cpu0
    sandbox_cpu = cpu_seconds(sandbox_pid) - sandbox_cpu0
    view = store.campaign(cid)
    store.engine.dispose()
    spent = clock.spent
    db = spent.get("claim", 0) + spent.get("read", 0) + spent.get("record", 0)
    print(
        f"[{kind}] {recorded:,} recipients polled and recorded in {elapsed:.2f} s: "
        f"{recorded / elapsed:,.0f} recipients/s ({args.workers} worker processes, {args.provider}, batches of "
        f"<= 100 ids, sandbox latency {args.latency_ms:g} ms)"
    )
    print(
        f"[{kind}] time split, summed over workers: claim {spent.get('claim', 0):.2f} s (main thread), "
        f"read {spent.get('read', 0):.2f} s, HTTP status calls {spent.get('http', 0):.2f} s, record {spent.get('record', 0):.2f} s "
        f"-> DB {db / (db + spent.get('http', 0)):.0%}, HTTP {spent.get('http', 0) / (db + spent.get('http', 0)):.0%}"
    )
    print(
        f"[{kind}] CPU: claiming process {cpu:.2f} s, workers {worker_cpu:.2f} s "
        f"({(cpu + worker_cpu) / recorded * 1e6:.0f} us per recipient together), sandbox {sandbox_cpu:.2f} s; "
        f"states {view.counts}",
        flush=True,
    )
    whole = cpu + worker_cpu + sandbox_cpu + pg_cpu
    cores = os.cpu_count() or 1
    print(
        f"[{kind}] CPU per recipient: ours {(cpu + worker_cpu) / recorded * 1e6:.1f} us, "
        + (f"PostgreSQL backends {pg_cpu / recorded * 1e6:.1f} us, " if kind == "postgres" else "")
        + f"sandbox {sandbox_cpu / recorded * 1e6:.1f} us; all of it {whole / recorded * 1e6:.1f} us, i.e. "
        f"{cores} idle cores would record {recorded * cores / whole:,.0f} recipients/s. Machine "
        f"{(busy1 - busy0) / max(total1 - total0, 1):.0%} busy over the run, load average {load0:.1f} at its start",
        flush=True,
    )


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--recipients", type=int, default=100_000)
    ap.add_argument("--db", choices=["postgres", "sqlite", "all"], default="all")
    ap.add_argument("--provider", default="ghasedak")
    ap.add_argument("--workers", type=int, default=4, help="worker processes running poll_batch")
    ap.add_argument("--claim", type=int, default=10_000, help="recipients per claim")
    ap.add_argument("--latency-ms", type=float, default=0)
    ap.add_argument("--port", type=int, default=8798)
    ap.add_argument(
        "--read-by-id",
        action="store_true",
        help="workers read each batch by id (a poll_batch message without the claimed rows)",
    )
    ap.add_argument(
        "--code",
        type=Path,
        help="measure the code of this checkout (e.g. the commit before a change; default: this one)",
    )
    ap.add_argument(
        "--pg-db", default="smsd_poll_bench", help="the PostgreSQL database to make (dropped first)"
    )
    args = ap.parse_args()
    if args.code:  # first on the path of this process, its pool (spawn copies sys.path) and the sandbox
        sys.path.insert(0, str(args.code.resolve()))
        os.environ["PYTHONPATH"] = str(args.code.resolve())
    OUT.mkdir(parents=True, exist_ok=True)

    from dispatcher.sandbox.core import sandbox_env

    sandbox_url = f"http://127.0.0.1:{args.port}"
    os.environ.update(sandbox_env(sandbox_url))
    sandbox = subprocess.Popen(
        [*EXE, "sandbox", "--port", str(args.port), "--latency-ms", str(args.latency_ms)],
        env=os.environ,
        cwd=args.code or ROOT,
        stderr=subprocess.DEVNULL,
    )
    try:
        wait_for_sandbox(sandbox_url)
        # Final outcomes at once: every recipient is recorded by its first check.
        requests.post(sandbox_url + "/_sandbox/config", json={"final_after_s": 0}, timeout=5)
        for kind in ("postgres", "sqlite") if args.db == "all" else (args.db,):
            requests.post(sandbox_url + "/_sandbox/reset", timeout=5)
            run(kind, args, sandbox_url, sandbox.pid)
    finally:
        sandbox.terminate()
        sandbox.wait(timeout=20)
        if args.db != "sqlite":
            drop_pg(args.pg_db)


if __name__ == "__main__":
    main()
