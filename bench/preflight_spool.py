"""Benchmark: one pass over the file for the preflight and the store (the spool), against two passes.

    python bench/preflight_spool.py --rows 1000000

`send` reads the file once: the loader's blocks go through the Tally and into a spool on disk
(dispatcher.app.preflight.BlockSpool), and planning reads the spool. The alternative reads the file a
second time with a new loader. Prints seconds for: the loader alone, the second read each way (a new
loader pass, or reading the spool back), what the spool costs during the first pass, and its size.

Measured 2026-11-29 (2 cores shared with six others): 1,000,000 rows -> 784,593 recipients; a loader
pass 0.6 s (what a second pass would cost, more for .xlsx: openpyxl); loader + spool 0.5 s (the spool's
cost is within the noise), the spool read back in 0.01 s, 34 MB on disk.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from campaigns.load import RecipientLoader  # noqa: E402
from dispatcher.app.preflight.usecase import BlockSpool  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=1_000_000)
    args = parser.parse_args()
    rng = np.random.default_rng(1)
    numbers = np.unique(rng.integers(9120000000, 9399999999, size=args.rows, dtype=np.int64))
    folder = Path(tempfile.mkdtemp())
    path = folder / "list.csv"
    with path.open("w", encoding="utf-8") as f:
        f.write("mobile,name\n")
        f.writelines(f"0{n},name{i % 1000}\n" for i, n in enumerate(numbers))
    rejects = folder / "list.rejects.csv"

    started = time.perf_counter()
    n = sum(len(b) for b in RecipientLoader(path, rejects_path=rejects).blocks())
    loader_s = time.perf_counter() - started

    spool = BlockSpool()
    started = time.perf_counter()
    for block in RecipientLoader(path, rejects_path=rejects).blocks():
        spool.add(block)
    with_spool_s = time.perf_counter() - started
    size = spool._file.tell()
    started = time.perf_counter()
    m = sum(len(b) for b in spool)
    read_s = time.perf_counter() - started
    assert m == n
    print(f"{n:,} recipients; loader pass {loader_s:.2f} s (the second pass of a two-pass send)")
    print(
        f"one pass: loader + spool {with_spool_s:.2f} s (spool {with_spool_s - loader_s:+.2f} s), "
        f"spool read back {read_s:.2f} s, {size / 1e6:.0f} MB on disk"
    )


if __name__ == "__main__":
    main()
