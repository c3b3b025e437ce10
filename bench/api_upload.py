"""Benchmark: a million-row file through the HTTP API (`POST /api/v1/campaigns`), against a real
`smsdispatch web` process.

The file is the messy million of bench/load_csv.py (dispatcher/demo/messy.py, cached in bench/out/). The
campaign is scheduled far ahead (`at`), so it is stored and nothing is sent. Printed, one JSON line:
the upload's seconds (request sent to 201), the recipients stored, the web process's peak RSS (VmHWM,
MB) before and after, and /healthz asked every 0.2 s during the upload (how many answers, the slowest).

    python bench/api_upload.py [--rows 1000000] [--db sqlite|postgres]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.load_csv import csv_path  # noqa: E402


def vm_hwm_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def main() -> None:
    parser = argparse.ArgumentParser(description="a million-row upload through the API")
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--db", choices=["sqlite", "postgres"], default="sqlite")
    args = parser.parse_args()
    path = csv_path(args.rows, False)
    work = Path(tempfile.mkdtemp(prefix="bench-api-"))
    db = f"sqlite:///{work / 'api.db'}"
    if args.db == "postgres":
        from tests.support.services import fresh_postgres_db

        db = fresh_postgres_db()
    from dispatcher.config import AppSettings
    from dispatcher.sandbox.core import SandboxState, sandbox_env
    from dispatcher.sandbox.server import start
    from tests.support.api import make_key
    from tests.support.cluster import free_port

    sandbox = start(SandboxState(seed=1))
    env = {
        **os.environ,
        **sandbox_env(sandbox.url),  # the balance call proves the key; a scheduled campaign sends nothing
        "SMSDISPATCH_GHASEDAK_PRICE": "1000",
        "SMSDISPATCH_DATABASE_URL": db,
        "SMSDISPATCH_UPLOAD_DIR": str(work / "uploads"),
        "SMSDISPATCH_BROKER_URL": "",
        "SMSDISPATCH_OPTOUT_EVERY": "0",
    }
    from campaigns.store import Store

    Store.from_url(db).migrate()
    key = make_key(AppSettings.from_env(env), "sender", "bench")[0]
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "dispatcher", "web", "--port", str(port)],
        env=env,
        cwd=work,
        stdout=(work / "web.log").open("w"),
        stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        for _ in range(300):
            try:
                if httpx.get(url + "/healthz", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.1)
        idle_mb = vm_hwm_mb(proc.pid)
        answers: list[httpx.Response] = []

        def upload() -> None:
            with path.open("rb") as fh:
                answers.append(
                    httpx.post(
                        url + "/api/v1/campaigns",
                        files={"file": (path.name, fh, "text/csv")},
                        data={
                            "provider": "ghasedak",
                            "message": "سلام {name} لغو11",
                            "window": "any",
                            "at": "2099-01-01 10:00",
                            "allow_partial": "true",
                        },
                        headers={"Authorization": f"Bearer {key}"},
                        timeout=3600,
                    )
                )

        thread = threading.Thread(target=upload)
        started = time.perf_counter()
        thread.start()
        health: list[float] = []
        while thread.is_alive():
            t0 = time.perf_counter()
            ok = httpx.get(url + "/healthz", timeout=30).status_code == 200
            health.append(time.perf_counter() - t0 if ok else float("inf"))
            time.sleep(0.2)
        thread.join()
        seconds = time.perf_counter() - started
        answer = answers[0]
        body = answer.json()
        print(
            json.dumps(
                {
                    "rows": args.rows,
                    "db": args.db,
                    "status": answer.status_code,
                    "seconds": round(seconds, 2),
                    "recipients": body.get("recipients"),
                    "error": body.get("error"),
                    "rejected": body.get("rejected"),
                    "web_peak_mb_idle": round(idle_mb),
                    "web_peak_mb": round(vm_hwm_mb(proc.pid)),
                    "healthz_answers": len(health),
                    "healthz_slowest_ms": round(max(health) * 1000, 1) if health else None,
                    "healthz_median_ms": round(sorted(health)[len(health) // 2] * 1000, 1)
                    if health
                    else None,
                }
            )
        )
    finally:
        sandbox.stop()
        proc.terminate()
        proc.wait(timeout=60)
        if args.db == "postgres":
            from tests.support.services import drop_postgres_db

            drop_postgres_db(db)


if __name__ == "__main__":
    main()
