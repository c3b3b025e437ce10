"""Benchmark: load + normalise + dedupe (+ store) of a messy recipients CSV, against a plain per-row loop.

    python bench/load_csv.py --rows 1000000 --db none

The CSV is made once by dispatcher/demo/messy.py and cached in bench/out/. Every case runs in a fresh
Python process, started by this small one, so that peak RSS (ru_maxrss, which survives fork+exec)
belongs to that case alone; "imports" is the peak after importing pandas, pyarrow and the loader,
before any data is read.

Cases:
  read/pyarrow, read/pandas-c   only reading the CSV in blocks (pyarrow streaming reader vs C engine chunksize)
  load/pyarrow, load/pandas-c   RecipientLoader: read, normalise, dedupe, write the rejects file
  store/sqlite, store/postgres  load + campaigns.store (store_blocks or bulk_load), when the store has it
  baseline/per-row              csv module + phonenumbers.parse/is_valid_number + one sqlite3 INSERT per row
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

OUT = Path(__file__).resolve().parent / "out"
ROOT = Path(__file__).resolve().parent.parent
POSTGRES_URL = os.environ.get(
    "SMSDISPATCH_BENCH_POSTGRES_URL",
    os.environ.get("SMSDISPATCH_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test"),
)


def peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


# --- cases (run in a child process) --------------------------------------------------------------


def case_read(path: Path, engine: str, block_rows: int) -> dict[str, object]:
    import pandas as pd
    import pyarrow.csv as pacsv

    encoding = "cp1256" if path.stem.endswith("_cp1256") else "utf-8"
    imports = peak_mb()
    start = time.perf_counter()
    rows = 0
    if engine == "pyarrow":  # as the loader does it: a Python file object and 1 MiB blocks
        options = pacsv.ReadOptions(block_size=1 << 20, encoding=encoding.replace("utf-8", "utf8"))
        with path.open("rb") as fh:
            for batch in pacsv.open_csv(fh, read_options=options):
                rows += batch.to_pandas().shape[0]
    else:
        for frame in pd.read_csv(path, dtype=str, na_filter=False, chunksize=block_rows, encoding=encoding):
            rows += len(frame)
    return {"rows": rows, "seconds": time.perf_counter() - start, "imports_mb": imports}


def case_load(path: Path, engine: str, block_rows: int) -> dict[str, object]:
    from campaigns.load import RecipientLoader

    imports = peak_mb()
    start = time.perf_counter()
    loader = RecipientLoader(path, rejects_path=OUT / "rejects.csv", block_rows=block_rows, engine=engine)  # type: ignore[arg-type]
    for _block in loader.blocks():
        pass
    s = loader.stats
    return {
        "rows": s.rows,
        "seconds": time.perf_counter() - start,
        "imports_mb": imports,
        "detail": f"valid {s.valid}, rejected {s.rejected} (duplicates {s.duplicates}), encoding {s.encoding}",
    }


def store_campaign(url: str, loader: object) -> None:
    """The CLI's own path: migrate, plan chunks of 100, create the campaign in one transaction."""
    from campaigns.plan import plan
    from campaigns.store import CampaignSpec, Store
    from campaigns.text import Template

    store = Store.from_url(url)
    store.migrate()
    template = Template("سلام {name}، تخفیف ویژه. لغو11")
    extra = [c for c in loader.block_columns if c not in ("row", "phone")]
    spec = CampaignSpec(
        name="bench",
        provider="ghasedak",
        account="bench",
        sender="",
        message=template.text,
        personalised=True,
        columns=extra,
    )
    store.create_campaign(
        spec, plan(loader.blocks(), template, 100, extra), rejected=lambda: loader.stats.rejected, start=True
    )
    store.engine.dispose()


def case_store(path: Path, db: str, block_rows: int) -> dict[str, object]:
    from campaigns.load import RecipientLoader

    if db == "sqlite":
        target = OUT / "bench.db"
        for suffix in ("", "-wal", "-shm"):
            Path(f"{target}{suffix}").unlink(missing_ok=True)
        url = f"sqlite:///{target}"
    else:
        url = fresh_postgres()
    imports = peak_mb()
    start = time.perf_counter()
    loader = RecipientLoader(path, rejects_path=OUT / "rejects.csv", block_rows=block_rows)
    try:
        store_campaign(url, loader)
    except Exception as exc:  # a missing server is a skip, not a failed bench
        return {"skipped": f"store/{db}: {type(exc).__name__}: {str(exc).splitlines()[0][:120]}"}
    return {"rows": loader.stats.rows, "seconds": time.perf_counter() - start, "imports_mb": imports}


