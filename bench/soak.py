"""Soak: a million recipients through 2 Celery workers and beat, one worker SIGKILLed halfway and started again.

The distributed mode as deployed, every part in its own process: `smsdispatch worker` x 2 and `smsdispatch
beat` on a Redis broker, PostgreSQL, and the sandbox (`smsdispatch sandbox`) answering after `--latency-ms`
with a transient error on `--fail-rate` of the sends. One campaign is loaded with `smsdispatch send` (held
until everything is up and the tables are measured), then beat starts it, sends it and polls every recipient
to its final state. Printed:

* throughput every `--every` seconds: recipients the provider accepted and final reports recorded (from the
  campaign's counters), each as a rate over the interval, with the machine's load;
* each worker's RSS when 10 %, 50 % and 100 % of the recipients have been accepted (the worker killed at
  `--kill-at` is a new process after it);
* the chunks housekeeping published again (`smsdispatch_chunks_republished_total`, read from each worker's
  /metrics; worker 1's just before its kill and again from its new process): queued chunks whose message
  looked lost and due retries;
* PostgreSQL's table and index sizes (`pg_relation_size`, `pg_indexes_size`, `pg_total_relation_size`)
  once the campaign is stored and again at the end;
* the ledger's verdict (the rules of tests/support/cluster.py `assert_witnessed`): the sandbox's record of
  every message it accepted against the store, number by number: each accepted exactly once, a recipient in
  a went-out state if and only if the sandbox accepted its number (with the sandbox's message id), none left
  pending or awaiting a report, each report the outcome the sandbox decided, the counters equal to a recount.

    python bench/soak.py --recipients 50000                 # a quick check, a few minutes
    python bench/soak.py --recipients 1000000 --redis-db 5  # the soak (docs/benchmarks.md)
    python bench/soak.py --recipients 200000 --grace 30     # a backlog longer than the queued grace
    python bench/soak.py --recipients 300000 --memprobe counts  # where a worker's memory goes, every 20 s

Needs the loopback Redis and PostgreSQL (user postgres). Exits 1 when the verdict finds anything wrong.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path

import psycopg
import redis
import requests

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from bench.soak_probes import cpu_s, free_port, print_sizes, republished, rss_mb, sizes, worker_up  # noqa: E402

OUT = ROOT / "bench" / "out"
EXE = [sys.executable, "-m", "dispatcher"]
ACCEPTED = ("sent", "sent_to_operator", "delivered", "undelivered", "blacklisted", "failed", "expired")
FINAL = ("delivered", "undelivered", "blacklisted", "failed", "expired")
SEED = 7
# Short waits, so a killed worker's chunks come back within the run (production: minutes). The queued
# grace stays the default (120 s) unless --grace: shorter than the backlog, it measures whether housekeeping
# publishes the chunks waiting in it again (docs/benchmarks.md, the soak).
FAST = {
    "SMSDISPATCH_POLL_INTERVALS": "3,10,30",
    "SMSDISPATCH_LEASE_MARGIN": "5",
    "SMSDISPATCH_GHASEDAK_TIMEOUT": "2,5",
    "SMSDISPATCH_GHASEDAK_RECONCILE_GRACE": "5",
    "SMSDISPATCH_VISIBILITY_TIMEOUT": "120",
}


class Soak:
    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.db = args.pg_db
        self.url = f"postgresql+psycopg://postgres@127.0.0.1:5432/{self.db}"
        self.sandbox_url = f"http://127.0.0.1:{args.port}"
        self.tmp = OUT / "soak"
        self.tmp.mkdir(parents=True, exist_ok=True)
        self.procs: list[subprocess.Popen] = []
        self.metrics_ports = [free_port(), free_port()]  # worker i's /metrics
        from dispatcher.sandbox.core import sandbox_env

        self.env = {
            **os.environ,
            **sandbox_env(self.sandbox_url),
            **FAST,
            "SMSDISPATCH_BROKER_URL": f"redis://127.0.0.1:6379/{args.redis_db}",
            "SMSDISPATCH_DATABASE_URL": self.url,
            **({"SMSDISPATCH_QUEUED_GRACE": f"{args.grace:g}"} if args.grace is not None else {}),
        }
        if args.memprobe:  # bench/memprobe/sitecustomize.py: each worker writes memprobe/<pid>.jsonl
            probe = self.tmp / "memprobe"
            probe.mkdir(exist_ok=True)
            for old in probe.glob("*.jsonl"):
                old.unlink()
            self.env["PYTHONPATH"] = os.pathsep.join(
                [str(ROOT / "bench" / "memprobe"), *filter(None, [os.environ.get("PYTHONPATH")])]
            )
            self.env["SMSDISPATCH_MEMPROBE"] = str(probe)
            if args.memprobe == "trace":
                self.env["SMSDISPATCH_MEMPROBE_TRACE"] = "1"

    def spawn(self, *args: str) -> subprocess.Popen:
        log = open(self.tmp / f"{args[0]}-{len(self.procs)}.log", "w")  # noqa: SIM115 - closed with the process
        proc = subprocess.Popen(
            [*EXE, *args], env=self.env, cwd=self.tmp, stdout=log, stderr=subprocess.STDOUT
        )
        self.procs.append(proc)
        return proc

    def worker(self, i: int) -> subprocess.Popen:
        return self.spawn(
            "worker", "--metrics-port", str(self.metrics_ports[i]), "-c", str(self.args.concurrency),
            "-n", f"soak{i}@%h", "--loglevel", "WARNING",
        )  # fmt: skip

    def stop(self) -> None:
        for p in self.procs:
            if p.poll() is None:
                p.terminate()
        for p in self.procs:
            try:
                p.wait(timeout=30)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()

    # ---- setting up ------------------------------------------------------------------------------------
    def prepare(self) -> int:
        a = self.args
        with psycopg.connect(host="127.0.0.1", user="postgres", dbname="postgres", autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{self.db}" WITH (FORCE)')
            conn.execute(f'CREATE DATABASE "{self.db}"')
        redis.Redis.from_url(self.env["SMSDISPATCH_BROKER_URL"]).flushdb()
        src = OUT / f"soak_{a.recipients}.csv"
        if not src.exists():
            with src.open("w") as fh:
                fh.write("mobile,name\n")
                fh.writelines(f"0912{i:07d},n{i}\n" for i in range(a.recipients))
        sandbox = self.spawn(
            "sandbox", "--port", str(a.port), "--latency-ms", str(a.latency_ms), "--fail-rate", str(a.fail_rate),
            "--seed", str(SEED), "--final-after", "1",
        )  # fmt: skip
        for _ in range(100):
            try:
                requests.get(self.sandbox_url + "/_sandbox/messages?limit=0", timeout=1)
                break
            except requests.RequestException:
                time.sleep(0.2)
        self.sandbox = sandbox
        started = time.perf_counter()
        done = subprocess.run(
            [*EXE, "send", str(src), "--provider", "ghasedak", "--message", "Soak {name}", "--json"]
            + ["--at", "2099-01-01T00:00"],
            env=self.env, cwd=self.tmp, capture_output=True, text=True,
        )  # fmt: skip
        if done.returncode != 0:
            raise SystemExit(f"send failed ({done.returncode}): {done.stderr[-2000:]}")
        cid = json.loads(done.stdout.strip().splitlines()[-1])["campaign"]
        print(f"campaign {cid}: {a.recipients:,} recipients stored in {time.perf_counter() - started:.0f} s")
        return cid

    # ---- the run -----------------------------------------------------------------------------------------
    def run(self) -> int:
        from campaigns.store import Store, campaigns_t

        a = self.args
        cid = self.prepare()
        print_sizes("once the campaign is stored", sizes(self.db), a.recipients)
        workers = [self.worker(0), self.worker(1)]
        self.spawn("beat", "-s", str(self.tmp / "beat-schedule"))
        # Both workers consuming before the campaign starts: on a loaded machine a worker took 40 s to come
        # up, and a line nobody takes from for the queued grace is published again in full (by design).
        deadline = time.monotonic() + 300
        while not all(worker_up(port) for port in self.metrics_ports) and time.monotonic() < deadline:
            time.sleep(0.5)
        time.sleep(2)  # beat connects
        store = Store.from_url(self.url)
        with store.engine.begin() as conn:  # due now: beat's housekeeping starts and publishes it
            conn.execute(
                campaigns_t.update().where(campaigns_t.c.id == cid).values(send_at=datetime.now(UTC))
            )
        print(
            f"started: 2 workers x {a.concurrency} threads, beat, sandbox at {a.latency_ms:g} ms with "
            f"{a.fail_rate:.0%} transient send errors; Redis db {a.redis_db}, PostgreSQL {self.db}",
            flush=True,
        )
        t0 = time.monotonic()
        marks = {int(a.recipients * f): f"{f:.0%}" for f in (0.1, 0.5, 1.0)}
        rss: list[str] = []
        killed = False
        republished_before_kill = cpu_before_kill = 0.0
        first = all_accepted = None
        last_t, last_acc, last_fin = t0, 0, 0
        broker = redis.Redis.from_url(self.env["SMSDISPATCH_BROKER_URL"])
        while True:
            time.sleep(0.5)  # marks and the kill within half a second; a line every `--every` s
            view = store.campaign(cid)
            counts = view.counts
            acc = sum(counts.get(s, 0) for s in ACCEPTED)
            fin = sum(counts.get(s, 0) for s in FINAL)
            now = time.monotonic()
            first = first or (now if acc else None)
            mem = [rss_mb(w.pid) if w.poll() is None else 0.0 for w in workers]
            for mark in sorted(m for m in marks if acc >= m):
                rss.append(f"{marks.pop(mark)} accepted ({acc:,}): " + " / ".join(f"{m:.0f} MB" for m in mem))
            if not killed and acc >= a.recipients * a.kill_at:
                republished_before_kill = republished(self.metrics_ports[1])
                cpu_before_kill = cpu_s(workers[1].pid)
                os.kill(workers[1].pid, signal.SIGKILL)
                workers[1].wait()
                workers[1] = self.worker(1)
                killed = True
                print(
                    f"worker 1 SIGKILLed at {acc:,} accepted, started again (pid {workers[1].pid})",
                    flush=True,
                )
            done = view.state == "completed" and fin + counts.get("unknown", 0) == a.recipients
            if acc + counts.get("unknown", 0) >= a.recipients and all_accepted is None:
                all_accepted = now
            if now - last_t >= a.every or done:
                span = now - last_t
                print(
                    f"t={now - t0:6.0f} s  accepted {acc:>9,} ({(acc - last_acc) / span:7,.0f}/s)  final "
                    f"{fin:>9,} ({(fin - last_fin) / span:7,.0f}/s)  unknown {counts.get('unknown', 0):,}  "
                    f"queued messages {broker.llen('sms.send'):,}  "
                    "worker RSS "
                    + " / ".join(f"{m:.0f}" for m in mem)
                    + f" MB  load {os.getloadavg()[0]:.1f}",
                    flush=True,
                )
                last_t, last_acc, last_fin = now, acc, fin
            if done:
                break
            if now - t0 > a.timeout:
                print(f"timed out after {a.timeout:.0f} s: {counts}")
                break
        end = time.monotonic()
        first = first or t0
        sending = (all_accepted or end) - first
        print(
            f"sent: {a.recipients:,} in {sending:.0f} s from the first acceptance ({a.recipients / sending:,.0f}/s); "
            f"every report final {end - first:.0f} s after it ({a.recipients / (end - first):,.0f}/s); "
            f"states {counts}",
            flush=True,
        )
        again = [republished(port) for port in self.metrics_ports]
        cpu = sum(cpu_s(p.pid) for p in self.procs if p is not self.sandbox) + cpu_before_kill
        print(f"CPU of the workers and beat (user + system): {cpu:,.1f} s", flush=True)
        print(
            f"housekeeping published {again[0] + again[1] + republished_before_kill:,.0f} chunks again "
            f"(worker 0: {again[0]:,.0f}; worker 1: {republished_before_kill:,.0f} before the kill, "
            f"{again[1]:,.0f} after it), grace {self.env.get('SMSDISPATCH_QUEUED_GRACE', '120 (default)')} s",
            flush=True,
        )
        print("worker RSS (worker 0 / worker 1; worker 1 is a new process after the kill):")
        for line in rss:
            print(f"  {line}")
        self.stop_workers(workers)
        print_sizes("at the end", sizes(self.db), a.recipients)
        ok = self.verdict(store, cid)
        store.engine.dispose()
        return 0 if ok else 1

    def stop_workers(self, workers: list[subprocess.Popen]) -> None:
        for p in self.procs:
            if p is not self.sandbox and p.poll() is None:
                p.terminate()
        for p in self.procs:
            if p is not self.sandbox:
                p.wait(timeout=60)

    # ---- the ledger's verdict ------------------------------------------------------------------------
    def verdict(self, store, cid: int) -> bool:  # noqa: ANN001
        from dispatcher.sandbox.core import SandboxState, digits
        from tests.support.counters import differences

        ids: dict[str, list[str]] = {}
        offset, page = 0, 100_000
        while True:
            got = requests.get(
                f"{self.sandbox_url}/_sandbox/messages",
                params={"provider": "ghasedak", "offset": offset, "limit": page},
                timeout=300,
            ).json()
            for m in got:
                ids.setdefault(m["phone"], []).append(m["message_id"])
            offset += len(got)
            if len(got) < page:
                break
        decided = SandboxState(seed=SEED)
        problems: Counter[str] = Counter()
        examples: dict[str, str] = {}

        def wrong(kind: str, phone: str) -> None:
            problems[kind] += 1
            examples.setdefault(kind, phone)

        seen, refused = 0, 0
        for row in store.recipients_rows(cid):
            seen += 1
            phone, state = digits(row["phone"]), row["state"]
            mids = ids.pop(phone, [])
            if len(mids) > 1:
                wrong("accepted more than once", phone)
            if state in ("pending", "sent", "sent_to_operator"):
                wrong(f"left {state}", phone)
            elif (
                state == "unknown"
            ):  # held: nobody could say whether it went out; at most once, with the reason
                if not row["error"]:
                    wrong("unknown without a reason", phone)
            elif mids:
                if row["provider_message_id"] != mids[-1]:
                    wrong("store and sandbox ids differ", phone)
                if state != decided.outcome(phone):
                    wrong("report is not the sandbox's outcome", phone)
            elif state in ("failed", "blacklisted"):  # a refusal, or retries used up: never accepted
                refused += 1
            else:
                wrong(f"{state} in the store but never accepted", phone)
        if ids:
            problems["accepted numbers of no recipient"] += len(ids)
        with store.engine.connect() as conn:
            from campaigns.store.counts import recount, tallies

            counters = differences(tallies(conn, cid), recount(conn, cid))
        print(
            f"ledger: the sandbox accepted {offset:,} messages for {seen:,} recipients ({refused:,} failed "
            "without being accepted); "
            + (
                "every number accepted exactly once, none lost, every report the sandbox's outcome"
                if not problems
                else f"PROBLEMS {dict(problems)}, e.g. {examples}"
            )
            + ("; counters equal a recount" if not counters else f"; counters differ: {counters[:5]}"),
            flush=True,
        )
        return not problems and not counters


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--recipients", type=int, default=1_000_000)
    ap.add_argument("--concurrency", type=int, default=8, help="threads per worker")
    ap.add_argument("--latency-ms", type=float, default=20)
    ap.add_argument(
        "--fail-rate", type=float, default=0.03, help="share of sends answered with a transient error"
    )
    ap.add_argument("--kill-at", type=float, default=0.5, help="share accepted when worker 1 is SIGKILLed")
    ap.add_argument("--every", type=float, default=10, help="seconds between throughput lines")
    ap.add_argument("--timeout", type=float, default=3600)
    ap.add_argument("--redis-db", type=int, default=5)
    ap.add_argument(
        "--grace", type=float, default=None, help="SMSDISPATCH_QUEUED_GRACE, s (default: the setting's, 120)"
    )
    ap.add_argument("--pg-db", default="smsd_soak")
    ap.add_argument("--port", type=int, default=8831)
    ap.add_argument(
        "--memprobe",
        choices=("counts", "trace"),
        help="workers write RSS, malloc and object counts (trace: and tracemalloc's growth) every 20 s to "
        "bench/out/soak/memprobe/<pid>.jsonl (bench/memprobe/sitecustomize.py)",
    )
    ap.add_argument("--keep-db", action="store_true", help="leave the PostgreSQL database for a look")
    args = ap.parse_args()
    print(f"soak: {args.recipients:,} recipients, machine load {os.getloadavg()[0]:.1f} at start", flush=True)
    soak = Soak(args)
    try:
        return soak.run()
    finally:
        soak.stop()
        redis.Redis.from_url(soak.env["SMSDISPATCH_BROKER_URL"]).flushdb()
        if not args.keep_db:
            with psycopg.connect(host="127.0.0.1", user="postgres", dbname="postgres", autocommit=True) as c:
                c.execute(f'DROP DATABASE IF EXISTS "{args.pg_db}" WITH (FORCE)')


if __name__ == "__main__":
    sys.exit(main())
