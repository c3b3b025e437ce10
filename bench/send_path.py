"""Benchmark: what the maintained counters cost on the send path, and concurrent writers of one campaign.

    python bench/send_path.py --threads 1,4,8 --chunks 1000 --baseline /work/main
    python bench/send_path.py --operation --db postgres --threads 1,4 --chunks 1000 [--profile out.pstats] [--keep-alive]
    python bench/send_path.py --operation --db postgres --threads 1,4 --chunks 600 --latency-ms 50

T threads claim and record (all accepted) chunks of 100 recipients of ONE campaign through the Store API
(the send path without HTTP, so the database is the bottleneck) and report chunks/s and this process's CPU
per recipient (with SQLite, the database's work too): with the counters sharded per writer (as shipped),
with every writer on one row per counter (`tally.SHARDED = False`, PostgreSQL), and, with `--baseline DIR`,
the same script against a checkout without counters. Each case in its own process and a fresh database.

`--operation`: the whole send operation instead (`workers.operations.send.send_chunk`: the claim, the HTTP
call to a sandbox in its own process at 0 ms latency, the record, the metrics), as a worker thread runs it
without Celery: this process's CPU per recipient is our code and its drivers (with SQLite, the database's
work too), the quickest figure to iterate on, with the median wall time of a chunk's steps (the claim, the
provider call, the record) and, with `--latency-ms`, the share of the bound threads x 1000 / latency chunks/s
it reaches. `--profile FILE` writes cProfile's stats of one thread.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path

from campaigns.store import Store

ROOT = Path(__file__).resolve().parents[1]
sys.path.append(str(ROOT))  # last: a --baseline child imports the checkout on its PYTHONPATH first
from bench.common import drop_pg, fresh_pg, wait_for_sandbox  # noqa: E402

BATCH = 100


def one_campaign(url: str, chunks: int, sender: str) -> tuple[Store, list[tuple[int, int]]]:
    """A migrated store at `url` holding ONE running Ghasedak campaign of `chunks` chunks of BATCH numbers:
    the store and its claimable (chunk id, attempt)s."""
    import pandas as pd

    from campaigns.plan import plan
    from campaigns.store import CampaignSpec
    from campaigns.text import Template

    store = Store.from_url(url)
    store.migrate()
    n = chunks * BATCH
    df = pd.DataFrame({"row": range(2, n + 2), "phone": [f"+98912{i:07d}" for i in range(n)]})
    spec = CampaignSpec(
        name="bench", provider="ghasedak", account="a", sender=sender, message="hi", personalised=False
    )
    cid = store.create_campaign(spec, plan([df], Template("hi"), BATCH, []))
    return store, store.claimable_chunks(limit=chunks, campaign_id=cid)


def send_path(url: str, threads: int, chunks: int) -> dict[str, float]:
    """`threads` threads claim and record (all accepted) chunks of ONE campaign through the Store API, no
    HTTP: chunks/s, and this process's CPU per recipient (statements built and bound, the driver; with SQLite
    the database's own work too)."""
    from campaigns.store import RecipientUpdate

    store, work = one_campaign(url, chunks, sender="1")

    def one(chunk_id: int, attempt: int) -> None:
        chunk = store.claim_chunk(chunk_id, attempt, timedelta(seconds=60))
        updates = [RecipientUpdate(m.recipient_id, "sent", f"m{m.recipient_id}") for m in chunk.messages]
        store.record_send(chunk, updates, requeue=False)

    done, elapsed, cpu = drive(work, one, threads)  # warm-up: pool, compiled statements, prepared plans
    store.engine.dispose()
    return {"chunks_per_s": done / elapsed, "cpu_us": cpu / (done * BATCH) * 1e6}


def drive(
    work: list[tuple[int, int]], one: Callable[[int, int], None], threads: int, profile: str | None = None
) -> tuple[int, float, float]:
    """Run `one(chunk_id, attempt)` on the first 20 of `work` (the warm-up), then on the rest from `threads`
    threads (or, with `profile`, one thread under cProfile's CPU clock, its stats written there): (chunks
    timed, wall seconds, this process's CPU seconds)."""
    for chunk_id, attempt in work[:20]:
        one(chunk_id, attempt)
    todo, lock = work[20:], threading.Lock()
    done = len(todo)

    def worker() -> None:
        while True:
            with lock:
                if not todo:
                    return
                chunk_id, attempt = todo.pop()
            one(chunk_id, attempt)

    prof = None
    if profile:
        import cProfile

        prof = cProfile.Profile(time.thread_time)  # CPU time: waits on the network count nothing
    cpu, start = time.process_time(), time.perf_counter()
    if prof is not None:
        prof.enable()
        worker()
        prof.disable()
        prof.dump_stats(profile)
    else:
        pool = [threading.Thread(target=worker) for _ in range(threads)]
        for t in pool:
            t.start()
        for t in pool:
            t.join()
    return done, time.perf_counter() - start, time.process_time() - cpu


