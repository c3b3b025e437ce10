"""Load a recipients file (CSV or .xlsx) in blocks: find the phone column, normalise, deduplicate, reject.

Contract (the store consumes it): `RecipientLoader(path, ...)` sniffs the file at once and raises
`LoadError` (one line: the problem and the fix) for a file it cannot use; `blocks()` then yields
DataFrames of valid, unique recipients: `row` (the spreadsheet row people see: header = row 1), `phone`
(E.164), and every other column as text, original names. Refused rows go to the rejects CSV with the
reason, and `stats` is complete once `blocks()` is exhausted.

Memory does not grow with the file: CSV is read with pyarrow's streaming reader (measured twice as fast
as pandas' C engine with `chunksize`, bench/load_csv.py), .xlsx with openpyxl in read-only mode; only the
numbers already seen (int64, 16 bytes per recipient with their row) are kept across blocks.
"""

from __future__ import annotations

import codecs
import csv
import io
import re
import zipfile
from collections.abc import Collection, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Literal

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv

from campaigns.normalise import VALID, e164, national_numbers, reason_text

__all__ = ["LoadError", "LoadStats", "RecipientLoader", "PHONE_COLUMN_NAMES"]

ROW, PHONE = "row", "phone"
REASON_OPTED_OUT = "opted out"
FIRST_DATA_ROW = 2  # the header is row 1 in the spreadsheet people look at

# Column names that hold the phone number, best first, compared after _name_key (case, spaces,
# separators and Arabic/Persian letter forms ignored). Later tiers are used only if no earlier one matches.
PHONE_COLUMN_NAMES: tuple[frozenset[str], ...] = (
    frozenset(
        {"mobile", "mobileno", "mobilenumber", "mobilephone", "cellphone", "cell", "cellular", "cellnumber",
         "msisdn", "mob", "موبایل", "شمارهموبایل", "همراه", "تلفنهمراه", "شمارههمراه", "شمارهتلفنهمراه"}
    ),
    frozenset(
        {"phone", "phoneno", "phonenumber", "telephone", "tel", "telno", "تلفن", "شمارهتلفن", "شمارهتماس",
         "تماس", "contact", "contactnumber", "receiver", "recipient", "گیرنده", "to"}
    ),
    frozenset({"number", "no", "num", "شماره"}),
)
# Substrings that still mark a phone column ("Customer Mobile", "شماره موبایل مشتری"); "number" and
# "شماره" are left out on purpose: "account number", "شماره ملی" are not phone numbers.
PHONE_COLUMN_PARTS: tuple[tuple[str, ...], ...] = (
    ("mobile", "msisdn", "cellphone", "موبایل", "همراه"),
    ("phone", "تلفن"),
)

_SNIFF_BYTES = 1 << 20
_CONTROL = bytes(set(range(32)) - {9, 10, 12, 13})


class LoadError(ValueError):
    """The recipients file cannot be used; the message is one line naming the problem and the fix."""


@dataclass
class LoadStats:
    """Counts for one load. `rejected` includes `duplicates` and `suppressed`; rows = valid + rejected."""

    rows: int
    valid: int
    rejected: int
    duplicates: int
    suppressed: int
    encoding: str
    phone_column: str
    columns: list[str] = field(default_factory=list)


def _name_key(name: str) -> str:
    """Column name as compared: casefolded, without spaces/separators/invisible marks, Persian letter forms."""
    key = name.casefold().translate({0x064A: "ی", 0x0643: "ک", 0x0649: "ی"})
    return re.sub(r"[\s_\-.:#/()\u200b-\u200f\ufeff]+", "", key)


def _unique_names(raw: list[str]) -> list[str]:
    """Header cells as column names: stripped, blanks named `columnN`, repeats suffixed `.1` (as pandas does)."""
    names: list[str] = []
    seen: set[str] = set()
    for i, cell in enumerate(raw):
        base = (cell or "").strip().strip("\ufeff\u200e\u200f") or f"column{i + 1}"
        name, n = base, 0
        while name in seen:
            n += 1
            name = f"{base}.{n}"
        seen.add(name)
        names.append(name)
    return names


