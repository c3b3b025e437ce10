"""Benchmark: the embedded `smsdispatch send` against the official `ghasedakpack` SDK looped per recipient.

Both talk to the same sandbox process (`smsdispatch sandbox`, its own process, latency 0 ms unless told):

* **embedded**: `smsdispatch send FILE --provider ghasedak --message TEXT --yes --json` in embedded mode
  (SQLite, no broker) on N recipients, as a user runs it: load, preflight, store, send (a plain embedded
  `send` returns once every message is out). Timed whole (the command's wall time) and its sending phase
  alone (the first claim to the last recorded send, from the store's own timestamps); CPU is the `send`
  process's user + system time.
* **SDK**: `ghasedakpack.Ghasedak(apikey, baseurl).send({...})` (PyPI `ghasedakpack` 0.1.13, the
  official Ghasedak v2 Python SDK, docs/providers.md and shared/providers.md list it), called once per
  recipient in a loop, which is what its API offers for a list (its `bulk*` calls take one string of
  numbers and return only True/False). Timed over `--sdk-recipients` (the rate does not depend on N).

    pip install ghasedakpack==0.1.13     # into the bench's venv only; not a dependency of smsdispatch
    python bench/sdk_compare.py --recipients 100000 --sdk-recipients 5000

Prints both rates and their ratio (the embedded send's whole command, and its sending phase).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import sqlite3
import subprocess
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from bench.common import make_csv, wait_for_sandbox  # noqa: E402

EXE = [sys.executable, "-m", "dispatcher"]


def children_cpu() -> float:
    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime


def embedded(env: dict[str, str], n: int, tmp: Path) -> dict[str, float]:
    src = tmp / f"sdk_compare_{n}.csv"
    make_csv(src, n)
    db = tmp / "embedded.db"
    env = {**env, "SMSDISPATCH_DATABASE_URL": f"sqlite:///{db}", "SMSDISPATCH_POLL_INTERVALS": "3600"}
    env.pop("SMSDISPATCH_BROKER_URL", None)
    # As installed: compiled modules are kept (a shell with PYTHONDONTWRITEBYTECODE would compile the
    # project's modules anew at every start); one start first writes them.
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    subprocess.run([*EXE, "--version"], env=env, capture_output=True, check=True)
    cpu0, t0 = children_cpu(), time.perf_counter()
    done = subprocess.run(
        [*EXE, "send", str(src), "--provider", "ghasedak", "--message", "Bench", "--yes", "--json"],
        env=env,
        capture_output=True,
        text=True,
        cwd=tmp,
    )
    wall, cpu = time.perf_counter() - t0, children_cpu() - cpu0
    if done.returncode != 0:
        raise SystemExit(f"send exited {done.returncode}: {done.stderr[-2000:]}")
    with sqlite3.connect(db) as conn:
        first, last, sent = conn.execute(
            "SELECT (SELECT min(sending_since) FROM chunks), max(sent_at), count(*) FROM recipients "
            "WHERE state = 'sent'"
        ).fetchone()
    phase = (datetime.fromisoformat(last) - datetime.fromisoformat(first)).total_seconds()
    return {"sent": sent, "wall": wall, "cpu": cpu, "phase": phase}


def sdk(url: str, n: int) -> dict[str, float]:
    from ghasedakpack import Ghasedak  # the SDK's module name

    from dispatcher.sandbox.core import DEFAULT_CREDENTIALS, DEFAULT_SENDERS

    client = Ghasedak(DEFAULT_CREDENTIALS["ghasedak"]["apikey"], baseurl=url + "/ghasedak")
    line = DEFAULT_SENDERS["ghasedak"]
    ok = 0
    t0 = time.perf_counter()
    for i in range(n):
        ok += bool(client.send({"message": "Bench", "receptor": f"0913{i:07d}", "linenumber": line}))
    return {"sent": ok, "wall": time.perf_counter() - t0}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--recipients", type=int, default=100_000, help="the embedded send's file")
    p.add_argument("--sdk-recipients", type=int, default=5_000, help="the SDK loop's calls")
    p.add_argument("--latency-ms", type=float, default=0.0)
    p.add_argument("--port", type=int, default=8795)
    p.add_argument("--skip-sdk", action="store_true", help="the embedded send only")
    args = p.parse_args()

    url = f"http://127.0.0.1:{args.port}"
    from dispatcher.sandbox.core import sandbox_env

    env = {**os.environ, **sandbox_env(url)}
    sandbox = subprocess.Popen(
        [*EXE, "sandbox", "--port", str(args.port), "--latency-ms", str(args.latency_ms)],
        env=env,
        stderr=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
    )
    try:
        wait_for_sandbox(url)
        with tempfile.TemporaryDirectory() as tmp:
            e = embedded(env, args.recipients, Path(tmp))
        rate, phase_rate = e["sent"] / e["wall"], e["sent"] / e["phase"]
        print(
            f"embedded send: {e['sent']:,} sent, command {e['wall']:.2f} s = {rate:,.0f} recipients/s, "
            f"sending phase {e['phase']:.2f} s = {phase_rate:,.0f} recipients/s, "
            f"CPU {e['cpu']:.2f} s = {e['cpu'] / e['sent'] * 1e6:.1f} us per recipient"
        )
        if not args.skip_sdk:
            s = sdk(url, args.sdk_recipients)
            sdk_rate = s["sent"] / s["wall"]
            print(
                f"ghasedakpack loop: {s['sent']:,} sent in {s['wall']:.2f} s = {sdk_rate:,.0f} recipients/s"
            )
            print(f"ratio: command {rate / sdk_rate:.1f}x, sending phase {phase_rate / sdk_rate:.1f}x")
        print(json.dumps({"embedded": e, "load": os.getloadavg()}))
    finally:
        sandbox.terminate()
        sandbox.wait(timeout=20)


if __name__ == "__main__":
    main()
