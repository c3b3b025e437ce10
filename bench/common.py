"""What several bench scripts need alike: CPU time of a process and of the machine from /proc, a phone list,
a throwaway PostgreSQL database (loopback, user postgres), and waiting for a sandbox process to answer.

Imported as `bench.common` (each script puts the checkout's root first on sys.path).
"""

from __future__ import annotations

import csv
import os
import time
import uuid
from pathlib import Path

import psycopg
import requests

TICKS = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int) -> float:
    """utime + stime of a process and its reaped children in seconds, from /proc (same machine)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return sum(int(x) for x in fields[11:15]) / TICKS


def machine_busy() -> tuple[float, float]:
    """(busy, total) jiffies of all cores since boot, from /proc/stat."""
    values = [int(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    idle = values[3] + values[4]  # idle + iowait
    return sum(values) - idle, sum(values)


def make_csv(path: Path, n: int) -> None:
    """A one-column (`mobile`) CSV of `n` distinct numbers 0912xxxxxxx."""
    with path.open("w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["mobile"])
        for i in range(n):
            w.writerow([f"0912{i:07d}"])


def fresh_pg(name: str = "") -> str:
    """Database `name` (default: bench_ and a random suffix) made anew (dropped first) on the loopback
    server; its SQLAlchemy URL."""
    name = name or f"bench_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(host="127.0.0.1", user="postgres", dbname="postgres", autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{name}"')
    return f"postgresql+psycopg://postgres@127.0.0.1:5432/{name}"


def drop_pg(name_or_url: str) -> None:
    """Drop a database `fresh_pg` made, named or by its URL (connections to it closed)."""
    name = name_or_url.rsplit("/", 1)[-1]
    with psycopg.connect(host="127.0.0.1", user="postgres", dbname="postgres", autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def wait_for_sandbox(url: str, seconds: float = 20.0) -> None:
    """Return once the sandbox at `url` answers (its ledger, an empty page); SystemExit after `seconds`."""
    deadline = time.monotonic() + seconds
    while True:
        try:
            requests.get(url + "/_sandbox/messages?provider=none", timeout=1)
            return
        except requests.RequestException:
            if time.monotonic() > deadline:
                raise SystemExit(f"the sandbox at {url} did not answer in {seconds:g} s") from None
            time.sleep(0.1)
