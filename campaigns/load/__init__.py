"""Load a recipients file (CSV or .xlsx) in blocks: find the phone column, normalise, deduplicate, reject.

Contract (the store consumes it): `RecipientLoader(path, ...)` sniffs the file at once and raises
`LoadError` (one line: the problem and the fix) for a file it cannot use; `blocks()` then yields
DataFrames of valid, unique recipients: `row` (the spreadsheet row people see), `phone`
(E.164), and every other column as text, original names. Refused rows go to the rejects CSV with the
reason, and `stats` is complete once `blocks()` is exhausted. Rows whose every cell is blank are skipped:
not counted, not rejected.

What the file says is what gets read: cells are the text the person saw (`="0912…"` unwrapped, an
.xlsx number shown through its number format), Excel's `sep=` first line is honoured, title and blank
rows above the header are skipped (the header is the first row with a phone column, or `header_row`),
lines may end in a bare CR (Excel for Mac), sizes come from the data (never a workbook's stored
dimension), a file with no row under its header is refused, and structural
damage (a quote that never closes, a NUL byte, rows longer than the header, bytes that are not the
file's encoding) is refused naming the line and the fix, before anything is stored.

Memory does not grow with the file: CSV is read with pyarrow's streaming reader (measured twice as fast
as pandas' C engine with `chunksize`, bench/load_csv.py), .xlsx with openpyxl in read-only mode; only the
numbers already seen (8 bytes per unique recipient with its row) are kept across blocks.

Modules: sniff (format, encoding, delimiter, damage scans), header (where a CSV's header is), columns
(names, the header row, the phone column), csvread and xlsx (the readers), cells (export idioms, blank
rows), dedup (duplicates, the rejects file), loader.
"""

from campaigns.load.columns import PHONE_COLUMN_NAMES, PHONE_COLUMN_PARTS, find_phone_column
from campaigns.load.dedup import REASON_OPTED_OUT
from campaigns.load.errors import FIRST_DATA_ROW, PHONE, ROW, LoadError, LoadStats
from campaigns.load.loader import RecipientLoader

__all__ = [
    "FIRST_DATA_ROW",
    "PHONE",
    "PHONE_COLUMN_NAMES",
    "PHONE_COLUMN_PARTS",
    "REASON_OPTED_OUT",
    "ROW",
    "LoadError",
    "LoadStats",
    "RecipientLoader",
    "find_phone_column",
]
