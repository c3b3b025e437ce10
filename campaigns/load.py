"""Load a recipients file (CSV or .xlsx) in blocks: find the phone column, normalise, deduplicate, reject.

Contract (the store consumes it): `RecipientLoader(path, ...)` sniffs the file at once and raises
`LoadError` (one line: the problem and the fix) for a file it cannot use; `blocks()` then yields
DataFrames of valid, unique recipients: `row` (the spreadsheet row people see: header = row 1), `phone`
(E.164), and every other column as text, original names. Refused rows go to the rejects CSV with the
reason, and `stats` is complete once `blocks()` is exhausted.

Memory does not grow with the file: CSV is read with pyarrow's streaming reader (measured twice as fast
as pandas' C engine with `chunksize`, bench/load_csv.py), .xlsx with openpyxl in read-only mode; only the
numbers already seen (8 bytes per unique recipient with its row) are kept across blocks.
"""

from __future__ import annotations

import codecs
import csv
import io
import re
import warnings
import zipfile
from collections.abc import Collection, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO, Literal

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
        {
            "mobile",
            "mobileno",
            "mobilenumber",
            "mobilephone",
            "cellphone",
            "cell",
            "cellular",
            "cellnumber",
            "msisdn",
            "mob",
            "موبایل",
            "شمارهموبایل",
            "همراه",
            "تلفنهمراه",
            "شمارههمراه",
            "شمارهتلفنهمراه",
        }
    ),
    frozenset(
        {
            "phone",
            "phoneno",
            "phonenumber",
            "telephone",
            "tel",
            "telno",
            "تلفن",
            "شمارهتلفن",
            "شمارهتماس",
            "تماس",
            "contact",
            "contactnumber",
            "receiver",
            "recipient",
            "گیرنده",
            "to",
        }
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
    header_phones = [
        c for c, code in zip(columns, national_numbers(pd.Series(columns))[1], strict=True) if code == VALID
    ]
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
    if (
        head.isascii()
    ):  # look further for the first non-ASCII text: cheap, and an ASCII prefix decides nothing
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
    raise LoadError(
        f"{source} is neither UTF-8 nor Windows-1256 text{looks}; save it as 'CSV UTF-8' and try again"
    )


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
        block_rows: int = 50_000,  # measured: 200k blocks peaked at 670 MB storing a million rows, 50k at 400 MB, same speed
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
        self._suppressed_reasons = np.array([_opted_out(r) for r in given], dtype=object)[ok][first]
        self.stats = LoadStats(0, 0, 0, 0, 0, self.encoding, self.phone_column, list(self.columns))

    @property
    def block_columns(self) -> list[str]:
        """The columns of every block (what a template can use): row, phone, then the other columns."""
        return [ROW, PHONE, *self._others]

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
            raise LoadError(
                f"{self._source} is empty; give a file with a header row (e.g. mobile) and one recipient per row"
            )
        if head.startswith(b"PK\x03\x04"):
            self.encoding = "xlsx"
            return self._xlsx_header()
        if head.startswith(b"\xd0\xcf\x11\xe0"):
            raise LoadError(
                f"{self._source} is an old Excel .xls workbook; save it as .xlsx or 'CSV UTF-8' and try again"
            )
        if head.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
            raise LoadError(f"{self._source} is UTF-16 text; save it as 'CSV UTF-8' and try again")
        sample = head[:65_536]
        if b"\x00" in sample or sum(sample.count(bytes([c])) for c in _CONTROL) > len(sample) // 100:
            raise LoadError(
                f"{self._source} is not a CSV text file (it holds binary data); give a .csv or .xlsx file"
            )
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
        raise LoadError(
            f"{self._source} has an empty first sheet; put the recipients on the first sheet with a header row"
        )

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
            raise LoadError(
                f"{self._source} is not a readable .xlsx workbook ({exc}); save it again from Excel"
            ) from None

    # --- reading ------------------------------------------------------------------------------------

    def _tables(self) -> Iterator[tuple[np.ndarray, pa.Table]]:
        """(row numbers, all columns as Arrow strings) per block of at most block_rows rows."""
        if self.encoding == "xlsx":
            yield from self._xlsx_tables()
            return
        done = 0
        if self.engine == "pyarrow":
            try:
                for table in self._arrow_tables():
                    yield np.arange(done, done + table.num_rows) + FIRST_DATA_ROW, table
                    done += table.num_rows
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
            rows = frame.index.to_numpy(dtype=np.int64) + FIRST_DATA_ROW  # chunks keep counting the index
            yield rows, pa.Table.from_pandas(frame.fillna(""), preserve_index=False)

    def _arrow_tables(self) -> Iterator[pa.Table]:
        with self.path.open("rb") as fh:
            # A Python file object, not the path: with a path pyarrow reads ahead of us without bound
            # (measured: 160 MB held for a 160 MB file); with a file object it keeps ~5 MB of 1 MiB blocks.
            reader = pacsv.open_csv(
                fh,
                read_options=pacsv.ReadOptions(
                    # The header is read as data: pyarrow's skip_rows would ignore quotes in the header.
                    autogenerate_column_names=True,
                    encoding="utf8"
                    if self.encoding.startswith("utf-8")
                    else self.encoding,  # pyarrow drops the BOM
                    block_size=1 << 20,
                ),
                parse_options=pacsv.ParseOptions(
                    delimiter=self._delimiter, newlines_in_values=True, ignore_empty_lines=False
                ),
                convert_options=pacsv.ConvertOptions(
                    column_types={f"f{i}": pa.string() for i in range(len(self.columns))},
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
        fix = f"quote values that contain {self._delimiter!r}, or save the file again from Excel"
        try:
            with pd.read_csv(
                self.path,
                sep=self._delimiter,
                header=0,
                names=self.columns,
                index_col=False,  # extra cells must not silently become the index
                dtype=str,
                na_filter=False,
                skip_blank_lines=False,  # a blank line is a spreadsheet row too: keeps row numbers right
                encoding=self.encoding,
                chunksize=self.block_rows,
            ) as reader:
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
                f"{self._source}: rows have more cells than the header's {len(self.columns)}; {fix}"
            ) from None
        except pd.errors.ParserError as exc:
            detail = (
                str(exc).strip().splitlines()[-1].removeprefix("Error tokenizing data. C error: ").rstrip(".")
            )
            raise LoadError(
                f"{self._source}: {detail} but the header has {len(self.columns)}; {fix}"
            ) from None
        except UnicodeDecodeError as exc:
            raise self._decode_error(exc) from None

    def _decode_error(self, exc: Exception) -> LoadError:
        return LoadError(
            f"{self._source} has text that is not valid {self.encoding} further down ({exc}); "
            "save it as 'CSV UTF-8' and try again"
        )

    def _xlsx_tables(self) -> Iterator[tuple[np.ndarray, pa.Table]]:
        ncols = len(self.columns)
        rows = self._xlsx_rows()
        for _, cells in rows:  # skip to the header row (found at sniffing)
            if any(c is not None for c in cells):
                break
        numbers: list[int] = []
        block: list[list[str]] = []

        def table() -> pa.Table:
            return pa.Table.from_arrays(
                [pa.array(col, pa.string()) for col in zip(*block, strict=True)], names=self.columns
            )

        for number, cells in rows:
            texts = [_cell_text(c) for c in cells[:ncols]]
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
        seen = _Seen()
        rejects: BinaryIO | None = None
        if self.rejects_path is not None:
            rejects = self.rejects_path.open("wb")
            # The BOM makes Excel open the CSV as UTF-8, Persian intact.
            rejects.write(codecs.BOM_UTF8 + _csv_line([ROW, "value", "reason", *self._others]))
        try:
            for rows, table in self._tables():
                yield from self._block(rows, table, seen, rejects)
        finally:
            if rejects is not None:
                rejects.close()

    def _block(
        self, rows: np.ndarray, table: pa.Table, seen: _Seen, rejects: BinaryIO | None
    ) -> Iterator[pd.DataFrame]:
        phones = table.column(self.phone_column)
        national, codes = national_numbers(phones)
        valid = codes == VALID
        numbers = np.zeros(len(rows), dtype=np.int64)
        numbers[valid] = pc.cast(national.filter(pa.array(valid)), pa.int64()).to_numpy()
        opted = valid & np.isin(numbers, self._suppressed)
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


def _opted_out(reason: str | None) -> str:
    """The rejects-file reason of a suppressed number: "opted out", with the stored reason when there is one."""
    reason = (reason or "").strip()
    if not reason:
        return REASON_OPTED_OUT
    return reason if reason.startswith(REASON_OPTED_OUT) else f"{REASON_OPTED_OUT}: {reason}"


def _csv_line(cells: list[str]) -> bytes:
    buffer = io.StringIO()
    csv.writer(buffer).writerow(cells)
    return buffer.getvalue().encode("utf-8")


class _Seen:
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
