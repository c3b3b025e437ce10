"""What the metrics cost on the hot path, and what a scrape costs: prints its figures.

1. one provider exchange's metering (`workers.providers.metering`: begin, replied, counted at the
   method's end), in-process, no HTTP;
2. one chunk's send counting (`workers.operations.send.count_sent`) for a chunk of 100 accepted;
3. the same 100 recipients counted one increment each (what "per chunk, not per recipient" avoids);
4. rendering /metrics of a worker that has counted 5 providers x 6 methods x 6 outcomes, and a request
   through its HTTP port.

    python bench/metrics_cost.py [--n 200000]
"""

from __future__ import annotations

import argparse
import time
from datetime import UTC, datetime

from campaigns.records import ClaimedChunk, OutMessage
from workers import metrics
from workers.metrics_server import Monitor, serve
from workers.operations.send import count_sent
from workers.providers import metering
from workers.status import SendOutcome, SendResult


class Fake:
    name = "bench"

    def call(self) -> None:
        metering.begin(self.name)
        metering.replied()


Fake.call = metering.metered("send", Fake.call)  # type: ignore[method-assign]


def per_call(label: str, n: int, fn) -> None:  # noqa: ANN001
    start = time.perf_counter()
    for _ in range(n):
        fn()
    took = time.perf_counter() - start
    print(f"{label:<58} {took / n * 1e6:8.2f} µs each ({n:,} runs)")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--n", type=int, default=200_000)
    n = parser.parse_args().n
    fake = Fake()
    per_call("metering of one provider exchange", n, fake.call)
    messages = tuple(OutMessage(i, f"+98912{i:07d}", "hello", f"r{i}") for i in range(100))
    chunk = ClaimedChunk(1, 1, 1, "bench", "acct", "1", 100, "hold", datetime.now(UTC), messages)
    results = [SendResult(i, SendOutcome.ACCEPTED, str(i), cost=10.0) for i in range(100)]
    per_call("count_sent of a chunk of 100 accepted", n // 10, lambda: count_sent("bench", chunk, results))

    def one_each() -> None:
        for _ in range(100):
            metrics.RECIPIENTS_SENT.labels("bench").inc()

    per_call("the same 100 counted one increment each", n // 10, one_each)
    providers = ["ghasedak", "mediapayamak", "amoot", "negin", "ghasedak-gateway"]
    for p in providers:
        for m in ("send", "status", "balance", "reconcile", "inbox", "contacts"):
            for o in ("ok", "transient", "account", "request", "ambiguous", "refused"):
                metrics.PROVIDER_REQUESTS.labels(p, m, o).inc()
                metrics.PROVIDER_DURATION.labels(p, m).observe(0.1)
    monitor = Monitor(token="")
    body = monitor.reply("GET", "/metrics", {}).body
    per_call(f"render /metrics ({len(body):,} bytes)", 200, lambda: monitor.reply("GET", "/metrics", {}))
    running = serve("127.0.0.1", 0, monitor)
    import urllib.request

    url = f"http://127.0.0.1:{running.port}/metrics"
    per_call("GET /metrics over HTTP (werkzeug, loopback)", 200, lambda: urllib.request.urlopen(url).read())
    running.stop()


if __name__ == "__main__":
    main()