def fresh_postgres() -> str:
    """An empty database for each run, so the bench measures a first load, not a second."""
    import psycopg

    name = "smsd_bench"
    with psycopg.connect(host="127.0.0.1", user="postgres", dbname="postgres", autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{name}"')
    return f"postgresql+psycopg://postgres@127.0.0.1:5432/{name}"


def case_baseline(path: Path, limit: int) -> dict[str, object]:
    """What the loader replaces: one Python iteration, one phonenumbers parse and one INSERT per row."""
    import csv
    import sqlite3

    import phonenumbers

    imports = peak_mb()
    target = OUT / "baseline.db"
    target.unlink(missing_ok=True)
    start = time.perf_counter()
    db = sqlite3.connect(target)
    db.execute("CREATE TABLE recipients (row INTEGER, phone TEXT, name TEXT, city TEXT, amount TEXT)")
    mobile = {phonenumbers.PhoneNumberType.MOBILE, phonenumbers.PhoneNumberType.FIXED_LINE_OR_MOBILE}
    seen: dict[str, int] = {}
    rows = 0
    with (
        path.open(encoding="utf-8-sig", newline="") as fh,
        (OUT / "baseline_rejects.csv").open("w", encoding="utf-8-sig", newline="") as rej,
    ):
        reader = csv.DictReader(fh)
        rejects = csv.writer(rej)
        rejects.writerow(["row", "value", "reason"])
        for number, rec in enumerate(reader, start=2):
            if rows >= limit:
                break
            rows += 1
            value = rec["mobile"]
            try:
                parsed = phonenumbers.parse(value, "IR")
            except phonenumbers.NumberParseException:
                rejects.writerow([number, value, "not a number"])
                continue
            if not phonenumbers.is_valid_number(parsed) or phonenumbers.number_type(parsed) not in mobile:
                rejects.writerow([number, value, "not a mobile number"])
                continue
            e164 = phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164)
            if e164 in seen:
                rejects.writerow([number, value, f"duplicate of row {seen[e164]}"])
                continue
            seen[e164] = number
            db.execute(
                "INSERT INTO recipients VALUES (?, ?, ?, ?, ?)",
                (number, e164, rec["name"], rec["city"], rec["amount"]),
            )
    db.commit()
    db.close()
    return {"rows": rows, "seconds": time.perf_counter() - start, "imports_mb": imports}


def run_case(args: argparse.Namespace) -> None:
    path = Path(args.file)
    name = args.case
    if name.startswith("read/"):
        result = case_read(path, name.split("/")[1].replace("pandas-c", "pandas"), args.block_rows)
    elif name.startswith("load/"):
        result = case_load(path, name.split("/")[1].replace("pandas-c", "pandas"), args.block_rows)
    elif name.startswith("store/"):
        result = case_store(path, name.split("/")[1], args.block_rows)
    else:
        result = case_baseline(path, args.baseline_rows or sys.maxsize)
    result["peak_mb"] = peak_mb()
    print(json.dumps({"case": name, **result}))


# --- driver --------------------------------------------------------------------------------------


def csv_path(rows: int, cp1256: bool) -> Path:
    path = OUT / f"messy_{rows}{'_cp1256' if cp1256 else ''}.csv"
    if not path.exists():
        # In a child process: ru_maxrss survives fork+exec, so this process must stay small.
        print(f"making {path.name} ...", flush=True)
        env = {
            **os.environ,
            "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])),
        }
        subprocess.run(
            [
                sys.executable,
                "-m",
                "dispatcher.demo.messy",
                str(rows),
                str(path),
                *(["--cp1256"] if cp1256 else []),
            ],
            check=True,
            env=env,
        )
    return path


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="load + normalise + dedupe benchmark")
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--db", choices=["sqlite", "postgres", "none", "all"], default="none")
    parser.add_argument("--cp1256", action="store_true", help="bench a Windows-1256 file")
    parser.add_argument("--block-rows", type=int, default=50_000)
    parser.add_argument("--baseline-rows", type=int, default=0, help="cap the per-row baseline (0: all rows)")
    parser.add_argument("--no-baseline", action="store_true")
    parser.add_argument("--case", help=argparse.SUPPRESS)  # internal: run one case in this process
    parser.add_argument("--file", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.case:
        run_case(args)
        return

    OUT.mkdir(parents=True, exist_ok=True)
    path = csv_path(args.rows, args.cp1256)
    cases = ["read/pyarrow", "read/pandas-c", "load/pyarrow", "load/pandas-c"]
    if args.db in ("sqlite", "all"):
        cases.append("store/sqlite")
    if args.db in ("postgres", "all"):
        cases.append("store/postgres")
    if not args.no_baseline:
        cases.append("baseline/per-row")
    print(
        f"file: {path} ({path.stat().st_size / 1e6:.1f} MB, {args.rows} rows), block_rows={args.block_rows}, cpus={os.cpu_count()}"
    )
    print(f"{'case':18} {'rows':>9} {'seconds':>8} {'rows/s':>10} {'peak RSS':>9} {'imports':>8}")
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])),
    }
    for case in cases:
        cmd = [
            sys.executable,
            __file__,
            "--case",
            case,
            "--file",
            str(path),
            "--block-rows",
            str(args.block_rows),
        ]
        cmd += ["--baseline-rows", str(args.baseline_rows)]
        done = subprocess.run(cmd, capture_output=True, text=True, env=env, check=False)
        if done.returncode != 0:
            print(
                f"{case:18} failed: {done.stderr.strip().splitlines()[-1] if done.stderr.strip() else done.returncode}"
            )
            continue
        r = json.loads(done.stdout.strip().splitlines()[-1])
        if "skipped" in r:
            print(f"{case:18} {r['skipped']}")
            continue
        rate = r["rows"] / r["seconds"] if r["seconds"] else float("inf")
        line = f"{case:18} {r['rows']:>9} {r['seconds']:>8.2f} {rate:>10,.0f} {r['peak_mb']:>6.0f} MB {r['imports_mb']:>5.0f} MB"
        print(line + (f"  {r['detail']}" if r.get("detail") else ""), flush=True)


if __name__ == "__main__":
    main()