def operation(url: str, threads: int, chunks: int, profile: str | None = None) -> dict[str, float]:
    """`threads` threads run `send_chunk` on every chunk of ONE campaign against the sandbox named by the
    SMSDISPATCH_* environment: chunks/s and this process's CPU per recipient."""
    from workers.deps import ProviderPool, WorkerDeps
    from workers.operations.send import send_chunk
    from workers.settings import DispatchSettings

    store, work = one_campaign(url, chunks, sender="")
    deps = WorkerDeps(store=store, providers=ProviderPool(), settings=DispatchSettings.from_env())
    assert len(work) == chunks, f"{len(work)} claimable chunks of {chunks}: is the campaign running?"
    lock = threading.Lock()
    outcomes: dict[str, int] = {}
    walls: dict[str, list[float]] = {}  # a chunk's wall seconds by step (the claim, the call, the record)

    def timed(owner: type, name: str, step: str) -> None:
        inner = getattr(owner, name)

        def wrapper(*a: object, **kw: object) -> object:
            started = time.perf_counter()
            try:
                return inner(*a, **kw)
            finally:
                took = time.perf_counter() - started
                with lock:
                    walls.setdefault(step, []).append(took)

        setattr(owner, name, wrapper)

    timed(Store, "claim_quick", "claim")
    timed(type(deps.providers.get("ghasedak")), "send", "provider call")
    timed(Store, "record_send", "record")

    def one(chunk_id: int, attempt: int) -> None:
        started = time.perf_counter()
        kind = str(send_chunk(chunk_id, attempt, deps).kind)
        with lock:
            outcomes[kind] = outcomes.get(kind, 0) + 1
            walls.setdefault("whole chunk", []).append(time.perf_counter() - started)

    done, elapsed, cpu = drive(work, one, threads, profile)  # warm-up: pool, HTTP sessions, statements
    store.engine.dispose()
    assert outcomes == {"accepted": chunks}, outcomes
    steps = {k: statistics.median(v) * 1000 for k, v in walls.items()}
    return {"chunks_per_s": done / elapsed, "cpu_us": cpu / (done * BATCH) * 1e6, "steps_ms": steps}


def operations(args: argparse.Namespace) -> None:
    """`--operation`: each (backend, threads) in a fresh process and database, one sandbox for all."""
    from dispatcher.sandbox.core import sandbox_env

    port = args.port
    url = f"http://127.0.0.1:{port}"
    sandbox = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "dispatcher",
            "sandbox",
            "--port",
            str(port),
            "--latency-ms",
            str(args.latency_ms),
        ]
        + (["--keep-alive"] if args.keep_alive else []),
        env={**os.environ, "PYTHONPATH": str(ROOT)},  # this script's sandbox, whichever code is measured
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    keep = ", keep-alive" if args.keep_alive else ""
    print(
        f"send operation: {args.chunks} chunks of {BATCH}, send_chunk per chunk, sandbox at {args.latency_ms:g} ms{keep}"
    )
    try:
        wait_for_sandbox(url)
        env = {**os.environ, **sandbox_env(url), "SMSDISPATCH_POLL_INTERVALS": "3600"}
        for db in ("sqlite", "postgres") if args.db == "all" else (args.db,):
            for threads in (int(t) for t in args.threads.split(",")):
                with tempfile.TemporaryDirectory() as tmp:
                    dburl = fresh_pg() if db == "postgres" else f"sqlite:///{tmp}/send.db"
                    try:
                        child = [
                            sys.executable,
                            __file__,
                            "--op-child",
                            dburl,
                            str(threads),
                            str(args.chunks),
                        ]
                        if args.profile:
                            child.append(args.profile)
                        out = subprocess.run(child, capture_output=True, text=True, env=env)
                        if out.returncode != 0:
                            raise SystemExit(out.stderr[-3000:])
                        got = json.loads(out.stdout.strip().splitlines()[-1])
                    finally:
                        if db == "postgres":
                            drop_pg(dburl)
                rate = got["chunks_per_s"]
                bound = threads * 1000 / args.latency_ms if args.latency_ms else None
                steps = ", ".join(f"{k} {v:.1f}" for k, v in got["steps_ms"].items())
                print(
                    f"  {db:<9} {threads} thread(s) {rate:7.1f} chunks/s ({rate * BATCH:6,.0f} recipients/s"
                    + (f", {rate / bound:.0%} of the bound {bound:g} chunks/s" if bound else "")
                    + f"), {got['cpu_us']:5.1f} us CPU per recipient; median wall ms: {steps}",
                    flush=True,
                )
    finally:
        sandbox.terminate()
        sandbox.wait(timeout=20)


