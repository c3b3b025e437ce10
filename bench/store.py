"""Benchmark: `smsdispatch send` of the messy million to a stored campaign, with other campaigns' rows
already in the store.

    python bench/store.py --rows 1000000 --others 10000000 --db sqlite,postgres --runs 2 \\
        [--code /path/to/other/checkout] [--drop-prefill]

Each run is the real command in a fresh process (`python -m dispatcher send FILE --provider ghasedak
--message '…{name}…' --yes --json --at <a year ahead>`): imports, the preflight's pass over the file
(load, normalise, dedupe, rejects file, tally, the credit call to the in-process sandbox), planning and
the creating transaction, until the campaign is stored. It is scheduled a year ahead and the settings
name a broker (distributed mode, Redis `SMSDISPATCH_BENCH_BROKER_URL`, default DB 3), so nothing is sent
and nothing is published: the process ends once the campaign is stored. Printed per run: wall seconds,
the process's CPU seconds (user + sys, from wait4) and peak RSS (ru_maxrss), and on PostgreSQL the CPU
seconds of the server backends serving it (sampled from /proc every 20 ms by the database's name in
their process title, so the last <20 ms of a backend may be missed). The load average is printed with
every run: wall times on a shared machine say little, CPU seconds more.

The other campaigns' rows (`--others`, completed campaigns of 1,000,000 recipients in chunks of 100,
built straight in SQL by bench/reads.py's `fill`, counters backfilled) are made once and kept: a SQLite
file bench/out/prefill-N.db copied for each run, a PostgreSQL database smsd_bench_prefill_N used as the
template of each run's database. `--drop-prefill` deletes them at the end.

`--code` runs the command from other checkouts too (PYTHONPATH), interleaved run by run with this one:
`--code /tmp/base` compares main with this branch under the same load. The file is made once by
dispatcher/demo/messy.py and cached in bench/out/ (bench/load_csv.py).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from datetime import timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.load_csv import OUT, csv_path  # noqa: E402

MESSAGE = "سلام {name}، تخفیف ویژه. لغو11"
OTHER_SIZE = 1_000_000
AGE = timedelta(days=60)  # the other campaigns' sends: older than every window the preflight reads
BROKER = os.environ.get("SMSDISPATCH_BENCH_BROKER_URL", "redis://127.0.0.1:6379/3")
PG = {"host": "127.0.0.1", "user": "postgres"}


def pg_admin(sql: str) -> None:
    import psycopg

    with psycopg.connect(**PG, dbname="postgres", autocommit=True) as conn:
        conn.execute(sql)


def pg_exists(name: str) -> bool:
    import psycopg

    with psycopg.connect(**PG, dbname="postgres", autocommit=True) as conn:
        return conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone() is not None


def pg_url(name: str) -> str:
    return f"postgresql+psycopg://postgres@127.0.0.1:5432/{name}"


def build_prefill(url: str, others: int, recent: bool) -> None:
    """`others` recipients in completed campaigns of OTHER_SIZE, straight in SQL, with their counters, sent
    AGE ago: outside the frequency cap, the duplicate window and the blacklist memory, so the preflight
    has no recent sends to read (what 10 M recent sends cost it is measured separately: --recent)."""
    from sqlalchemy import text

    from bench import reads
    from bench.reads import _totals, backfill, fill, new_campaign
    from campaigns.store import Store

    now_of = reads._now
    if not recent:
        reads._now = lambda conn: _aged(now_of(conn))  # fill's send times, AGE earlier
    store = Store.from_url(url)
    store.migrate()
    t0 = time.perf_counter()
    with store.engine.begin() as conn:
        for k in range(-(-others // OTHER_SIZE)):
            size = min(OTHER_SIZE, others - k * OTHER_SIZE)
            cid = new_campaign(conn, f"prefill {k}", "completed", route=False)
            fill(conn, cid, size, 10_000_000 + k * OTHER_SIZE, running=False)
            _totals(conn, cid)
            print(f"  prefill: campaign {k + 1}, {time.perf_counter() - t0:.0f} s", flush=True)
        backfill(conn)
        if conn.dialect.name == "postgresql":  # `fill` numbers its chunks itself: move the sequence past them
            conn.execute(
                text("SELECT setval(pg_get_serial_sequence('chunks', 'id'), (SELECT max(id) FROM chunks))")
            )
    with store.engine.connect() as conn:
        if conn.dialect.name == "postgresql":
            conn.execution_options(isolation_level="AUTOCOMMIT").execute(text("VACUUM ANALYZE"))
    store.engine.dispose()  # SQLite: the last connection to close checkpoints the WAL into the file
    print(f"  prefill of {others:,} rows built in {time.perf_counter() - t0:.0f} s", flush=True)


def _aged(now: object) -> object:
    """`bench.reads._now`'s value (naive ISO text on SQLite, a datetime on PostgreSQL), AGE earlier."""
    from datetime import datetime

    if isinstance(now, str):
        return (datetime.fromisoformat(now) - AGE).isoformat(" ")
    return now - AGE  # type: ignore[operator]