def find_phone_column(columns: list[str], wanted: str | None, source: str) -> str:
    """The phone column: the one named by --column, else the best match by name."""
    if wanted is not None:
        if wanted in columns:
            return wanted
        matches = [c for c in columns if _name_key(c) == _name_key(wanted)]
        if len(matches) == 1:
            return matches[0]
        raise LoadError(f"{source} has no column {wanted!r}; its columns are: {', '.join(columns)}")
    keys = [_name_key(c) for c in columns]
    for names in PHONE_COLUMN_NAMES:
        for column, key in zip(columns, keys, strict=True):
            if key in names:
                return column
    for parts in PHONE_COLUMN_PARTS:
        for column, key in zip(columns, keys, strict=True):
            if any(part in key for part in parts):
                return column
    header_phones = [c for c, code in zip(columns, national_numbers(pd.Series(columns))[1], strict=True) if code == VALID]
    if header_phones:
        raise LoadError(
            f"{source} has no header row (row 1 holds the number {header_phones[0]}); "
            "insert a first row with column names, e.g. mobile"
        )
    raise LoadError(f"{source} has no phone column among: {', '.join(columns)}; name it with --column COLUMN")


def _detect_encoding(path: Path, head: bytes, source: str) -> str:
    """utf-8-sig, utf-8 or cp1256 (Excel's "CSV" on a Persian Windows), else LoadError."""
    if head.startswith(codecs.BOM_UTF8):
        return "utf-8-sig"
    window = head
    if head.isascii():  # look further for the first non-ASCII text: cheap, and an ASCII prefix decides nothing
        with path.open("rb") as fh:
            fh.seek(len(head))
            while window.isascii():
                window = fh.read(_SNIFF_BYTES)
                if not window:
                    return "utf-8"
    try:
        codecs.getincrementaldecoder("utf-8")().decode(window, final=False)
        return "utf-8"
    except UnicodeDecodeError:
        pass
    from charset_normalizer import from_bytes  # only for files that are not UTF-8

    sample = window[:262_144]
    if from_bytes(sample, cp_isolation=["cp1256"]).best() is not None:
        return "cp1256"
    guess = from_bytes(sample).best()
    looks = f" (it looks like {guess.encoding})" if guess is not None else ""
    raise LoadError(f"{source} is neither UTF-8 nor Windows-1256 text{looks}; save it as 'CSV UTF-8' and try again")


def _delimiter(first_line: str) -> str:
    """The separator of the header line: the most frequent of , ; tab | outside quotes (Excel uses ; in some locales)."""
    unquoted = re.sub(r'"[^"]*"', "", first_line)
    counts = {d: unquoted.count(d) for d in (",", ";", "\t", "|")}
    best = max(counts, key=lambda d: counts[d])
    return best if counts[best] else ","


def _cell_text(value: object) -> str:
    """An .xlsx cell as the text Excel shows for it (integral floats without .0)."""
    if value is None:
        return ""
    if isinstance(value, float) and value.is_integer() and abs(value) < 1e16:
        return str(int(value))
    return str(value)


