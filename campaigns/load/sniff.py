"""What a file is before it is read: format, encoding, delimiter (with Excel's `sep=` hint), and the
structural damage a CSV reader would otherwise read past (NUL bytes, an unclosed quote, bad bytes)."""

from __future__ import annotations

import codecs
import io
import re
from collections.abc import Iterator
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path

from campaigns.load.errors import LoadError

SNIFF_BYTES = 1 << 20
_CONTROL = bytes(set(range(1, 32)) - {9, 10, 12, 13})  # NUL is counted on its own
_SEP_HINT = re.compile(r"\A\ufeff?sep=(.)\s*\Z", re.IGNORECASE)
DELIMITERS = (",", ";", "\t", "|")
_FIX_SAVE = "save the file again from the spreadsheet (or fix that line) and try again"


class FileFormat(StrEnum):
    """What a recipients file is, by its content (never by its name)."""

    CSV = "csv"
    XLSX = "xlsx"


@dataclass(frozen=True)
class Sniffed:
    """What the start of a file says: its format, and for CSV the encoding and delimiter; once
    `campaigns.load.header.locate_header` has found it, the header's cells, its spreadsheet row (Excel's
    `sep=` line is not a row), its byte offset (the readers start there) and how many physical lines
    come before it. `text`: the start of the file decoded (after the `sep=` line; bytes the encoding
    cannot hold kept as surrogates), beginning at byte `text_offset`; `complete`: it is the whole file."""

    format: FileFormat
    encoding: str = "xlsx"  # utf-8, utf-8-sig, cp1256 or xlsx
    delimiter: str = ","
    header: tuple[str, ...] = ()
    skip_lines: int = 0
    header_row: int = 1
    offset: int = 0
    hinted: bool = False  # the delimiter comes from Excel's `sep=` line
    text: str = ""
    text_offset: int = 0
    complete: bool = True


def sniff(path: Path, source: str) -> Sniffed:
    """Read the start of `path`; LoadError (one line, with the fix) for a file that is not CSV text or .xlsx."""
    try:
        with path.open("rb") as fh:
            head = fh.read(SNIFF_BYTES)
            complete = len(head) < SNIFF_BYTES or not fh.read(1)
    except FileNotFoundError:
        raise LoadError(f"{path} does not exist; check the file name") from None
    except IsADirectoryError:
        raise LoadError(f"{path} is a folder; give a .csv or .xlsx file") from None
    if not head.strip(b" \t\r\n" + codecs.BOM_UTF8):
        raise LoadError(
            f"{source} is empty; give a file with a header row (e.g. mobile) and one recipient per row"
        )
    if head.startswith(b"PK\x03\x04"):
        return Sniffed(FileFormat.XLSX)
    if head.startswith(b"\xd0\xcf\x11\xe0"):
        raise LoadError(
            f"{source} is an old Excel .xls workbook; save it as .xlsx or 'CSV UTF-8' and try again"
        )
    if head.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        raise LoadError(f"{source} is UTF-16 text; save it as 'CSV UTF-8' and try again")
    sample = head[:65_536]
    if sample.count(b"\x00") > 16 or sum(sample.count(bytes([c])) for c in _CONTROL) > len(sample) // 100:
        raise LoadError(f"{source} is not a CSV text file (it holds binary data); give a .csv or .xlsx file")
    encoding = detect_encoding(path, head, source)
    # surrogateescape: every byte is kept, so a character index maps back to its byte offset exactly
    text = codecs.getincrementaldecoder(encoding)(errors="surrogateescape").decode(head, final=complete)
    offset = len(codecs.BOM_UTF8) if encoding == "utf-8-sig" else 0
    first = next(iter(io.StringIO(text, newline="")), "")  # a line ends at \r\n, \n or a bare \r
    hint = _SEP_HINT.match(first.rstrip("\r\n"))
    if hint:  # Excel's delimiter hint: Excel hides this line, the header is the next one
        offset += len(first.encode(encoding.removesuffix("-sig"), "surrogateescape"))
        return Sniffed(
            FileFormat.CSV,
            encoding,
            hint.group(1),
            skip_lines=1,
            offset=offset,
            hinted=True,
            text=text[len(first) :],
            text_offset=offset,
            complete=complete,
        )
    return Sniffed(
        FileFormat.CSV,
        encoding,
        guess_delimiter(first),
        offset=offset,
        text=text,
        text_offset=offset,
        complete=complete,
    )


def detect_encoding(path: Path, head: bytes, source: str) -> str:
    """utf-8-sig, utf-8 or cp1256 (Excel's "CSV" on a Persian Windows), else LoadError."""
    if head.startswith(codecs.BOM_UTF8):
        return "utf-8-sig"
    window = head
    if head.isascii():  # look further for the first non-ASCII text: an ASCII prefix decides nothing
        with path.open("rb") as fh:
            fh.seek(len(head))
            while window.isascii():
                window = fh.read(SNIFF_BYTES)
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


