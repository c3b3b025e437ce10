"""Cell text as the person saw it: export idioms undone, and which rows are blank."""

from __future__ import annotations

import re

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

_FORMULA_TEXT = re.compile(r'^="(.*)"$', re.DOTALL)
_FORMULA_TEXT_ARROW = r'^="(.*)"$'


def unwrap_formula_text(column: pa.ChunkedArray | pa.Array) -> pa.ChunkedArray | pa.Array:
    """`="09120000001"` (the export idiom that makes Excel keep a leading zero) as `09120000001`, in a
    column of strings; `""` inside it is one quote. Other cells are unchanged. A cheap prefix test
    first: the regex runs only on columns that hold the idiom."""
    starts = pc.starts_with(column, '="')
    if not pc.any(starts).as_py():
        return column
    inner = pc.replace_substring_regex(column, _FORMULA_TEXT_ARROW, r"\1")
    inner = pc.replace_substring(inner, '""', '"')
    return pc.if_else(pc.and_(starts, pc.ends_with(column, '"')), inner, column)


def unwrap_formula_cell(text: str) -> str:
    """One cell's `="…"` idiom undone (for workbook cells that hold it as text)."""
    match = _FORMULA_TEXT.match(text)
    return match.group(1).replace('""', '"') if match else text


def blank_rows(table: pa.Table, candidates: np.ndarray) -> np.ndarray:
    """Per row: True where every cell is empty or whitespace. Only `candidates` (rows whose phone cell
    is empty) are looked at, so the cost follows the few empty phones, not the file."""
    blank = candidates.copy()
    idx = np.flatnonzero(candidates)
    if not len(idx):
        return blank
    sub = table.take(pa.array(idx))
    for column in sub.columns:
        filled = pc.greater(pc.utf8_length(pc.utf8_trim_whitespace(column)), 0)
        blank[idx] &= ~np.asarray(filled.to_numpy(zero_copy_only=False), dtype=bool)
    return blank