class RecipientLoader:
    """Streams recipients from a CSV (UTF-8, UTF-8 with BOM, Windows-1256) or .xlsx file; see the module doc.

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
        block_rows: int = 200_000,
        suppressed: Collection[str] = (),
        engine: Literal["pyarrow", "pandas"] = "pyarrow",
    ) -> None:
        if block_rows < 1:
            raise ValueError("block_rows must be at least 1")
        self.path = Path(path)
        self.rejects_path = Path(rejects_path) if rejects_path is not None else None
        self.block_rows = block_rows
        self.engine = engine
        self._source = self.path.name
        self._delimiter = ","
        columns = _unique_names(self._sniff())
        self.phone_column = find_phone_column(columns, column, self._source)
        # Another column called row or phone would collide with ours in the blocks: it gets a suffix.
        self.columns = _unique_names(
            [f"{c}.1" if c in (ROW, PHONE) and c != self.phone_column else c for c in columns]
        )
        self._others = [c for c in self.columns if c != self.phone_column]
        national, codes = national_numbers(pd.Series(list(suppressed), dtype=object))
        self._suppressed = np.unique(pc.cast(national.filter(pa.array(codes == VALID)), pa.int64()).to_numpy())
        self.stats = LoadStats(0, 0, 0, 0, 0, self.encoding, self.phone_column, list(self.columns))

    # --- sniffing -----------------------------------------------------------------------------------

    def _sniff(self) -> list[str]:
        """Read the start of the file: decide format and encoding, return the header cells."""
        try:
            with self.path.open("rb") as fh:
                head = fh.read(_SNIFF_BYTES)
        except FileNotFoundError:
            raise LoadError(f"{self.path} does not exist; check the file name") from None
        except IsADirectoryError:
            raise LoadError(f"{self.path} is a folder; give a .csv or .xlsx file") from None
        if not head.strip(b" \t\r\n" + codecs.BOM_UTF8):
            raise LoadError(f"{self._source} is empty; give a file with a header row (e.g. mobile) and one recipient per row")
        if head.startswith(b"PK\x03\x04"):
            self.encoding = "xlsx"
            return self._xlsx_header()
        if head.startswith(b"\xd0\xcf\x11\xe0"):
            raise LoadError(f"{self._source} is an old Excel .xls workbook; save it as .xlsx or 'CSV UTF-8' and try again")
        if head.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
            raise LoadError(f"{self._source} is UTF-16 text; save it as 'CSV UTF-8' and try again")
        sample = head[:65_536]
        if b"\x00" in sample or sum(sample.count(bytes([c])) for c in _CONTROL) > len(sample) // 100:
            raise LoadError(f"{self._source} is not a CSV text file (it holds binary data); give a .csv or .xlsx file")
        self.encoding = _detect_encoding(self.path, head, self._source)
        text = codecs.getincrementaldecoder(self.encoding)(errors="replace").decode(head, final=False)
        self._delimiter = _delimiter(text.split("\n", 1)[0])
        return next(csv.reader(io.StringIO(text), delimiter=self._delimiter), [])

    def _xlsx_header(self) -> list[str]:
        for _, cells in self._xlsx_rows():
            if any(c is not None for c in cells):
                header = [_cell_text(c) for c in cells]
                while header and not header[-1]:  # the sheet's used range often runs past the last column
                    header.pop()
                return header
        raise LoadError(f"{self._source} has an empty first sheet; put the recipients on the first sheet with a header row")

    def _xlsx_rows(self) -> Iterator[tuple[int, tuple[object, ...]]]:
        """(spreadsheet row number, cell values) of the active sheet, streamed."""
        from openpyxl import load_workbook
        from openpyxl.utils.exceptions import InvalidFileException

        try:
            with self.path.open("rb") as fh:
                book = load_workbook(fh, read_only=True, data_only=True)  # a file object: any name works
                try:
                    sheet = book.active if book.active is not None else book.worksheets[0]
                    yield from enumerate(sheet.iter_rows(values_only=True), start=1)  # type: ignore[union-attr]
                finally:
                    book.close()
        except (zipfile.BadZipFile, InvalidFileException, KeyError, OSError) as exc:
            raise LoadError(f"{self._source} is not a readable .xlsx workbook ({exc}); save it again from Excel") from None

    # --- reading ------------------------------------------------------------------------------------

    def _frames(self) -> Iterator[tuple[np.ndarray, pd.DataFrame]]:
        """(row numbers, all columns as text) per block of at most block_rows rows."""
        if self.encoding == "xlsx":
            yield from self._xlsx_frames()
            return
        done = 0
        if self.engine == "pyarrow":
            try:
                for table in self._arrow_tables():
                    n = table.num_rows
                    yield np.arange(done, done + n) + FIRST_DATA_ROW, table.to_pandas()
                    done += n
                return
            except pa.ArrowInvalid as exc:
                if "Expected" not in str(exc):  # only rows with too few/many cells go to the fallback
                    raise self._decode_error(exc) from None
        # pandas' C engine pads short rows, which pyarrow refuses: pick up where pyarrow stopped.
        for frame in self._pandas_frames():
            n = len(frame)
            if done >= n:
                done -= n
                continue
            frame = frame.iloc[done:]
            rows = np.arange(0, len(frame)) + (frame.index[0] + FIRST_DATA_ROW)
            done = 0
            yield rows, frame.reset_index(drop=True)

    def _arrow_tables(self) -> Iterator[pa.Table]:
        ncols = len(self.columns)
        reader = pacsv.open_csv(
            self.path,
            read_options=pacsv.ReadOptions(
                # The header is read as data: pyarrow's own header handling ignores quoting when skipping.
                autogenerate_column_names=True,
                encoding="utf8" if self.encoding.startswith("utf-8") else self.encoding,  # pyarrow drops the BOM
                block_size=int(min(max(self.block_rows * 96, 1 << 16), 32 << 20)),
            ),
            parse_options=pacsv.ParseOptions(delimiter=self._delimiter, newlines_in_values=True, ignore_empty_lines=False),
            convert_options=pacsv.ConvertOptions(
                column_types={f"f{i}": pa.string() for i in range(ncols)},
                strings_can_be_null=False,
                quoted_strings_can_be_null=False,
            ),
        )
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
        try:
            yield from pd.read_csv(
                self.path,
                sep=self._delimiter,
                header=0,
                names=self.columns,
                dtype=str,
                na_filter=False,
                skip_blank_lines=False,  # a blank line is a spreadsheet row too: keeps row numbers right
                encoding=self.encoding,
                chunksize=self.block_rows,
            )
        except pd.errors.ParserError as exc:
            detail = str(exc).strip().splitlines()[-1].removeprefix("Error tokenizing data. C error: ")
            raise LoadError(
                f"{self._source}: {detail} where the header has {len(self.columns)} cells; "
                f"quote values that contain {self._delimiter!r}, or save the file again from Excel"
            ) from None
        except UnicodeDecodeError as exc:
            raise self._decode_error(exc) from None

    def _decode_error(self, exc: Exception) -> LoadError:
        return LoadError(
            f"{self._source} has text that is not valid {self.encoding} further down ({exc}); "
            "save it as 'CSV UTF-8' and try again"
        )

    def _xlsx_frames(self) -> Iterator[tuple[np.ndarray, pd.DataFrame]]:
        ncols = len(self.columns)
        rows = self._xlsx_rows()
        for _, cells in rows:  # skip to the header row (found at sniffing)
            if any(c is not None for c in cells):
                break
        numbers: list[int] = []
        block: list[list[str]] = []
        for number, cells in rows:
            texts = [_cell_text(c) for c in cells[:ncols]]
            block.append(texts + [""] * (ncols - len(texts)))
            numbers.append(number)
            if len(block) >= self.block_rows:
                yield np.array(numbers), pd.DataFrame(block, columns=self.columns, dtype="str")
                numbers, block = [], []
        if block:
            yield np.array(numbers), pd.DataFrame(block, columns=self.columns, dtype="str")

    # --- the blocks ---------------------------------------------------------------------------------

    def blocks(self) -> Iterator[pd.DataFrame]:
        """Valid, unique recipients: row, phone (E.164), then the other columns as text."""
        self.stats = LoadStats(0, 0, 0, 0, 0, self.encoding, self.phone_column, list(self.columns))
        seen = _Seen()
        rejects: IO[str] | None = None
        if self.rejects_path is not None:
            # utf-8-sig: Excel opens a CSV as UTF-8 (Persian intact) only when it starts with a BOM.
            rejects = self.rejects_path.open("w", encoding="utf-8-sig", newline="")
            pd.DataFrame(columns=[ROW, "value", "reason", *self._others]).to_csv(rejects, index=False)
        try:
            for rows, frame in self._frames():
                yield from self._block(rows, frame, seen, rejects)
        finally:
            if rejects is not None:
                rejects.close()

    def _block(self, rows: np.ndarray, frame: pd.DataFrame, seen: _Seen, rejects: IO[str] | None) -> Iterator[pd.DataFrame]:
        national, codes = national_numbers(frame[self.phone_column])
        valid = codes == VALID
        numbers = np.zeros(len(frame), dtype=np.int64)
        numbers[valid] = pc.cast(national.filter(pa.array(valid)), pa.int64()).to_numpy()
        opted = valid & np.isin(numbers, self._suppressed) if len(self._suppressed) else np.zeros_like(valid)
        first_row = seen.add(numbers, rows, valid & ~opted)
        duplicate = first_row > 0
        keep = valid & ~opted & ~duplicate

        stats = self.stats
        stats.rows += len(frame)
        stats.valid += int(keep.sum())
        stats.rejected += int((~keep).sum())
        stats.duplicates += int(duplicate.sum())
        stats.suppressed += int(opted.sum())

        if rejects is not None and not keep.all():
            self._write_rejects(rejects, rows, frame, codes, opted, first_row, ~keep)
        if keep.any():
            out = pd.DataFrame(
                {
                    ROW: rows[keep].astype(np.int64),
                    PHONE: pd.Series(e164(national.filter(pa.array(keep))), dtype="str"),
                }
            )
            kept = frame.loc[keep, self._others].reset_index(drop=True)
            yield pd.concat([out, kept], axis=1)

    def _write_rejects(
        self,
        fh: IO[str],
        rows: np.ndarray,
        frame: pd.DataFrame,
        codes: np.ndarray,
        opted: np.ndarray,
        first_row: np.ndarray,
        rejected: np.ndarray,
    ) -> None:
        reason = pd.Series(reason_text(np.where(codes == VALID, 0, codes)), dtype="str")[rejected]
        reason[opted[rejected]] = REASON_OPTED_OUT
        dup = first_row[rejected] > 0
        reason[dup] = ("duplicate of row " + pd.Series(first_row[rejected][dup]).astype(str)).to_numpy()
        out = pd.DataFrame(
            {ROW: rows[rejected], "value": frame[self.phone_column][rejected].to_numpy(), "reason": reason.to_numpy()}
        )
        others = frame.loc[rejected, self._others].reset_index(drop=True)
        pd.concat([out, others], axis=1).to_csv(fh, header=False, index=False)


class _Seen:
    """Numbers already loaded, with the row of their first occurrence: sorted int64 arrays.

    Each block costs a binary search plus one merge of two sorted runs (a stable argsort is timsort
    for int64, linear on two runs), so the whole load is O(n log n) and 16 bytes per unique number.
    """

    def __init__(self) -> None:
        self.numbers = np.empty(0, dtype=np.int64)
        self.rows = np.empty(0, dtype=np.int64)

    def add(self, numbers: np.ndarray, rows: np.ndarray, mask: np.ndarray) -> np.ndarray:
        """Record the masked numbers; return per position the row it duplicates (0 where it is new or unmasked)."""
        first_row = np.zeros(len(numbers), dtype=np.int64)
        idx = np.flatnonzero(mask)
        if not len(idx):
            return first_row
        values, value_rows = numbers[idx], rows[idx].astype(np.int64)
        found = np.zeros(len(values), dtype=bool)
        earlier = np.zeros(len(values), dtype=np.int64)
        if len(self.numbers):
            pos = np.minimum(np.searchsorted(self.numbers, values), len(self.numbers) - 1)
            found = self.numbers[pos] == values
            earlier = np.where(found, self.rows[pos], 0)
        # This block: the first occurrence of each number is the one with the lowest row.
        order = np.argsort(values, kind="stable")
        sorted_values = values[order]
        starts = np.ones(len(order), dtype=bool)
        starts[1:] = sorted_values[1:] != sorted_values[:-1]
        group_first = np.maximum.accumulate(np.where(starts, np.arange(len(order)), 0))
        within = np.empty(len(order), dtype=np.int64)
        within[order] = np.where(starts, 0, value_rows[order][group_first])
        first_row[idx] = np.where(found, earlier, within)
        new = order[starts & ~found[order]]  # already sorted by value
        merged_numbers = np.concatenate([self.numbers, values[new]])
        merged_order = np.argsort(merged_numbers, kind="stable")
        self.numbers = merged_numbers[merged_order]
        self.rows = np.concatenate([self.rows, value_rows[new]])[merged_order]
        return first_row

