"""`smsdispatch demo`: a whole campaign against an in-process sandbox, on the embedded defaults.

It writes a messy 2,000-row CSV (the spellings people really use, some invalid rows and
duplicates), sends it through the real loader, store, runner and HTTP client to the sandbox,
polls delivery to the end, writes the report and returns its summary. Everything goes in one
folder; the user's own database and environment are untouched: the demo calls the application
layer (`dispatcher.app`) with settings of its own, never the CLI and never `os.environ`.
"""

from __future__ import annotations

import csv
import random
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

from dispatcher import app
from dispatcher.config import AppSettings
from dispatcher.modes import Observer
from dispatcher.sandbox.core import SandboxState, sandbox_env

DIGITS_FA = str.maketrans("0123456789", "۰۱۲۳۴۵۶۷۸۹")
NAMES = ["علی", "مریم", "رضا", "زهرا", "حسین", "فاطمه", "Sara", "Reza", "نگار", "كاظم"]
PREFIXES = ["912", "935", "901", "919", "937", "990", "921", "903"]


def messy_spelling(national: str, rng: random.Random) -> str:
    """One of the ways people write 9XXXXXXXXX in a spreadsheet."""
    forms = [
        "0" + national,
        national,
        "+98" + national,
        "0098" + national,
        "98" + national,
        ("0" + national).translate(DIGITS_FA),
        f"0{national[:3]} {national[3:6]} {national[6:]}",
        f"+98-{national[:3]}-{national[3:6]}-{national[6:]}",
        f"(0{national[:3]}) {national[3:]}",
        "'0" + national,
        national + ".0",
    ]
    return rng.choice(forms)


def write_demo_csv(path: Path, rows: int, seed: int = 1) -> None:
    rng = random.Random(seed)
    nationals: list[str] = []
    with path.open("w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh)
        writer.writerow(["name", "mobile", "city"])
        for _ in range(rows):
            roll = rng.random()
            if roll < 0.03 and nationals:  # a duplicate, spelled differently
                phone = messy_spelling(rng.choice(nationals), rng)
            elif roll < 0.07:  # not a mobile number at all
                phone = rng.choice(["02188776655", "12345", "", "abc", "+4915112345678", "0912123"])
            else:
                national = rng.choice(PREFIXES) + f"{rng.randrange(10**7):07d}"
                nationals.append(national)
                phone = messy_spelling(national, rng)
            writer.writerow([rng.choice(NAMES), phone, rng.choice(["تهران", "شیراز", "Tabriz"])])


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

    `observer` (e.g. `dispatcher.watch.ProgressBars`) sees the progress; nothing is printed here.
    Raises BadInput for an unknown provider."""
    from dispatcher.sandbox.server import start

    provider = app.resolve_provider(provider)
    folder.mkdir(parents=True, exist_ok=True)
    csv_path = folder / "customers.csv"
    db_path = folder / "demo.db"
    for stale in (db_path, folder / "demo.db-wal", folder / "demo.db-shm"):
        stale.unlink(missing_ok=True)
    write_demo_csv(csv_path, rows)
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
