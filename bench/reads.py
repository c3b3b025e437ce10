"""Benchmark: the reads `status`, `summary`, `list` and the store's counts at ten million recipients.

    python bench/reads.py --recipients 10000000 --others 20 --other-size 100000 --db all

Builds, straight in SQL (fast bulk inserts, not through the loader), one running campaign of N recipients in
chunks of 100 (60 % of its chunks accepted, a tenth of those moved to a second provider by failover, then
unknown, retry, sending and queued chunks; sends spread over the last 30 minutes, so the last five hold a
sixth of them), plus `--others` completed campaigns beside it, and its counters as migration 0010 backfills
them. Then times each read in this process, median of `--runs`: wall time, and query time (the database
calls alone, summed from SQLAlchemy's cursor events), against the store's own API and the application
layer's use cases (`dispatcher.app`: status, summary, list). For reference it also times what the reads
did before the counters: the GROUP BY over the campaign's rows (`counts.recount`) and the rate's indexed
count (`Store.sent_since`).

What the counters cost on the send path is `bench/send_path.py`.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import statistics
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import event, insert, text
from sqlalchemy.engine import Engine

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from bench.common import drop_pg, fresh_pg  # noqa: E402
from campaigns.clock import utcnow  # noqa: E402
from campaigns.store import Store  # noqa: E402
from campaigns.store.sql import campaigns_t  # noqa: E402

BATCH = 100
# chunk c of n: accepted below 60 %, then unknown (2 %), retry (1 %), sending (1 %), queued (the rest)
_CHUNK_STATE = """CASE WHEN {c} * 100 < 60 * {n} THEN 'accepted' WHEN {c} * 100 < 62 * {n} THEN 'unknown'
 WHEN {c} * 100 < 63 * {n} THEN 'retry' WHEN {c} * 100 < 64 * {n} THEN 'sending' ELSE 'queued' END"""
# a recipient j of an accepted chunk: 40 % awaiting a report, 45 % delivered, failed (half of them by a
# report), undelivered, sent to operator; of an unknown chunk: held unknown; else pending
_RECIPIENT_STATE = """CASE WHEN {cs} = 'accepted' THEN
   CASE WHEN {j} % 20 < 8 THEN 'sent' WHEN {j} % 20 < 17 THEN 'delivered' WHEN {j} % 20 = 17 THEN 'failed'
        WHEN {j} % 20 = 18 THEN 'undelivered' ELSE 'sent_to_operator' END
 WHEN {cs} = 'unknown' THEN 'unknown' ELSE 'pending' END"""
_SERIES = {
    "postgresql": "generate_series(0, {n} - 1) AS g(i)",
    "sqlite": "(WITH RECURSIVE s(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM s WHERE i < {n} - 1) SELECT i FROM s) AS g",
}
_AGO = {
    "postgresql": "CAST(:now AS timestamptz) - make_interval(secs => {s})",
    "sqlite": "datetime(:now, '-' || ({s}) || ' seconds')",
}
_AHEAD = {
    "postgresql": "CAST(:now AS timestamptz) + make_interval(secs => {s})",
    "sqlite": "datetime(:now, '+' || ({s}) || ' seconds')",
}


def fill(conn, cid: int, n: int, phone0: int, running: bool) -> None:  # noqa: ANN001
    """N recipients of campaign `cid` in chunks of BATCH, with states as the module docstring says (a
    completed campaign: every chunk accepted, nothing awaiting)."""
    d = conn.dialect.name
    nch = -(-n // BATCH)
    first = conn.execute(text("SELECT COALESCE(MAX(id), 0) + 1 FROM chunks")).scalar_one()
    cstate = _CHUNK_STATE.format(c="i", n=nch) if running else "'accepted'"
    provider = f"CASE WHEN i % 10 = 0 AND i * 100 < 60 * {nch} THEN 'mediapayamak' ELSE NULL END"
    conn.execute(
        text(
            f"""INSERT INTO chunks (id, campaign_id, seq, state, attempt, size, parts, cost_rial, updated_at,
                queued_at, next_attempt_at, sending_since, provider, last_error)
            SELECT :first + i, :cid, i, {cstate}, 1, {BATCH}, {BATCH + BATCH // 7}, 1200 * {BATCH}, :now,
                   {_AGO[d].format(s="i % 600")}, {_AHEAD[d].format(s="i % 300")}, {_AGO[d].format(s="i % 1800")},
                   {provider if running else "NULL"}, 'bench'
            FROM {_SERIES[d].format(n=nch)}"""
        ),
        {"first": first, "cid": cid, "now": _now(conn)},
    )
    # recipients: i-th of the campaign, in chunk c = i / BATCH
    c = f"(i / {BATCH})"
    cs = _CHUNK_STATE.format(c=c, n=nch) if running else "'accepted'"
    state = _RECIPIENT_STATE.format(cs=cs, j="i")
    if not running:
        state = "CASE WHEN i % 20 < 17 THEN 'delivered' WHEN i % 20 = 17 THEN 'failed' ELSE 'undelivered' END"
    sent = f"CASE WHEN {cs} = 'accepted' THEN {_AGO[d].format(s='1800 - (' + c + ' * 1800) / ' + str(max(nch * 60 // 100, 1)))} END"
    conn.execute(
        text(
            f"""INSERT INTO recipients (campaign_id, chunk_id, row, phone, fields, text, parts, state, attempts,
                polls, sent_at, next_poll_at, cost_rial, updated_at, provider_message_id)
            SELECT :cid, :first + {c}, i + 2, '+98' || CAST(9120000000 + :phone0 + i AS TEXT), '{{}}', NULL,
                   CASE WHEN i % 7 = 0 THEN 2 ELSE 1 END, {state}, 1,
                   CASE WHEN i % 40 = 17 THEN 1 ELSE 0 END, {sent},
                   CASE WHEN {state} IN ('sent', 'sent_to_operator') THEN {_AHEAD[d].format(s="i % 900")} END,
                   CASE WHEN {state} = 'delivered' THEN 1150.5 END, :now, CAST(i AS TEXT)
            FROM {_SERIES[d].format(n=n)}"""
        ),
        {"first": first, "cid": cid, "phone0": phone0, "now": _now(conn)},
    )


def _now(conn) -> Any:  # noqa: ANN001
    now = utcnow()
    return now.replace(tzinfo=None).isoformat(" ") if conn.dialect.name == "sqlite" else now


def new_campaign(conn, name: str, state: str, route: bool) -> int:  # noqa: ANN001
    now = utcnow()
    return conn.execute(
        insert(campaigns_t)
        .values(
            name=name,
            provider="ghasedak",
            account="ghasedak:bench",
            sender="3000",
            message="سلام، تخفیف ویژه",
            personalised=False,
            state=state,
            on_unknown="hold",
            ref_prefix="100000",
            recipients=0,
            rejected=0,
            chunks=0,
            parts=0,
            source_file="bench.csv",
            rejects_file="",
            columns="[]",
            route=json.dumps(["ghasedak", "mediapayamak"]) if route else None,
            estimated_rial=0,
            created_at=now - timedelta(hours=1),
            updated_at=now,
            started_at=now - timedelta(minutes=30),
            finished_at=None if state == "running" else now,
        )
        .returning(campaigns_t.c.id)
    ).scalar_one()


def backfill(conn) -> None:  # noqa: ANN001
    """The counters of every campaign, as migration 0010 backfills them (the bench's rows bypass the store)."""
    path = ROOT / "campaigns" / "migrations" / "versions" / "0016_counters.py"
    spec = importlib.util.spec_from_file_location("m0010", path)
    m = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(m)
    conn.execute(text("DELETE FROM campaign_counts"))
    conn.execute(text(m._RECIPIENTS))
    conn.execute(text(m._CHUNKS))
    minute = m._MINUTE[conn.dialect.name]
    conn.execute(text(m._SENT.format(minute=minute, provider=m._PROVIDER)))


def build(store: Store, n: int, others: int, other_size: int) -> int:
    t0 = time.perf_counter()
    with store.engine.begin() as conn:
        for k in range(others):
            cid = new_campaign(conn, f"done {k}", "completed", route=False)
            fill(conn, cid, other_size, 10_000_000 + k * other_size, running=False)
            _totals(conn, cid)
        big = new_campaign(conn, "big", "running", route=True)
        fill(conn, big, n, 0, running=True)
        _totals(conn, big)
        backfill(conn)
    print(
        f"  built {n:,} + {others} x {other_size:,} recipients in {time.perf_counter() - t0:.0f} s",
        flush=True,
    )
    t0 = time.perf_counter()
    with store.engine.connect() as conn:
        if conn.dialect.name == "postgresql":
            conn.execution_options(isolation_level="AUTOCOMMIT").execute(text("VACUUM ANALYZE"))
    print(f"  vacuum/analyze {time.perf_counter() - t0:.0f} s", flush=True)
    return big


def _totals(conn, cid: int) -> None:  # noqa: ANN001
    conn.execute(
        text(
            "UPDATE campaigns SET recipients = (SELECT count(*) FROM recipients WHERE campaign_id = :c), "
            "chunks = (SELECT count(*) FROM chunks WHERE campaign_id = :c), "
            "parts = (SELECT COALESCE(sum(parts), 0) FROM chunks WHERE campaign_id = :c), "
            "estimated_rial = (SELECT COALESCE(sum(cost_rial), 0) FROM chunks WHERE campaign_id = :c) WHERE id = :c"
        ),
        {"c": cid},
    )


class QueryClock:
    """Sums the time spent in the database driver's execute calls, for every engine of this process."""

    def __init__(self) -> None:
        self.seconds = 0.0
        self.statements = 0
        self._started = threading.local()
        event.listen(Engine, "before_cursor_execute", self._before)
        event.listen(Engine, "after_cursor_execute", self._after)

    def _before(self, *args: Any) -> None:
        self._started.at = time.perf_counter()

    def _after(self, conn, cursor, statement, parameters, context, executemany) -> None:  # noqa: ANN001
        took = time.perf_counter() - self._started.at
        self.seconds += took
        self.statements += 1
        if self.log is not None:
            self.log.append((took, statement, parameters, conn.engine.url))

    log: list[Any] | None = None


def timed(clock: QueryClock, fn: Callable[[], Any], runs: int) -> tuple[float, float, int]:
    """(median wall ms, median query ms, statements per call)."""
    fn()  # warm: pools, compiled statements, the OS page cache
    walls, queries = [], []
    for _ in range(runs):
        clock.seconds, clock.statements = 0.0, 0
        start = time.perf_counter()
        fn()
        walls.append((time.perf_counter() - start) * 1000)
        queries.append(clock.seconds * 1000)
    return statistics.median(walls), statistics.median(queries), clock.statements


def read_cases(
    store: Store, url: str, big: int, args: argparse.Namespace
) -> list[tuple[str, Callable[[], Any]]]:
    """(name, read) for each read timed, against the store and the application layer's use cases."""
    from campaigns.progress import read_progress
    from campaigns.store import counts
    from dispatcher import app
    from dispatcher.config import AppSettings, DispatchSettings

    settings = AppSettings(DispatchSettings(database_url=url))
    now = utcnow()
    cases: list[tuple[str, Callable[[], Any]]] = [
        ("Store.campaign (counts by state, chunks, cost)", lambda: store.campaign(big)),
        (
            "read_progress (status's numbers: + rate, retry, next check)",
            lambda: read_progress(store, big, utcnow()),
        ),
        (
            "Store.by_provider + costs (planned, spent, reported)",
            lambda: (store.by_provider(big), store.costs(big)),
        ),
        ("Store.store_counts (gauges, whole store)", store.store_counts),
        ("app.status (status --json)", lambda: app.status(settings, big).as_json()),
        ("app.summary, the big campaign", lambda: app.summary(settings, [big])),
        (f"app.summary, all {args.others + 1} campaigns", lambda: app.summary(settings)),
        ("app.list_campaigns (list --json)", lambda: app.list_campaigns(settings)),
    ]
    if not args.no_reference:

        def recount() -> Any:
            with store.engine.connect() as conn:
                return counts.recount(conn, big)

        cases += [
            ("reference: GROUP BY over the rows (reads before the counters)", recount),
            (
                "reference: the rate's indexed count over 5 min (before)",
                lambda: store.sent_since(big, now - timedelta(minutes=5)),
            ),
        ]
    return cases


def measure(url: str, args: argparse.Namespace) -> None:
    from dispatcher import app
    from dispatcher.config import AppSettings, DispatchSettings

    store = Store.from_url(url)
    store.migrate()
    big = build(store, args.recipients, args.others, args.other_size)
    clock = QueryClock()
    settings = AppSettings(DispatchSettings(database_url=url))
    cases = read_cases(store, url, big, args)
    if args.explain:
        explain(clock, lambda: app.status(settings, big).as_json(), url)
        explain(clock, lambda: app.summary(settings), url)
    print(f"  {'read':<66} {'wall ms':>9} {'query ms':>9} {'stmts':>6}")
    for name, fn in cases:
        runs = 3 if name.startswith("reference") else args.runs
        wall, query, statements = timed(clock, fn, runs)
        print(f"  {name:<66} {wall:9.1f} {query:9.1f} {statements:6d}", flush=True)
    store.engine.dispose()


def explain(clock: QueryClock, fn: Callable[[], Any], url: str) -> None:
    """The statements `fn` runs, slowest first, with the plan of the three slowest (EXPLAIN ANALYZE)."""
    fn()
    clock.log = []
    fn()
    found, clock.log = clock.log, None
    found.sort(key=lambda x: -x[0])
    store = Store.from_url(url)
    with store.engine.connect() as conn:
        for took, statement, params, _ in found[:3]:
            print(f"  {took * 1000:7.2f} ms  {' '.join(statement.split())[:300]}")
            sqlite = conn.dialect.name == "sqlite"
            plan = conn.exec_driver_sql(
                ("EXPLAIN QUERY PLAN " if sqlite else "EXPLAIN ANALYZE ") + statement, params
            )
            for row in plan:
                print("       ", row[-1])
    store.engine.dispose()


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--recipients", type=int, default=10_000_000)
    p.add_argument("--others", type=int, default=20)
    p.add_argument("--other-size", type=int, default=100_000)
    p.add_argument("--db", choices=["sqlite", "postgres", "all"], default="all")
    p.add_argument("--runs", type=int, default=7)
    p.add_argument("--no-reference", action="store_true", help="skip the scans the reads did before")
    p.add_argument(
        "--explain",
        action="store_true",
        help="print the plans of the slowest statements of status and summary",
    )
    args = p.parse_args()
    print(
        f"reads: {args.recipients:,} recipients + {args.others} x {args.other_size:,}; median of {args.runs}"
    )
    if args.db in ("sqlite", "all"):
        with tempfile.TemporaryDirectory(dir=os.environ.get("BENCH_TMP")) as tmp:
            print("SQLite", flush=True)
            measure(f"sqlite:///{Path(tmp) / 'reads.db'}", args)
    if args.db in ("postgres", "all"):
        url = fresh_pg()
        try:
            print("PostgreSQL", flush=True)
            measure(url, args)
        finally:
            drop_pg(url)


if __name__ == "__main__":
    main()
