"""Benchmark: recipients through N Celery workers against the sandbox (docs/benchmarks.md).

Prints recipients/s against the bound N x C x batch / latency (N worker processes, C threads each,
every call taking `latency` at the sandbox), and the workers' CPU time per recipient, read from
/proc for the worker processes (at zero latency this is the cost of our own code and Celery).

    python bench/dispatch.py --recipients 100000 --workers 2 --concurrency 8 --latency-ms 50
    python bench/dispatch.py --recipients 100000 --workers 2 --concurrency 8 --latency-ms 0 --celery-floor
    python bench/dispatch.py --recipients 100000 --table 1x4@50,2x4@50,2x8@50,2x8@0 [--keep-alive]

Needs the loopback Redis and PostgreSQL. The sandbox runs in its own process.
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

import redis

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from bench.common import cpu_seconds, drop_pg, fresh_pg, machine_busy, make_csv, wait_for_sandbox  # noqa: E402

OUT = ROOT / "bench" / "out"
EXE = [sys.executable, "-m", "dispatcher"]


def floor_cpu(workers: list[subprocess.Popen], task, tasks: int, broker_url: str) -> None:
    """Worker CPU per task for tasks that find no chunk: Celery's own cost per message, plus one read."""
    broker = redis.Redis.from_url(broker_url)
    cpu0 = sum(cpu_seconds(w.pid) for w in workers)
    for i in range(tasks):
        task.apply_async((10**12 + i, 1))
    while broker.llen("sms.send") or broker.hlen("unacked"):
        time.sleep(0.05)
    cpu = sum(cpu_seconds(w.pid) for w in workers) - cpu0
    print(f"floor: {tasks} tasks that find nothing to send: {cpu / tasks * 1e3:.2f} ms worker CPU per task")


