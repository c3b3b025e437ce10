"""Duplicates and the rejects file: numbers already seen, and the CSV of refused rows."""

from __future__ import annotations

import codecs
import csv
import io
from pathlib import Path
from typing import BinaryIO

import numpy as np

REASON_OPTED_OUT = "opted out"


def opted_out(reason: str | None) -> str:
    """The rejects-file reason of a suppressed number: "opted out", with the stored reason when there is one."""
    reason = (reason or "").strip()
    if not reason:
        return REASON_OPTED_OUT
    return reason if reason.startswith(REASON_OPTED_OUT) else f"{REASON_OPTED_OUT}: {reason}"


def csv_line(cells: list[str]) -> bytes:
    """One CSV line, UTF-8."""
    buffer = io.StringIO()
    csv.writer(buffer, lineterminator="\n").writerow(cells)  # as pyarrow ends the rows
    return buffer.getvalue().encode("utf-8")


def open_rejects(path: Path, header: list[str]) -> BinaryIO:
    """The rejects CSV, opened with its header; the BOM makes Excel open it as UTF-8, Persian intact."""
    fh = path.open("wb")
    fh.write(codecs.BOM_UTF8 + csv_line(header))
    return fh


class Seen:
    """Numbers already loaded, with the row of their first occurrence: sorted uint32 arrays.

    A national mobile number is 9XXXXXXXXX, so number - 9e9 fits in uint32: 8 bytes per unique number
    with its row. Per block: sort the block, one binary search against the numbers seen (sorted needles
    keep it cache-friendly), and one linear insert of the new ones. No hashing, no Python per row.
    """

    OFFSET = 9_000_000_000

    def __init__(self) -> None:
        self.numbers = np.empty(0, dtype=np.uint32)
        self.rows = np.empty(0, dtype=np.uint32)

    def add(self, numbers: np.ndarray, rows: np.ndarray, mask: np.ndarray) -> np.ndarray:
        """Record the masked (valid) numbers; return per position the row it duplicates (0 where new or unmasked)."""
        first_row = np.zeros(len(numbers), dtype=np.int64)
        idx = np.flatnonzero(mask)
        if not len(idx):
            return first_row
        order = idx[np.argsort(numbers[idx], kind="stable")]  # stable: equal numbers keep row order
        values = (numbers[order] - self.OFFSET).astype(np.uint32)
        value_rows = rows[order].astype(np.uint32)
        # Within the block: the first of a run of equal numbers is the first occurrence.
        starts = np.ones(len(values), dtype=bool)
        starts[1:] = values[1:] != values[:-1]
        run_first = np.maximum.accumulate(np.where(starts, np.arange(len(values)), 0))
        dup_of = np.where(starts, 0, value_rows[run_first]).astype(np.int64)
        # Earlier blocks win over this one.
        pos = np.searchsorted(self.numbers, values)
        found = np.zeros(len(values), dtype=bool)
        if len(self.numbers):
            at = np.minimum(pos, len(self.numbers) - 1)
            found = self.numbers[at] == values
            dup_of = np.where(found, self.rows[at], dup_of)
        first_row[order] = dup_of
        new = starts & ~found
        self.numbers = np.insert(self.numbers, pos[new], values[new])
        self.rows = np.insert(self.rows, pos[new], value_rows[new])
        return first_row
