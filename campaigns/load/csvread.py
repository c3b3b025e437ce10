"""Reading CSV text in blocks: pyarrow's streaming reader, pandas' C engine where pyarrow stops.

Both read every cell as text and keep blank lines (row numbers stay the spreadsheet's). Structural
damage is refused here, with the line and the fix: a quote that never closes (pyarrow would read the
rest of the file into one cell), rows longer than the header, text that is not in the file's encoding.
"""

from __future__ import annotations

import re
import warnings
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import BinaryIO, Literal

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.csv as pacsv

from campaigns.load.errors import LoadError
from campaigns.load.sniff import Sniffed, bad_text_line, cut_off_cells, unclosed_quote_error


class CsvReader:
    """Blocks of (spreadsheet row numbers, all columns as Arrow strings) of at most `block_rows` rows,
    read from the header on (`sniffed.offset`: rows above it, and Excel's `sep=` line, are not read)."""

    def __init__(
        self,
        path: Path,
        sniffed: Sniffed,
        columns: list[str],
        source: str,
        block_rows: int,
        engine: Literal["pyarrow", "pandas"],
    ) -> None:
        self.path, self.sniffed, self.columns, self.source = path, sniffed, columns, source
        self.block_rows, self.engine = block_rows, engine
        self.first_row = sniffed.header_row + 1  # the spreadsheet row of the first row under the header
        cells = cut_off_cells(path, sniffed.encoding, sniffed.delimiter)
        # The last row, when the file ends inside it: (its cells, the header's), for the rejects file.
        self.cut_off: tuple[int, int] | None = (
            (cells, len(columns)) if cells is not None and cells < len(columns) else None
        )

    def tables(self) -> Iterator[tuple[np.ndarray, pa.Table]]:
        done = 0
        if self.engine == "pyarrow":
            try:
                last: pa.Table | None = None
                for table in self._arrow_tables():
                    if last is not None:
                        yield np.arange(done, done + last.num_rows) + self.first_row, last
                        done += last.num_rows
                    last = table
                if last is not None:  # held back one block: an unclosed quote shows in the last row
                    self._check_last_row(last)
                    yield np.arange(done, done + last.num_rows) + self.first_row, last
                return
            except pa.ArrowInvalid as exc:
                if "UTF8" in str(exc):
                    raise self._decode_error(exc) from None
        # pyarrow refuses rows with fewer cells than the header (pandas' C engine pads them) and a row
        # longer than its block; pandas takes over where pyarrow stopped, or says what is wrong.
        for frame in self._pandas_frames():
            if done >= len(frame):
                done -= len(frame)
                continue
            frame, done = frame.iloc[done:], 0
            rows = frame.index.to_numpy(dtype=np.int64) + self.first_row  # chunks keep counting the index
            yield rows, pa.Table.from_pandas(frame.fillna(""), preserve_index=False)

    def _check_last_row(self, table: pa.Table) -> None:
        """pyarrow reads a quote still open at the end of the file as a last cell running to the end of
        the file, line breaks included: refuse that file. A quoted cell that closed ends before a `"`."""
        if not table.num_rows:
            return
        last = table.column(table.num_columns - 1)[-1].as_py() or ""
        tail = ('"' + last.replace('"', '""')).encode(self.sniffed.encoding.replace("-sig", ""), "replace")
        with self.path.open("rb") as fh:
            size = fh.seek(0, 2)
            if size < len(tail):
                return
            fh.seek(size - len(tail))
            if fh.read() == tail:
                raise unclosed_quote_error(
                    self.path,
                    self.sniffed.encoding,
                    self.sniffed.delimiter,
                    self.sniffed.skip_lines,
                    self.source,
                )

    def _arrow_tables(self) -> Iterator[pa.Table]:
        ncols = len(self.columns)
        with self.path.open("rb") as fh:
            # A Python file object, not the path: with a path pyarrow reads ahead of us without bound
            # (measured: 160 MB held for a 160 MB file); with a file object it keeps ~5 MB of 1 MiB blocks.
            fh.seek(self.sniffed.offset)  # the header's first byte: `sep=`, title and blank rows stay behind
            reader = pacsv.open_csv(
                fh,
                read_options=pacsv.ReadOptions(
                    # The header is read as data (then dropped): pyarrow's skip_rows ignores quotes.
                    autogenerate_column_names=True,
                    encoding="utf8" if self.sniffed.encoding.startswith("utf-8") else self.sniffed.encoding,
                    block_size=1 << 20,
                ),
                parse_options=pacsv.ParseOptions(
                    delimiter=self.sniffed.delimiter,
                    newlines_in_values=True,
                    ignore_empty_lines=False,
                ),
                convert_options=pacsv.ConvertOptions(
                    column_types={f"f{i}": pa.string() for i in range(ncols)},
                    strings_can_be_null=False,
                    quoted_strings_can_be_null=False,
                ),
            )
            yield from self._reblock(reader)

    def _reblock(self, reader: Iterable[pa.RecordBatch]) -> Iterator[pa.Table]:
        """pyarrow's batches (sized in bytes) as tables of exactly block_rows rows (the last may be short)."""
        pending: list[pa.RecordBatch] = []
        count, header_seen = 0, False
        for batch in reader:
            if not header_seen:
                batch, header_seen = batch.slice(1), True
            pending.append(batch)
            count += batch.num_rows
            while count >= self.block_rows:
                table = pa.Table.from_batches(pending)
                yield table.slice(0, self.block_rows).rename_columns(self.columns)
                rest = table.slice(self.block_rows)
                pending, count = rest.to_batches(), rest.num_rows
        if count:
            yield pa.Table.from_batches(pending).rename_columns(self.columns)

    def _pandas_frames(self) -> Iterator[pd.DataFrame]:
        delimiter = self.sniffed.delimiter
        fix = f"quote values that contain {delimiter!r}, or save the file again from Excel"
        try:
            with (
                self.path.open("rb") as fh,
                pd.read_csv(
                    _at(fh, self.sniffed.offset),
                    sep=delimiter,
                    header=0,
                    names=self.columns,
                    index_col=False,  # extra cells must not silently become the index
                    dtype=str,
                    na_filter=False,
                    skip_blank_lines=False,  # a blank line is a spreadsheet row too: keeps row numbers right
                    encoding=self.sniffed.encoding,
                    chunksize=self.block_rows,
                ) as reader,
            ):
                while True:
                    with warnings.catch_warnings():
                        # Rows all longer than the header: pandas would drop the extra cells with a warning.
                        warnings.simplefilter("error", pd.errors.ParserWarning)
                        frame = next(reader, None)
                    if frame is None:
                        return
                    yield frame
        except pd.errors.ParserWarning:
            raise LoadError(
                f"{self.source}: rows have more cells than the header's {len(self.columns)}; {fix}"
            ) from None
        except pd.errors.ParserError as exc:
            detail = (
                str(exc).strip().splitlines()[-1].removeprefix("Error tokenizing data. C error: ").rstrip(".")
            )
            if detail.startswith("EOF inside string"):
                raise unclosed_quote_error(
                    self.path, self.sniffed.encoding, delimiter, self.sniffed.skip_lines, self.source
                ) from None
            skipped = self.sniffed.skip_lines  # pandas counts lines from the header, the file from its start
            detail = re.sub(r"\bline (\d+)", lambda m: f"line {int(m.group(1)) + skipped}", detail)
            raise LoadError(
                f"{self.source}: {detail} but the header has {len(self.columns)}; {fix}"
            ) from None
        except UnicodeDecodeError as exc:
            raise self._decode_error(exc) from None

    def _decode_error(self, exc: Exception) -> LoadError:
        encoding = self.sniffed.encoding
        line = bad_text_line(self.path, encoding)
        where = f"line {line}: " if line is not None else ""
        return LoadError(
            f"{self.source} has text that is not valid {encoding} further down ({where}{exc}); "
            "save it as 'CSV UTF-8' and try again"
        )


def _at(fh: BinaryIO, offset: int) -> BinaryIO:
    """`fh`, positioned at `offset` (pandas reads on from where the file object is)."""
    fh.seek(offset)
    return fh
