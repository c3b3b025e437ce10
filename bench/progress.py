"""Benchmark: what `smsdispatch status` (and each refresh of the progress bars) costs on a big campaign.

    python bench/progress.py --rows 1000000 --db all

Builds one campaign of N recipients straight in SQL (40 % pending, 30 % sent, 25 % delivered, 5 %
failed; sends spread over the last hour), then times, median of 7: `read_progress` (the campaign's
counts by state and by chunk state, the rate's count, the next retry) and the rate's count alone,
with the partial index `ix_recipients_campaign_sent` and without it; and `Store.costs` (planned, spent
so far and reported by provider, what `status`, `summary` and the xlsx read once, not the bars).

Since migration 0016_counters `read_progress` reads the maintained counters and per-minute sends instead
(`bench/reads.py` measures it at 10 M recipients); the rows this script writes bypass the store, so its
`read_progress` figure no longer means what it did. The rate's count alone (`Store.sent_since`) still does.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from datetime import timedelta
from pathlib import Path

import pandas as pd
from sqlalchemy import text

from campaigns.clock import utcnow
from campaigns.plan import plan
from campaigns.progress import RATE_WINDOW, read_progress
from campaigns.store import CampaignSpec, Store
from campaigns.text import Template

FILL_SQLITE = """
WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < :rows)
INSERT INTO recipients (campaign_id, chunk_id, row, phone, fields, text, parts, state, attempts, polls, sent_at)
SELECT :cid, :chunk, i + 2, '+98935' || printf('%07d', i), '{}', NULL, 1,
       CASE WHEN i % 20 < 8 THEN 'pending' WHEN i % 20 < 14 THEN 'sent' WHEN i % 20 < 19 THEN 'delivered'
            ELSE 'failed' END,
       0, 0,
       CASE WHEN i % 20 < 8 THEN NULL ELSE datetime(:now, '-' || (i % 3600) || ' seconds') END
FROM n
"""
FILL_POSTGRES = """
INSERT INTO recipients (campaign_id, chunk_id, row, phone, fields, text, parts, state, attempts, polls, sent_at)
SELECT :cid, :chunk, i + 2, '+98935' || lpad(i::text, 7, '0'), '{}', NULL, 1,
       CASE WHEN i % 20 < 8 THEN 'pending' WHEN i % 20 < 14 THEN 'sent' WHEN i % 20 < 19 THEN 'delivered'
            ELSE 'failed' END,
       0, 0,
       CASE WHEN i % 20 < 8 THEN NULL ELSE CAST(:now AS timestamptz) - make_interval(secs => i % 3600) END
FROM generate_series(1, :rows) AS i
"""


def median_ms(fn, runs: int = 7) -> float:
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        fn()
        times.append((time.perf_counter() - start) * 1000)
    return statistics.median(times)


def build(store: Store, rows: int) -> int:
    df = pd.DataFrame({"row": [1], "phone": ["+989120000000"]})
    spec = CampaignSpec(
        name="bench", provider="ghasedak", account="a", sender="1", message="hi", personalised=False
    )
    cid = store.create_campaign(spec, plan([df], Template("hi"), 100, []))
    now = utcnow()
    with store.engine.begin() as conn:
        chunk = conn.execute(
            text("SELECT min(id) FROM chunks WHERE campaign_id = :c"), {"c": cid}
        ).scalar_one()
        sqlite = conn.dialect.name == "sqlite"
        conn.execute(
            text(FILL_SQLITE if sqlite else FILL_POSTGRES),
            {
                "cid": cid,
                "chunk": chunk,
                "rows": rows,
                "now": now.replace(tzinfo=None).isoformat(" ") if sqlite else now,
            },
        )
        conn.execute(
            text("UPDATE campaigns SET recipients = :n, started_at = :t WHERE id = :c"),
            {"n": rows + 1, "t": now - timedelta(hours=1), "c": cid},
        )
        conn.execute(text("ANALYZE"))
    return cid


def bench(url: str, label: str, rows: int) -> None:
    store = Store.from_url(url)
    store.migrate()
    start = time.perf_counter()
    cid = build(store, rows)
    print(f"{label}: {rows:,} recipients built in {time.perf_counter() - start:.1f} s")
    since = utcnow() - RATE_WINDOW
    sent = store.sent_since(cid, since)
    status = median_ms(lambda: read_progress(store, cid, utcnow()))
    rate = median_ms(lambda: store.sent_since(cid, since))
    costs = median_ms(lambda: store.costs(cid))
    with store.engine.begin() as conn:
        conn.execute(text("DROP INDEX ix_recipients_campaign_sent"))
        conn.execute(text("ANALYZE"))
    rate_noindex = median_ms(lambda: store.sent_since(cid, since))
    status_noindex = median_ms(lambda: read_progress(store, cid, utcnow()))
    print(f"  rate sample: {sent:,} sends in the last {RATE_WINDOW}")
    print(f"  read_progress (status): {status:8.1f} ms   without the sent index: {status_noindex:8.1f} ms")
    print(f"  sent_since (rate)     : {rate:8.1f} ms   without the sent index: {rate_noindex:8.1f} ms")
    print(f"  costs (status, summary): {costs:7.1f} ms")
    store.engine.dispose()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--db", choices=["sqlite", "postgres", "all"], default="all")
    args = parser.parse_args()
    if args.db in ("sqlite", "all"):
        with tempfile.TemporaryDirectory() as tmp:
            bench(f"sqlite:///{Path(tmp) / 'bench.db'}", "SQLite", args.rows)
    if args.db in ("postgres", "all"):
        sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
        from tests.support.services import drop_postgres_db, fresh_postgres_db

        url = fresh_postgres_db()
        try:
            bench(url, "PostgreSQL", args.rows)
        finally:
            drop_postgres_db(url)


if __name__ == "__main__":
    main()
