"""RecipientLoader: a recipients file (CSV or .xlsx) as blocks of valid, unique recipients."""

from __future__ import annotations

import os
from collections.abc import Callable, Collection, Iterator, Mapping
from pathlib import Path
from typing import BinaryIO, Literal

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv

from campaigns.load.cells import blank_rows, unwrap_formula_text
from campaigns.load.columns import choose_header, find_phone_column, unique_names
from campaigns.load.csvread import CsvReader
from campaigns.load.dedup import Seen, open_rejects, opted_out
from campaigns.load.errors import PHONE, ROW, LoadError, LoadStats
from campaigns.load.header import HEADER_SEARCH_ROWS, locate_header
from campaigns.load.sniff import FileFormat, check_no_nul, sniff
from campaigns.load.xlsx import Workbook, is_blank
from campaigns.normalise import VALID, e164, national_numbers, reason_text


def returning_memory_pool() -> None:
    """Arrow's allocations from then on from a pool that gives freed blocks back to the system: jemalloc,
    else the system allocator. pyarrow's default on Linux, mimalloc, kept what a million-row `send` had
    freed: its peak RSS was ~50 MB higher (docs/benchmarks.md, "Storing a campaign"). Left as it is when
    ARROW_DEFAULT_MEMORY_POOL chooses one."""
    if os.environ.get("ARROW_DEFAULT_MEMORY_POOL") or pa.default_memory_pool().backend_name != "mimalloc":
        return
    try:
        pool = pa.jemalloc_memory_pool()
    except NotImplementedError:  # a pyarrow built without jemalloc
        pool = pa.system_memory_pool()
    pa.set_memory_pool(pool)


EMPTY = 0  # normalise's reason code of an empty cell (REASONS[0])
E164_DIGITS = 980_000_000_000  # + a national 9XXXXXXXXX = its E.164 digits 989XXXXXXXXX


