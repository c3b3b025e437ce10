"""The claim's cost: process CPU and wall time per `Store.claim_chunk` on SQLite and PostgreSQL.

Creates one campaign of N one-recipient chunks, then claims every chunk once in one thread and reports
microseconds per claim (CPU of this process: building and binding statements, the driver, reading rows;
wall: with the database's own work). It uses only the Store API, so the same script measures any revision:

    PYTHONPATH=$PWD /work/venv/bin/python bench/claim.py [N] [postgresql://postgres@127.0.0.1/DB]

Without a URL it uses a fresh SQLite file and a fresh PostgreSQL database on 127.0.0.1 (dropped after).
"""

from __future__ import annotations

import sys
import tempfile
import time
import uuid
from datetime import timedelta
from pathlib import Path

import pandas as pd

from campaigns.plan import plan
from campaigns.store import CampaignSpec, Store
from campaigns.text import Template


def measure(url: str, n: int) -> tuple[float, float]:
    store = Store.from_url(url)
    store.migrate()
    df = pd.DataFrame({"row": range(2, n + 2), "phone": [f"+98912{i:07d}" for i in range(n)]})
    spec = CampaignSpec(
        name="bench", provider="ghasedak", account="acct", sender="1", message="hi", personalised=False
    )
    cid = store.create_campaign(spec, plan([df], Template("hi"), 1, []))
    chunks = store.claimable_chunks(limit=n, campaign_id=cid)
    for chunk_id, attempt in chunks[:20]:  # warm up: pool, compiled statement cache
        store.claim_chunk(chunk_id, attempt, timedelta(seconds=60))
    rest = chunks[20:]
    cpu, wall = time.process_time(), time.perf_counter()
    for chunk_id, attempt in rest:
        assert store.claim_chunk(chunk_id, attempt, timedelta(seconds=60)) is not None
    cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
    store.engine.dispose()
    return cpu / len(rest) * 1e6, wall / len(rest) * 1e6


def main() -> None:
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 2000
    urls = sys.argv[2:]
    cleanup: list[str] = []
    if not urls:
        import psycopg

        name = f"smsd_bench_{uuid.uuid4().hex[:8]}"
        with psycopg.connect(host="127.0.0.1", user="postgres", dbname="postgres", autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
        cleanup.append(name)
        urls = [
            f"sqlite:///{Path(tempfile.mkdtemp()) / 'bench.db'}",
            f"postgresql://postgres@127.0.0.1/{name}",
        ]
    try:
        for url in urls:
            cpu, wall = measure(url, n)
            print(
                f"{url.split(':')[0]:<10} claims={n - 20:>6}  cpu {cpu:7.0f} us/claim  wall {wall:7.0f} us/claim"
            )
    finally:
        import psycopg

        for name in cleanup:
            with psycopg.connect(
                host="127.0.0.1", user="postgres", dbname="postgres", autocommit=True
            ) as conn:
                conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


if __name__ == "__main__":
    main()
