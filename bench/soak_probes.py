"""What bench/soak.py reads of its processes while it runs: RSS and CPU of a process (from /proc), a worker's
readiness and its re-published chunks (from its /metrics), PostgreSQL's table and index sizes."""

from __future__ import annotations

import os
import socket
from pathlib import Path

import psycopg
import requests

TABLES = ("recipients", "chunks", "campaign_counts", "campaigns", "audit_events", "webhook_deliveries")


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def cpu_s(pid: int) -> float:
    """user + system CPU seconds of a live process (0 once it is gone)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def republished(port: int) -> float:
    """`smsdispatch_chunks_republished_total` of the worker serving metrics on `port`; 0 when it cannot be read."""
    try:
        text = requests.get(f"http://127.0.0.1:{port}/metrics", timeout=10).text
    except requests.RequestException:
        return 0.0
    for line in text.splitlines():
        if line.startswith("smsdispatch_chunks_republished_total "):
            return float(line.split()[1])
    return 0.0


def worker_up(port: int) -> bool:
    """Whether the worker serving metrics on `port` says it is ready (`celery_worker_up` 1)."""
    try:
        text = requests.get(f"http://127.0.0.1:{port}/metrics", timeout=5).text
    except requests.RequestException:
        return False
    return any(line.startswith("celery_worker_up{") and line.endswith(" 1.0") for line in text.splitlines())


def sizes(dbname: str) -> dict[str, tuple[int, int, int]]:
    """table -> (heap, indexes, total) bytes."""
    with psycopg.connect(host="127.0.0.1", user="postgres", dbname=dbname) as conn:
        return {
            t: conn.execute(
                "SELECT pg_relation_size(%s), pg_indexes_size(%s), pg_total_relation_size(%s)", (t, t, t)
            ).fetchone()
            for t in TABLES
        }


def print_sizes(label: str, found: dict[str, tuple[int, int, int]], recipients: int) -> None:
    mb = 1024 * 1024
    print(f"PostgreSQL sizes {label} (MB: heap + indexes = total; per million recipients):")
    for t, (heap, idx, total) in found.items():
        per = total / mb * 1e6 / recipients
        print(f"  {t:<20} {heap / mb:9.1f} + {idx / mb:9.1f} = {total / mb:9.1f}   {per:9.1f} per million")
    print(f"  {'all of them':<20} {sum(v[2] for v in found.values()) / mb:33.1f}", flush=True)