def _prefill_name(others: int, recent: bool) -> str:
    return f"prefill{'-recent' if recent else ''}-{others}"


def prefill(db: str, others: int, recent: bool) -> str:
    """The prefilled store (made once): a SQLite file, or a PostgreSQL database name."""
    if db == "sqlite":
        path = OUT / f"{_prefill_name(others, recent)}.db"
        if not path.exists():
            partial = path.with_suffix(".partial")
            for suffix in ("", "-wal", "-shm"):
                Path(f"{partial}{suffix}").unlink(missing_ok=True)
            build_prefill(f"sqlite:///{partial}", others, recent)
            partial.rename(path)
        return str(path)
    name = "smsd_bench_" + _prefill_name(others, recent).replace("-", "_")
    if not pg_exists(name):
        partial = name + "_partial"
        pg_admin(f'DROP DATABASE IF EXISTS "{partial}" WITH (FORCE)')
        pg_admin(f'CREATE DATABASE "{partial}"')
        build_prefill(pg_url(partial), others, recent)
        pg_admin(f'ALTER DATABASE "{partial}" RENAME TO "{name}"')
    return name


def drop_prefill(db: str, others: int, recent: bool) -> None:
    name = _prefill_name(others, recent)
    if db == "sqlite":
        for suffix in ("", "-wal", "-shm"):
            Path(f"{OUT / name}.db{suffix}").unlink(missing_ok=True)
    else:
        pg_admin(f'DROP DATABASE IF EXISTS "smsd_bench_{name.replace("-", "_")}" WITH (FORCE)')


class BackendClock:
    """CPU seconds of the PostgreSQL backends serving database `name`, sampled from /proc."""

    def __init__(self, name: str) -> None:
        self.title = f" postgres {name} ".encode()  # "postgres: 15/main: postgres DB 127.0.0.1(…) idle"
        self.seen: dict[int, float] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self.tick = os.sysconf("SC_CLK_TCK")

    def _run(self) -> None:
        while not self._stop.is_set():
            for entry in os.scandir("/proc"):
                if not entry.name.isdigit():
                    continue
                try:
                    with open(f"/proc/{entry.name}/cmdline", "rb") as fh:
                        title = fh.read()
                    if not title.startswith(b"postgres:") or self.title not in title:
                        continue
                    with open(f"/proc/{entry.name}/stat") as fh:
                        fields = fh.read().rsplit(")", 1)[1].split()
                except OSError:
                    continue
                self.seen[int(entry.name)] = (int(fields[11]) + int(fields[12])) / self.tick
            self._stop.wait(0.02)

    def __enter__(self) -> BackendClock:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()

    @property
    def seconds(self) -> float:
        return sum(self.seen.values())


