"""Benchmark: how many send_chunk messages the broker carries per chunk when a rate limit throttles sends.

A throttled send_chunk re-publishes itself with a countdown (nothing sleeps), and beat's sweep
re-publishes queued chunks older than SMSDISPATCH_QUEUED_GRACE. This prints the chunks of a campaign,
the provider calls (one per chunk when nothing fails), the send_chunk messages the workers received
(from their logs) and the wall time, through real workers and beat (tests/support/cluster.py).

    python bench/throttle_churn.py --rows 2000 --batch 20 --rate 100/s --grace 1000
    python bench/throttle_churn.py --rows 2000 --batch 20 --rate 100000/s --grace 1000

Needs the loopback PostgreSQL and Redis (SMSDISPATCH_TEST_REDIS_URL names the database; it is emptied).
"""

from __future__ import annotations

import argparse
import re
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import redis  # noqa: E402

from dispatcher.sandbox.core import SandboxState  # noqa: E402
from tests.support.cluster import run_cluster, wait_completed  # noqa: E402
from tests.support.services import REDIS_URL  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rows", type=int, default=2000)
    ap.add_argument("--batch", type=int, default=20)
    ap.add_argument("--rate", default="100/s", help="SMSDISPATCH_GHASEDAK_RATE")
    ap.add_argument("--grace", default="1000", help="SMSDISPATCH_QUEUED_GRACE (s)")
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--concurrency", type=int, default=4)
    args = ap.parse_args()
    redis.Redis.from_url(REDIS_URL).flushdb()
    env = {
        "SMSDISPATCH_GHASEDAK_BATCH": str(args.batch),
        "SMSDISPATCH_GHASEDAK_RATE": args.rate,
        "SMSDISPATCH_QUEUED_GRACE": args.grace,
    }
    with tempfile.TemporaryDirectory() as tmp:
        state = SandboxState(seed=1, final_after_s=0.2, latency_ms=20)
        with run_cluster(Path(tmp), REDIS_URL, state=state, env=env) as cluster:
            cluster.workers(args.workers, args.concurrency)
            cluster.beat()
            started = time.monotonic()
            campaign, summary = cluster.send(args.rows)
            wait_completed(cluster.db, campaign, timeout=600)
            seconds = time.monotonic() - started
            received = len(
                re.findall(r"smsdispatch\.send_chunk\[[0-9a-f-]+\] received", cluster.logs("worker"))
            )
    chunks = summary["chunks"]
    print(
        f"rate {args.rate}, grace {args.grace} s: {chunks} chunks, {summary['recipients']} recipients, "
        f"{state.calls[('ghasedak', 'send')]} send calls, {received} send_chunk messages "
        f"({received / chunks:.1f} per chunk), {seconds:.1f} s from send to completed"
    )


if __name__ == "__main__":
    main()