class RecipientLoader:
    """Streams recipients from a CSV (UTF-8, UTF-8 with BOM, Windows-1256) or .xlsx file; see the package doc.

    `sheet`: for a workbook, the sheet to read (name or 1-based number); LoadError for a CSV file.
    `header_row`: the header's row as the spreadsheet counts rows (1 = the first; blank rows count),
    else the first row with a recognisable phone column (`campaigns.load.columns.choose_header`).
    `notices`: lines to show the person (which sheet was read of several; which row was taken as the
    header when it is not row 1); `notice` joins them, or None.
    `engine="pandas"` reads CSV with pandas' C engine instead of pyarrow (same output; for the bench).
    """

    columns: list[str]  # the file's columns (unique names), phone column included
    phone_column: str
    encoding: str  # utf-8, utf-8-sig, cp1256 or xlsx

    def __init__(
        self,
        path: str | Path,
        *,
        column: str | None = None,
        rejects_path: str | Path | None = None,
        block_rows: int = 50_000,  # measured: 200k blocks peaked at 670 MB storing a million rows, 50k at 400 MB, same speed
        suppressed: Collection[str] = (),
        engine: Literal["pyarrow", "pandas"] = "pyarrow",
        sheet: str | int | None = None,
        header_row: int | None = None,
    ) -> None:
        if block_rows < 1:
            raise ValueError("block_rows must be at least 1")
        self.path = Path(path)
        self.rejects_path = Path(rejects_path) if rejects_path is not None else None
        self.block_rows = block_rows
        returning_memory_pool()
        self.engine = engine
        self._source = self.path.name
        self.sniffed = sniff(self.path, self._source)
        self.encoding = self.sniffed.encoding
        self.workbook: Workbook | None = None
        self.notices: list[str] = []
        if self.sniffed.format == FileFormat.XLSX:
            self.workbook = Workbook(self.path, self._source, sheet)
            top = self.workbook.head(HEADER_SEARCH_ROWS)
            if self.workbook.notice:
                self.notices.append(self.workbook.notice)
            choice = choose_header(top, column, header_row, self._source)
            header = self.workbook.header(choice.index)
        else:
            if sheet is not None:
                raise LoadError(
                    f"{self._source} is CSV text, which has no sheets; drop --sheet (it is for .xlsx workbooks)"
                )
            check_no_nul(self.path, self._source)
            self.sniffed, choice = locate_header(self.sniffed, column, header_row, self._source)
            header = list(self.sniffed.header)
        self.header_row = choice.index + 1
        columns = unique_names(header)
        self.phone_column = find_phone_column(columns, column, self._source, self.header_row)
        if self.header_row != 1:
            self.notices.append(header_notice(self._source, self.header_row, columns, given=header_row))
        # Another column called row or phone would collide with ours in the blocks: it gets a suffix.
        self.columns = unique_names(
            [f"{c}.1" if c in (ROW, PHONE) and c != self.phone_column else c for c in columns]
        )
        self._others = [c for c in self.columns if c != self.phone_column]
        # Suppressed numbers, sorted, with the reason each was listed for (a Mapping phone -> reason gives
        # them; a plain collection means "opted out"): the rejects file shows it.
        listed = list(suppressed)
        national, codes = national_numbers(pd.Series(listed, dtype=object))
        ok = codes == VALID
        self._suppressed, first = np.unique(
            pc.cast(national.filter(pa.array(ok)), pa.int64()).to_numpy(), return_index=True
        )
        given = (
            [suppressed.get(p) for p in listed] if isinstance(suppressed, Mapping) else [None] * len(listed)
        )
        self._suppressed_reasons = np.array([opted_out(r) for r in given], dtype=object)[ok][first]
        self.stats = LoadStats(0, 0, 0, 0, 0, self.encoding, self.phone_column, list(self.columns))
        # Called per block with the E.164 digits (int64) of the valid numbers the suppression list took
        # out: the preflight's fingerprint names the list as loaded, before suppressions (Tally.add_suppressed).
        self.on_suppressed: Callable[[np.ndarray], None] | None = None

    @property
    def notice(self) -> str | None:
        """The notices, one per line; None when there is none."""
        return "\n".join(self.notices) or None

    @property
    def block_columns(self) -> list[str]:
        """The columns of every block (what a template can use): row, phone, then the other columns."""
        return [ROW, PHONE, *self._others]

    @property
    def sheet(self) -> str | None:
        """The name of the sheet read (None for CSV)."""
        return self.workbook.sheet_name if self.workbook else None

    # --- reading ------------------------------------------------------------------------------------

    def _tables(self) -> Iterator[tuple[np.ndarray, pa.Table]]:
        """(row numbers, all columns as Arrow strings) per block of at most block_rows rows."""
        if self.workbook is not None:
            yield from self._xlsx_tables(self.workbook)
            return
        reader = CsvReader(self.path, self.sniffed, self.columns, self._source, self.block_rows, self.engine)
        if reader.cut_off is not None:
            cells, header = reader.cut_off
            self._cut_reason = (
                f"cut off: the file ends inside this row ({cells} of the header's {header} cells); "
                "save the file again from the spreadsheet"
            )
        for rows, table in reader.tables():
            yield (
                rows,
                pa.Table.from_arrays([unwrap_formula_text(c) for c in table.columns], names=self.columns),
            )

    def _xlsx_tables(self, book: Workbook) -> Iterator[tuple[np.ndarray, pa.Table]]:
        ncols = len(self.columns)
        rows = book.data_rows()
        numbers: list[int] = []
        block: list[list[str]] = []

        def table() -> pa.Table:
            return pa.Table.from_arrays(
                [pa.array(col, pa.string()) for col in zip(*block, strict=True)], names=self.columns
            )

        for number, texts in rows:
            texts = texts[:ncols]
            if is_blank(texts):  # blank rows (formatted-but-empty ones too) are not rows
                continue
            block.append(texts + [""] * (ncols - len(texts)))
            numbers.append(number)
            if len(block) >= self.block_rows:
                yield np.array(numbers, dtype=np.int64), table()
                numbers, block = [], []
        if block:
            yield np.array(numbers, dtype=np.int64), table()

    # --- the blocks ---------------------------------------------------------------------------------

    def blocks(self) -> Iterator[pd.DataFrame]:
        """Valid, unique recipients: row, phone (E.164), then the other columns as text."""
        self.stats = LoadStats(0, 0, 0, 0, 0, self.encoding, self.phone_column, list(self.columns))
        seen = Seen()
        rejects: BinaryIO | None = None
        if self.rejects_path is not None:
            rejects = open_rejects(self.rejects_path, [ROW, "value", "reason", *self._others])
        self._cut_reason: str | None = None
        try:
            pending: tuple[np.ndarray, pa.Table] | None = None
            for rows, table in self._tables():  # one block behind: the last one may end in a cut-off row
                if pending is not None:
                    yield from self._block(*pending, seen, rejects)
                pending = rows, table
            if pending is not None:
                yield from self._block(*pending, seen, rejects, cut_last=self._cut_reason)
            if self.stats.rows == 0:
                raise LoadError(
                    f"{self._source} has no rows under the header (row {self.header_row}: "
                    f"{', '.join(self.stats.columns)}); put one recipient per row under it and try again"
                )
        finally:
            if rejects is not None:
                rejects.close()

    def _block(
        self,
        rows: np.ndarray,
        table: pa.Table,
        seen: Seen,
        rejects: BinaryIO | None,
        cut_last: str | None = None,
    ) -> Iterator[pd.DataFrame]:
        """One block: blank rows dropped, the rest counted, valid unique ones yielded, others rejected.
        `cut_last`: the reason the block's last row is refused (the file ends inside it), else None."""
        phones = table.column(self.phone_column)
        national, codes = national_numbers(phones)
        cut = np.zeros(len(rows), dtype=bool)
        if cut_last is not None and len(rows):
            cut[-1] = True
        blank = blank_rows(table, codes == EMPTY)
        if blank.any():  # a row whose every cell is blank is not a row: not counted, not rejected
            filled = ~blank
            rows, table, codes, cut = rows[filled], table.filter(pa.array(filled)), codes[filled], cut[filled]
            national = national.filter(pa.array(filled))
            phones = table.column(self.phone_column)
        valid = (codes == VALID) & ~cut
        numbers = np.zeros(len(rows), dtype=np.int64)
        numbers[valid] = pc.cast(national.filter(pa.array(valid)), pa.int64()).to_numpy()
        opted = valid & np.isin(numbers, self._suppressed)
        if self.on_suppressed is not None and opted.any():
            self.on_suppressed(numbers[opted] + E164_DIGITS)
        first_row = seen.add(numbers, rows, valid & ~opted)
        duplicate = first_row > 0
        keep = valid & ~opted & ~duplicate

        stats = self.stats
        stats.rows += len(rows)
        stats.valid += int(keep.sum())
        stats.rejected += int((~keep).sum())
        stats.duplicates += int(duplicate.sum())
        stats.suppressed += int(opted.sum())

        others = table.select(self._others)
        if rejects is not None and not keep.all():
            rejected = pa.array(~keep)
            dup_text = pc.binary_join_element_wise(
                "duplicate of row ", pc.cast(pa.array(first_row), pa.string()), ""
            )
            reason = pc.if_else(pa.array(duplicate), dup_text, reason_text(codes))
            if opted.any():
                why = np.full(len(rows), None, dtype=object)
                why[opted] = self._suppressed_reasons[np.searchsorted(self._suppressed, numbers[opted])]
                reason = pc.if_else(pa.array(opted), pa.array(why, type=pa.string()), reason)
            if cut_last is not None:
                reason = pc.if_else(pa.array(cut), pa.scalar(cut_last), reason)
            out = pa.Table.from_arrays(
                [pa.array(rows), phones, reason, *others.columns],
                names=[ROW, "value", "reason", *self._others],
            ).filter(rejected)
            pacsv.write_csv(out, rejects, pacsv.WriteOptions(include_header=False))
        if keep.any():
            kept = pa.array(keep)
            frame = others.filter(kept).to_pandas()
            frame.insert(0, ROW, rows[keep])
            frame.insert(1, PHONE, pd.Series(e164(national.filter(kept)), dtype="str"))
            yield frame


def header_notice(source: str, row: int, columns: list[str], *, given: int | None) -> str:
    """The line that says which row was taken as the header, when it is not row 1."""
    shown = ", ".join(columns[:4]) + (", …" if len(columns) > 4 else "")
    how = "as --header-row says" if given is not None else "the first row with a phone column"
    above = "row 1 above it is" if row == 2 else f"rows 1-{row - 1} above it are"
    return f"{source}: the header is row {row} ({shown}), {how}; {above} skipped" + (
        "" if given is not None else "; choose another with --header-row N"
    )
