"""`smsdispatch demo`: a whole campaign against an in-process sandbox, on the embedded defaults.

It writes a messy 2,000-row CSV (the spellings people really use, some invalid rows and
duplicates), sends it through the real loader, store, runner and HTTP client to the sandbox,
polls delivery to the end, writes the report and returns its summary. Everything goes in one
folder; the user's own database and environment are untouched: the demo calls the application
layer (`dispatcher.app`) with settings of its own, never the CLI and never `os.environ`.
"""

from __future__ import annotations

import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

from dispatcher import app
from dispatcher.app.modes import Observer
from dispatcher.config import AppSettings
from dispatcher.demo.messy import write as write_messy_csv
from dispatcher.sandbox.core import SandboxState, sandbox_env


@dataclass(frozen=True)
class DemoResult:
    campaign: int
    state: str  # the campaign's state at the end (completed, unless the sandbox was told otherwise)
    seconds: float
    accepted: int  # messages the sandbox accepted
    numbers: int  # distinct numbers among them
    twice: int  # numbers accepted more than once (0: the exactly-once witness)
    report: Path


def demo_settings(sandbox_url: str, db_path: Path) -> AppSettings:
    """Settings for the demo only: the sandbox's accounts, a database in the demo folder, embedded mode,
    fast polling. Nothing is read from, or written to, the process environment."""
    env = {
        **sandbox_env(sandbox_url),
        "SMSDISPATCH_DATABASE_URL": f"sqlite:///{db_path}",
        "SMSDISPATCH_POLL_INTERVALS": "0.5,1,2",
    }
    return AppSettings.from_env(env)


def run_demo(folder: Path, rows: int, provider: str, observer: Observer | None = None) -> DemoResult:
    """Write a messy CSV of `rows` rows to `folder`, send it to an in-process sandbox through the
    application layer (embedded mode, following delivery to the end), and write `report.csv`.

    `observer` (e.g. `dispatcher.cli.bars.ProgressBars`) sees the progress; nothing is printed here.
    Raises BadInput for an unknown provider."""
    from dispatcher.sandbox.server import start

    provider = app.resolve_provider(provider)
    folder.mkdir(parents=True, exist_ok=True)
    csv_path = folder / "customers.csv"
    db_path = folder / "demo.db"
    for stale in (db_path, folder / "demo.db-wal", folder / "demo.db-shm"):
        stale.unlink(missing_ok=True)
    write_messy_csv(csv_path, rows)
    state = SandboxState(seed=42, final_after_s=0.5)
    report = folder / "report.csv"
    with start(state) as running:
        settings = demo_settings(running.url, db_path)
        started = time.monotonic()
        request = app.SendRequest(
            file=csv_path,
            provider=provider,
            name="demo",
            message="{name} عزیز، ۲۰٪ تخفیف ویژه برای شما. لغو11",
        )
        prepared = app.prepare(settings, request)
        app.preflight(settings, prepared, cwd=folder)  # non-interactive: nothing asked; a refusal raises
        created = app.create(prepared)
        store = prepared.store
        assert created.campaign is not None and store is not None
        result = app.start(settings, store, created.campaign, follow=True, observer=observer)
        app.report(settings, created.campaign, report)
        elapsed = time.monotonic() - started
        accepted = Counter(m.phone for m in state.accepted(provider))
    return DemoResult(
        campaign=created.campaign,
        state=result.state,
        seconds=elapsed,
        accepted=sum(accepted.values()),
        numbers=len(accepted),
        twice=sum(1 for n in accepted.values() if n > 1),
        report=report,
    )
