"""`smsdispatch demo`: a whole campaign against an in-process sandbox, on the embedded defaults.

It writes a messy 2,000-row CSV (the spellings people really use, some invalid rows and
duplicates), sends it through the real loader, store, runner and HTTP client to the sandbox,
polls delivery to the end, writes the report and prints its summary. Everything goes in one
folder; the user's own database and environment are untouched.
"""

from __future__ import annotations

import os
import time
from collections import Counter
from pathlib import Path

from rich.console import Console

from dispatcher.messy import write as write_messy_csv

# The demo's CSV is the project's one messy-data generator (also the tests' and the benchmarks').
write_demo_csv = write_messy_csv


def run_demo(folder: Path, rows: int, provider: str, out: Console, err: Console) -> None:
    from dispatcher.cli import main as cli_main
    from dispatcher.sandbox.core import SandboxState, sandbox_env
    from dispatcher.sandbox.server import start

    folder.mkdir(parents=True, exist_ok=True)
    csv_path = folder / "customers.csv"
    db_path = folder / "demo.db"
    for stale in (db_path, folder / "demo.db-wal", folder / "demo.db-shm"):
        stale.unlink(missing_ok=True)
    write_demo_csv(csv_path, rows)
    state = SandboxState(seed=42, final_after_s=0.5)
    with start(state) as running:
        os.environ.update(sandbox_env(running.url))
        os.environ["SMSDISPATCH_DATABASE_URL"] = f"sqlite:///{db_path}"
        os.environ.setdefault("SMSDISPATCH_POLL_INTERVALS", "0.5,1,2")
        os.environ.pop("SMSDISPATCH_BROKER_URL", None)
        err.print(f"sandbox serving on {running.url}; CSV {csv_path} with {rows} rows")
        started = time.monotonic()
        argv = [
            "send",
            str(csv_path),
            "--provider",
            provider,
            "--name",
            "demo",
            "--message",
            "{name} عزیز، ۲۰٪ تخفیف ویژه برای شما. لغو11",
            "--wait",
        ]
        try:
            cli_main(argv)
        except SystemExit as exc:
            if exc.code not in (0, None):
                raise
        report = folder / "report.csv"
        try:
            cli_main(["report", "1", "--out", str(report)])
        except SystemExit as exc:
            if exc.code not in (0, None):
                raise
        elapsed = time.monotonic() - started
        accepted = Counter(m.phone for m in state.accepted(provider))
    twice = sum(1 for n in accepted.values() if n > 1)
    out.print(
        f"demo done in {elapsed:.1f} s: the sandbox accepted {sum(accepted.values())} messages for {len(accepted)} numbers "
        f"({twice} numbers more than once); report: {report}"
    )
