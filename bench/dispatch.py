"""Benchmark: recipients through N Celery workers against the sandbox (issue 4).

Prints recipients/s against the bound N x C x batch / latency (N worker processes, C threads each,
every call taking `latency` at the sandbox), and the workers' CPU time per recipient, read from
/proc for the worker processes (at zero latency this is the cost of our own code and Celery).

    python bench/dispatch.py --recipients 100000 --workers 2 --concurrency 8 --latency-ms 50
    python bench/dispatch.py --recipients 100000 --workers 2 --concurrency 8 --latency-ms 0

Needs the loopback Redis and PostgreSQL. The sandbox runs in its own process.
"""

from __future__ import annotations

import argparse
import csv
import os
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

import psycopg
import redis
import requests

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "bench" / "out"
EXE = [sys.executable, "-m", "dispatcher"]
TICKS = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int) -> float:
    """utime + stime of a process and its reaped children, from /proc."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    utime, stime, cutime, cstime = (int(x) for x in fields[11:15])
    return (utime + stime + cutime + cstime) / TICKS


def make_csv(path: Path, n: int) -> None:
    with path.open("w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["mobile"])
        for i in range(n):
            w.writerow([f"0912{i:07d}"])


def fresh_db() -> str:
    with psycopg.connect(host="127.0.0.1", user="postgres", dbname="postgres", autocommit=True) as conn:
        conn.execute('DROP DATABASE IF EXISTS "smsd_dispatch_bench" WITH (FORCE)')
        conn.execute('CREATE DATABASE "smsd_dispatch_bench"')
    return "postgresql+psycopg://postgres@127.0.0.1:5432/smsd_dispatch_bench"


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--recipients", type=int, default=100_000)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--concurrency", type=int, default=8)
    ap.add_argument("--latency-ms", type=float, default=50)
    ap.add_argument("--port", type=int, default=8799)
    args = ap.parse_args()

    OUT.mkdir(parents=True, exist_ok=True)
    src = OUT / f"dispatch_{args.recipients}.csv"
    if not src.exists():
        make_csv(src, args.recipients)
    broker = "redis://127.0.0.1:6379/13"
    redis.Redis.from_url(broker).flushdb()
    sandbox_url = f"http://127.0.0.1:{args.port}"
    from dispatcher.sandbox.core import sandbox_env

    env = {
        **os.environ,
        **sandbox_env(sandbox_url),
        "SMSDISPATCH_BROKER_URL": broker,
        "SMSDISPATCH_DATABASE_URL": fresh_db(),
        "SMSDISPATCH_POLL_INTERVALS": "3600",  # measure sending, not polling
    }
    os.environ.update(env)  # before workers.tasks is imported: its Celery app reads the broker URL then
    procs = []
    sandbox = subprocess.Popen(
        [*EXE, "sandbox", "--port", str(args.port), "--latency-ms", str(args.latency_ms)],
        env=env,
        stderr=subprocess.DEVNULL,
    )
    procs.append(sandbox)
    try:
        for _ in range(50):
            try:
                requests.get(sandbox_url + "/_sandbox/messages?provider=none", timeout=1)
                break
            except requests.RequestException:
                time.sleep(0.2)
        workers = [
            subprocess.Popen(
                [*EXE, "worker", "-c", str(args.concurrency), "-n", f"bench{i}@%h", "--loglevel", "WARNING"],
                env=env,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
            for i in range(args.workers)
        ]
        procs += workers
        time.sleep(4)  # workers connect
        cpu0 = sum(cpu_seconds(w.pid) for w in workers)
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
            capture_output=True,
            text=True,
        )
        assert sent.returncode == 0, sent.stderr
        import json

        campaign = json.loads(sent.stdout.strip().splitlines()[-1])["campaign"]
        from campaigns.store import Store
        from workers.dispatch import publish_campaign
        from workers.tasks import send_chunk_task

        store = Store.from_url(env["SMSDISPATCH_DATABASE_URL"])
        with store.engine.begin() as conn:
            from campaigns.store import campaigns_t

            conn.execute(
                campaigns_t.update().where(campaigns_t.c.id == campaign).values(send_at=datetime.now(UTC))
            )
        store.start_due()
        started = time.perf_counter()
        publish_campaign(store, campaign, send_chunk_task)
        while True:
            view = store.campaign(campaign)
            open_chunks = sum(n for s, n in view.chunk_counts.items() if s in ("queued", "sending", "retry"))
            if open_chunks == 0:
                break
            time.sleep(0.05)
        elapsed = time.perf_counter() - started
        cpu = sum(cpu_seconds(w.pid) for w in workers) - cpu0
        view = store.campaign(campaign)  # re-read: the loop's view may straddle a commit
        n = view.recipients
        rate = n / elapsed
        print(
            f"{n} recipients, {view.chunks} chunks of 100, {args.workers} workers x {args.concurrency} threads, sandbox latency {args.latency_ms:g} ms"
        )
        print(f"sent in {elapsed:.2f} s: {rate:,.0f} recipients/s")
        if args.latency_ms:
            bound = args.workers * args.concurrency * 100 / (args.latency_ms / 1000)
            print(
                f"bound N x C x batch / latency = {bound:,.0f} recipients/s -> {rate / bound:.0%} of the bound"
            )
        print(f"worker CPU {cpu:.2f} s = {cpu / n * 1e6:.1f} us per recipient")
        print(f"states: {view.counts}")
    finally:
        for p in procs:
            p.terminate()
        for p in procs:
            try:
                p.wait(timeout=20)
            except subprocess.TimeoutExpired:
                p.kill()


if __name__ == "__main__":
    main()