def send_path_child(url: str, threads: int, chunks: int, sharded: bool) -> None:
    try:
        from campaigns.store import tally

        tally.SHARDED = sharded
    except ImportError:  # a revision without counters: the baseline
        pass
    print(json.dumps(send_path(url, threads, chunks)))


def send_paths(args: argparse.Namespace) -> None:
    """The table: each (backend, threads, shape) in a fresh process and a fresh database."""
    print(f"send path: {args.chunks} chunks of {BATCH}, claim + record per chunk, no HTTP")
    shapes = [("counters, sharded per writer", str(ROOT), "1")]
    shapes.append(("counters, one row per counter", str(ROOT), "0"))
    if args.baseline:
        shapes.append((f"no counters ({args.baseline})", args.baseline, "1"))
    for db in ("sqlite", "postgres") if args.db == "all" else (args.db,):
        for threads in (int(t) for t in args.threads.split(",")) if db == "postgres" else (1,):
            for shape, tree, sharded in shapes:
                if db == "sqlite" and sharded == "0":
                    continue  # SQLite has one writer and one shard
                with tempfile.TemporaryDirectory() as tmp:
                    url = fresh_pg() if db == "postgres" else f"sqlite:///{tmp}/send.db"
                    try:
                        child = [
                            sys.executable,
                            __file__,
                            "--child",
                            url,
                            str(threads),
                            str(args.chunks),
                            sharded,
                        ]
                        env = {**os.environ, "PYTHONPATH": tree}
                        out = subprocess.run(child, capture_output=True, text=True, check=True, env=env)
                        got = json.loads(out.stdout.strip().splitlines()[-1])
                    finally:
                        if db == "postgres":
                            drop_pg(url)
                rate = got["chunks_per_s"]
                print(
                    f"  {db:<9} {threads} thread(s), {shape:<40} {rate:7.1f} chunks/s "
                    f"({rate * BATCH:6,.0f} recipients/s), {got['cpu_us']:5.1f} us CPU per recipient",
                    flush=True,
                )


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--db", choices=["sqlite", "postgres", "all"], default="all")
    p.add_argument("--threads", default="1,4,8", help="PostgreSQL; SQLite has one writer: 1 thread")
    p.add_argument("--chunks", type=int, default=1500)
    p.add_argument("--baseline", help="also a checkout without counters (e.g. /work/main)")
    p.add_argument("--operation", action="store_true", help="the whole send_chunk against a sandbox")
    p.add_argument("--port", type=int, default=8796, help="--operation: the sandbox's port")
    p.add_argument("--latency-ms", type=float, default=0, help="--operation: the sandbox's latency per call")
    p.add_argument("--profile", help="--operation: write one thread's cProfile stats here")
    p.add_argument(
        "--keep-alive", action="store_true", help="--operation: the sandbox keeps HTTP/1.1 connections open"
    )
    p.add_argument("--child", nargs=4, help=argparse.SUPPRESS)
    p.add_argument("--op-child", nargs="+", help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.op_child:
        url, threads, chunks, *profile = args.op_child
        print(json.dumps(operation(url, int(threads), int(chunks), profile[0] if profile else None)))
        return
    if args.operation:
        operations(args)
        return
    if args.child:
        url, threads, chunks, sharded = args.child
        send_path_child(url, int(threads), int(chunks), sharded == "1")
        return
    send_paths(args)


if __name__ == "__main__":
    main()