def guess_delimiter(first_line: str) -> str:
    """The separator of the header line: the most frequent of , ; tab | outside quotes (Excel uses ; in some locales)."""
    unquoted = re.sub(r'"[^"]*"', "", first_line)
    counts = {d: unquoted.count(d) for d in DELIMITERS}
    best = max(counts, key=lambda d: counts[d])
    return best if counts[best] else ","


def _chunks(path: Path) -> Iterator[bytes]:
    with path.open("rb") as fh:
        while chunk := fh.read(SNIFF_BYTES):
            yield chunk


def line_at(path: Path, offset: int) -> int:
    """The physical line (1-based) holding byte `offset` of the file; a line ends at `\\r\\n`, `\\n` or a
    bare `\\r` (Excel for Mac's "CSV (Macintosh)")."""
    lines, done, after_cr = 1, 0, False
    for chunk in _chunks(path):
        part = chunk[: max(0, offset - done)]
        if part:
            lines += part.count(b"\n") + part.count(b"\r") - part.count(b"\r\n")
            lines -= after_cr and part.startswith(b"\n")  # a \r\n split between two chunks
            after_cr = part.endswith(b"\r")
        done += len(chunk)
        if done >= offset:
            break
    return lines


def check_no_nul(path: Path, source: str) -> None:
    """LoadError naming the line of the first NUL byte: a damaged save (often a file cut short and padded
    with zeros), which a CSV reader would pass on as text. One memchr per MiB: ~20 ms for 50 MB."""
    done = 0
    for chunk in _chunks(path):
        at = chunk.find(b"\x00")
        if at >= 0:
            raise LoadError(
                f"{source} line {line_at(path, done + at)} holds a NUL byte: the file is damaged; {_FIX_SAVE}"
            )
        done += len(chunk)


def unclosed_quote_line(lines: Iterator[str], delimiter: str, skip_lines: int = 0) -> int | None:
    """The physical line where a quoted field opens that no later quote closes (None when every quote
    closes). A quote opens a field only at its start (after the delimiter or a line break), as in
    RFC 4180 and in pyarrow's and pandas' readers; inside it `""` is a quote, a lone `"` closes it.
    A pure-Python pass: run only when a reader reports the end of the file inside quotes."""
    opened: int | None = None
    for number, line in enumerate(lines, 1):
        if number <= skip_lines:
            continue
        i = 0
        while True:
            if opened is None:
                if line.startswith('"', i):
                    opened, i = number, i + 1
                else:
                    j = line.find(delimiter, i)
                    if j < 0:
                        break
                    i = j + 1
                    continue
            j = line.find('"', i)
            while j >= 0 and line.startswith('""', j):
                j = line.find('"', j + 2)
            if j < 0:
                break  # the field goes on on the next line
            opened = None
            k = line.find(delimiter, j + 1)
            if k < 0:
                break
            i = k + 1
    return opened


def unclosed_quote_error(
    path: Path, encoding: str, delimiter: str, skip_lines: int, source: str
) -> LoadError:
    """The one-line refusal of a file whose quote opened on some line never closes."""
    with path.open(encoding=encoding, errors="replace", newline="") as fh:
        line = unclosed_quote_line(iter(fh), delimiter, skip_lines)
    where = f"line {line}" if line is not None else "a line"
    return LoadError(
        f'{source} {where} opens a quote (") that never closes, so every line after it would be read as '
        f"one cell; close the quote on that line or remove it, then try again"
    )


def bad_text_line(path: Path, encoding: str) -> int | None:
    """The physical line holding the first bytes that are not valid `encoding` text (None if all are)."""
    decoder = codecs.getincrementaldecoder(encoding)()
    done = 0
    for chunk in _chunks(path):
        try:
            decoder.decode(chunk, final=False)
        except UnicodeDecodeError as exc:
            return line_at(path, done + exc.start)
        done += len(chunk)
    try:
        decoder.decode(b"", final=True)
    except UnicodeDecodeError:
        return line_at(path, done) if done else 1
    return None


def cut_off_cells(path: Path, encoding: str, delimiter: str) -> int | None:
    """The number of cells on the file's last line when that line has no line break after it and holds no
    quote (so it is one whole record); None otherwise. A last row shorter than the header and without a
    line break is the signature of a file cut off while it was written or copied (spreadsheets write
    every separator of a row, and end the file with a line break)."""
    with path.open("rb") as fh:
        size = fh.seek(0, 2)
        fh.seek(max(0, size - 65_536))
        tail = fh.read()
    if not tail or tail.endswith((b"\n", b"\r")):
        return None
    last = tail[max(tail.rfind(b"\n"), tail.rfind(b"\r")) + 1 :]
    if b'"' in last or len(last) == len(tail) == 65_536:
        return None
    return len(last.decode(encoding.replace("-sig", ""), "replace").split(delimiter))