def run_once(db: str, source: str, code: Path, file: Path, env: dict[str, str], profile: Path | None) -> dict:
    """One `send` in a fresh process against a fresh copy of the prefilled store."""
    work = Path(tempfile.mkdtemp(prefix="bench-store-"))
    if db == "sqlite":
        target = OUT / "store-run.db"
        for suffix in ("", "-wal", "-shm"):
            Path(f"{target}{suffix}").unlink(missing_ok=True)
        shutil.copyfile(source, target)
        url, name = f"sqlite:///{target}", ""
    else:
        name = "smsd_bench_run"
        pg_admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        pg_admin(f'CREATE DATABASE "{name}" TEMPLATE "{source}" STRATEGY FILE_COPY')
        url = pg_url(name)
    at = (time.time() + timedelta(days=365).total_seconds()) // 60 * 60
    at_text = time.strftime("%Y-%m-%dT%H:%M+00:00", time.gmtime(at))
    cmd = [sys.executable, *(["-m", "cProfile", "-o", str(profile)] if profile else []), "-m", "dispatcher"]
    cmd += ["send", str(file), "--provider", "ghasedak", "--message", MESSAGE, "--yes", "--json"]
    cmd += ["--at", at_text, "--allow-partial", "--rejects", str(work / "rejects.csv")]
    child_env = {**env, "SMSDISPATCH_DATABASE_URL": url, "PYTHONPATH": str(code)}
    load = os.getloadavg()[0]
    clock = BackendClock(name) if name else None
    try:
        if clock:
            clock.__enter__()
        with (work / "out").open("w") as out, (work / "err").open("w") as err:
            start = time.perf_counter()
            proc = subprocess.Popen(cmd, env=child_env, cwd=work, stdout=out, stderr=err)
            _, status, usage = os.wait4(proc.pid, 0)  # this child's own rusage, peak RSS included
            wall = time.perf_counter() - start
            proc.returncode = os.waitstatus_to_exitcode(status)
    finally:
        if clock:
            clock.__exit__()
    result: dict = {
        "wall": wall,
        "cpu": usage.ru_utime + usage.ru_stime,
        "rss": usage.ru_maxrss / 1024,
        "load": load,
        "backend": clock.seconds if clock else None,
    }
    if proc.returncode != 0:
        lines = [line for line in (work / "err").read_text().splitlines() if "sqlalche.me" not in line]
        result["error"] = (lines or ["?"])[-1][:300]
    else:
        result["recipients"] = json.loads((work / "out").read_text())["recipients"]
    shutil.rmtree(work, ignore_errors=True)
    if db == "sqlite":
        for suffix in ("", "-wal", "-shm"):
            Path(f"{OUT / 'store-run.db'}{suffix}").unlink(missing_ok=True)
    else:
        pg_admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description="send of a messy file to a stored campaign, timed")
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--others", type=int, default=10_000_000, help="other campaigns' rows in the store")
    parser.add_argument("--db", default="sqlite,postgres", help="sqlite, postgres or both, comma-separated")
    parser.add_argument("--runs", type=int, default=1)
    parser.add_argument("--code", action="append", default=[], help="another checkout to run, interleaved")
    parser.add_argument(
        "--code-only", action="store_true", help="run the --code checkouts only, not this one"
    )
    parser.add_argument("--profile", action="store_true", help="cProfile each run to bench/out/store-*.prof")
    parser.add_argument(
        "--recent",
        action="store_true",
        help="the other campaigns sent just now (the preflight reads them all)",
    )
    parser.add_argument("--drop-prefill", action="store_true", help="delete the prefilled stores at the end")
    args = parser.parse_args()

    from dispatcher.sandbox.core import SandboxState, sandbox_env
    from dispatcher.sandbox.server import start

    OUT.mkdir(parents=True, exist_ok=True)
    file = csv_path(args.rows, False).resolve()
    sandbox = start(SandboxState(seed=1))
    env = {
        **os.environ,
        **sandbox_env(sandbox.url),  # the credit call proves the key; a scheduled campaign sends nothing
        "SMSDISPATCH_GHASEDAK_PRICE": "1000",
        "SMSDISPATCH_BROKER_URL": BROKER,
        "SMSDISPATCH_OPTOUT_EVERY": "0",
    }
    codes = [*([] if args.code_only else [ROOT]), *[Path(c).resolve() for c in args.code]]
    dbs = [d.strip() for d in args.db.split(",") if d.strip()]
    print(
        f"file {file.name} ({args.rows:,} rows), {args.others:,} other rows in the store, cpus={os.cpu_count()}"
    )
    print(
        f"{'store':9} {'code':28} {'wall s':>7} {'cpu s':>6} {'peak RSS':>9} {'backend cpu s':>13} {'load':>5}"
    )
    try:
        for db in dbs:
            source = prefill(db, args.others, args.recent)
            for run in range(args.runs):
                for code in codes:
                    profile = OUT / f"store-{db}-{code.name}-{run}.prof" if args.profile else None
                    r = run_once(db, source, code, file, env, profile)
                    label = str(code)[-28:]
                    if "error" in r:
                        print(f"{db:9} {label:28} failed: {r['error']}", flush=True)
                        continue
                    backend = f"{r['backend']:.2f}" if r["backend"] is not None else "-"
                    print(
                        f"{db:9} {label:28} {r['wall']:7.2f} {r['cpu']:6.2f} {r['rss']:6.0f} MB "
                        f"{backend:>13} {r['load']:5.2f}   {r['recipients']:,} stored",
                        flush=True,
                    )
    finally:
        sandbox.stop()
        if args.drop_prefill:
            for db in dbs:
                drop_prefill(db, args.others, args.recent)


if __name__ == "__main__":
    main()