def table(configs: str, recipients: int, passed: list[str]) -> None:
    """Run this script once per `WxC@latency` configuration and print one line per run."""
    print(
        "| workers x threads | latency | recipients/s | bound | share | worker CPU/recipient | machine busy |"
    )
    print("|---|---|---|---|---|---|---|")
    for config in configs.split(","):
        slots, latency = config.split("@")
        w, c = slots.split("x")
        out = subprocess.run(
            [sys.executable, __file__, "--recipients", str(recipients), "--workers", w, "--concurrency", c]
            + ["--latency-ms", latency, *passed],
            capture_output=True,
            text=True,
        ).stdout
        got = dict(re.findall(r"^(sent in|bound|worker CPU|machine CPU busy)(.*)$", out, re.M))
        rate = re.search(r"([\d,]+) recipients/s", got.get("sent in", ""))
        bound = re.search(r"= ([\d,]+) recipients/s -> (\d+%)", got.get("bound", ""))
        us = re.search(r"= ([\d.]+) us per recipient", got.get("worker CPU", ""))
        busy = re.search(r" (\d+%) of", got.get("machine CPU busy", ""))
        print(
            f"| {w} x {c} | {latency} ms | {rate.group(1) if rate else '?'} | "
            f"{bound.group(1) if bound else '-'} | {bound.group(2) if bound else '-'} | "
            f"{us.group(1) + ' us' if us else '?'} | {busy.group(1) if busy else '?'} |",
            flush=True,
        )


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--recipients", type=int, default=100_000)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--concurrency", type=int, default=8)
    ap.add_argument("--latency-ms", type=float, default=50)
    ap.add_argument("--port", type=int, default=8799)
    ap.add_argument(
        "--celery-floor",
        action="store_true",
        help="also publish one send task per chunk for chunk ids that do not exist: the worker CPU of a "
        "task that finds nothing to do (Celery + Redis + one read) is the floor under the per-chunk cost",
    )
    ap.add_argument(
        "--table",
        metavar="WxC@MS,...",
        help="run each configuration (e.g. 1x4@50,2x4@50,2x8@50,2x8@0) in turn and print a table",
    )
    ap.add_argument(
        "--keep-alive",
        action="store_true",
        help="the sandbox keeps HTTP/1.1 connections open (`smsdispatch sandbox --keep-alive`); default: it "
        "closes each after its reply, as werkzeug does",
    )
    ap.add_argument("--redis-db", type=int, default=13, help="the broker's Redis database (flushed first)")
    ap.add_argument(
        "--database", default="smsd_dispatch_bench", help="PostgreSQL database made anew and dropped"
    )
    args = ap.parse_args()
    if args.table:
        passed = ["--redis-db", str(args.redis_db), "--database", args.database, "--port", str(args.port)]
        passed += ["--keep-alive"] if args.keep_alive else []
        table(args.table, args.recipients, passed)
        return

    OUT.mkdir(parents=True, exist_ok=True)
    src = OUT / f"dispatch_{args.recipients}.csv"
    if not src.exists():
        make_csv(src, args.recipients)
    broker = f"redis://127.0.0.1:6379/{args.redis_db}"
    redis.Redis.from_url(broker).flushdb()
    sandbox_url = f"http://127.0.0.1:{args.port}"
    from dispatcher.sandbox.core import sandbox_env

    env = {
        **os.environ,
        **sandbox_env(sandbox_url),
        "SMSDISPATCH_BROKER_URL": broker,
        "SMSDISPATCH_DATABASE_URL": fresh_pg(args.database),
        "SMSDISPATCH_POLL_INTERVALS": "3600",  # measure sending, not polling
    }
    os.environ.update(env)  # before workers.tasks is imported: its Celery app reads the broker URL then
    procs = []
    sandbox = subprocess.Popen(
        [*EXE, "sandbox", "--port", str(args.port), "--latency-ms", str(args.latency_ms)]
        + (["--keep-alive"] if args.keep_alive else []),
        env={**env, "PYTHONPATH": str(ROOT)},  # this script's sandbox, whichever code the workers run
        cwd=OUT,  # `python -m` puts the current directory first on sys.path, ahead of PYTHONPATH
        stderr=subprocess.DEVNULL,
    )
    procs.append(sandbox)
    try:
        wait_for_sandbox(sandbox_url)
        workers = [
            subprocess.Popen(
                [*EXE, "worker", "-c", str(args.concurrency), "-n", f"bench{i}@%h", "--loglevel", "WARNING"],
                env=env,
                cwd=OUT,  # not the checkout it is run from: PYTHONPATH decides which code the workers run
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
            for i in range(args.workers)
        ]
        procs += workers
        # Load and store first, so the timing covers dispatch only.
        sent = subprocess.run(
            [
                *EXE,
                "send",
                str(src),
                "--provider",
                "ghasedak",
                "--message",
                "Bench",
                "--json",
                "--at",
                "2099-01-01T00:00",
            ],
            env=env,
            cwd=OUT,
            capture_output=True,
            text=True,
        )
        assert sent.returncode == 0, sent.stderr
        import json

        campaign = json.loads(sent.stdout.strip().splitlines()[-1])["campaign"]
        from campaigns.store import Store
        from workers.dispatch import publish_campaign
        from workers.settings import DispatchSettings
        from workers.tasks import send_chunk_task

        store = Store.from_url(env["SMSDISPATCH_DATABASE_URL"])
        with store.engine.begin() as conn:
            from campaigns.store import campaigns_t

            conn.execute(
                campaigns_t.update().where(campaigns_t.c.id == campaign).values(send_at=datetime.now(UTC))
            )
        store.start_due()
        # The workers' CPU is counted from here: once every worker answers a ping (its imports and start
        # done; under load a worker took over 9 s to start, and a fixed 4 s wait counted part of that).
        for _ in range(240):
            if len(send_chunk_task.app.control.ping(timeout=0.5)) >= args.workers:
                break
        else:
            raise SystemExit("the workers did not start")
        cpu0 = sum(cpu_seconds(w.pid) for w in workers)
        busy0, total0 = machine_busy()
        sandbox_cpu0 = cpu_seconds(sandbox.pid)
        started = time.perf_counter()
        # chunks per message as `smsdispatch send` publishes them (SMSDISPATCH_CHUNKS_PER_MESSAGE, default 4)
        publish_campaign(store, campaign, send_chunk_task, DispatchSettings.from_env().chunks_per_message)
        while True:
            # Chunk counts only: counting 100,000 recipients by state every 50 ms cost PostgreSQL about
            # half a core, which the first figures (2026-11-22) paid for.
            counts = store.chunk_counts(campaign)
            open_chunks = sum(n for s, n in counts.items() if s in ("queued", "sending", "retry"))
            if open_chunks == 0:
                break
            time.sleep(0.05)
        elapsed = time.perf_counter() - started
        cpu = sum(cpu_seconds(w.pid) for w in workers) - cpu0
        busy1, total1 = machine_busy()
        sandbox_cpu = cpu_seconds(sandbox.pid) - sandbox_cpu0
        view = store.campaign(campaign)  # re-read: the loop's view may straddle a commit
        n = view.recipients
        rate = n / elapsed
        print(
            f"{n} recipients, {view.chunks} chunks of 100, {args.workers} workers x {args.concurrency} threads, sandbox latency {args.latency_ms:g} ms"
            + (", keep-alive" if args.keep_alive else "")
        )
        print(f"sent in {elapsed:.2f} s: {rate:,.0f} recipients/s")
        if args.latency_ms:
            bound = args.workers * args.concurrency * 100 / (args.latency_ms / 1000)
            print(
                f"bound N x C x batch / latency = {bound:,.0f} recipients/s -> {rate / bound:.0%} of the bound"
            )
        cores = os.cpu_count() or 1
        print(
            f"machine CPU busy {(busy1 - busy0) / max(total1 - total0, 1):.0%} of {cores} cores "
            f"(workers {cpu / elapsed / cores:.0%}, sandbox {sandbox_cpu / elapsed / cores:.0%}, "
            "the rest is PostgreSQL, Redis and other processes)"
        )
        print(
            f"worker CPU {cpu:.2f} s = {cpu / n * 1e6:.1f} us per recipient = {cpu / view.chunks * 1e3:.2f} ms per chunk"
        )
        print(f"states: {view.counts}")
        if args.celery_floor:
            floor_cpu(workers, send_chunk_task, view.chunks, broker)
    finally:
        for p in procs:
            p.terminate()
        for p in procs:
            try:
                p.wait(timeout=20)
            except subprocess.TimeoutExpired:
                p.kill()
        drop_pg(args.database)


if __name__ == "__main__":
    main()
