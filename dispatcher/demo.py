"""`smsdispatch demo`: a whole campaign against an in-process sandbox, on the embedded defaults.

It writes a messy 2,000-row CSV (the spellings people really use, some invalid rows and
duplicates), sends it through the real loader, store, runner and HTTP client to the sandbox,
polls delivery to the end, writes the report and prints its summary. Everything goes in one
folder; the user's own database and environment are untouched.
"""

from __future__ import annotations

import csv
import os
import random
import time
from collections import Counter
from pathlib import Path

from rich.console import Console

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
