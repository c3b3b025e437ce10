"""Reading an .xlsx workbook: which sheet, and every cell as the text Excel shows for it.

Number formats (ECMA-376 §18.8.30/31: `0%`, `00000`, `#,##0`, dates, times, sections, literals) are
rendered by xlfmt, a dependency-free renderer of Excel's format codes: the value 0.2 formatted `0%` is
`20%`, 123 formatted `00000` is `00123`, 1500000 formatted `#,##0` is `1,500,000`. `General` cells keep
every digit (Excel's General display depends on the column width; a long number is never shortened
to `9.12E+09` here), integral floats without `.0`.
"""

from __future__ import annotations

import datetime as dt
import zipfile
from collections.abc import Iterator
from pathlib import Path

from campaigns.load.cells import unwrap_formula_cell
from campaigns.load.errors import LoadError

GENERAL = "General"
# A workbook is a zip: its parts are inflated before a row is read. The guard counts what really comes
# out (the sizes a zip declares are the zip's own word, and a crafted one lies), part by part, and stops
# past these (OWASP ASVS 5.0 5.2.3). A million-row sheet inflates to about 150 MB.
MAX_INFLATED_BYTES = 1024 * 1024 * 1024
MAX_ENTRIES = 10_000


class InflationError(LoadError):
    """A workbook that inflates past the guard (the API answers 413)."""


def check_inflation(
    path: Path, source: str, max_bytes: int | None = None, max_entries: int | None = None
) -> int:
    """Inflate every part of the workbook once, counting bytes and entries as they come out (never the
    declared sizes); LoadError ("inflates past …") beyond `max_bytes` or `max_entries`. Returns the bytes."""
    max_bytes = max_bytes or MAX_INFLATED_BYTES
    max_entries = max_entries or MAX_ENTRIES
    total = 0
    try:
        with zipfile.ZipFile(path) as archive:
            entries = archive.infolist()
            if len(entries) > max_entries:
                raise InflationError(
                    f"{source} inflates past the guard: {len(entries):,} parts, at most {max_entries:,}; "
                    "it is not a workbook Excel writes"
                )
            for entry in entries:
                with archive.open(entry) as part:
                    while block := part.read(1 << 20):
                        total += len(block)
                        if total > max_bytes:
                            raise InflationError(
                                f"{source} inflates past the guard of {max_bytes // 1048576:,} MB; "
                                "split the workbook or save it as CSV"
                            )
    except (zipfile.BadZipFile, OSError, EOFError) as exc:
        raise LoadError(
            f"{source} is not a readable .xlsx workbook ({exc}); save it again from Excel"
        ) from None
    return total


def general_text(value: object) -> str:
    """A cell in the General format: integral floats without .0, text with `="…"` undone."""
    if value is None:
        return ""
    if isinstance(value, float) and value.is_integer() and abs(value) < 1e16:
        return str(int(value))
    if isinstance(value, str):
        return unwrap_formula_cell(value)
    return str(value)


def cell_text(value: object, number_format: str | None, date1904: bool = False) -> str:
    """The text Excel shows for a cell's value under its number format (see the module doc)."""
    if value is None:
        return ""
    if type(value) is str:  # most cells; text shows as typed (a format's rare text section is not applied)
        return unwrap_formula_cell(value) if value.startswith("=") else value
    if isinstance(value, bool):
        return "TRUE" if value else "FALSE"
    if isinstance(value, str):
        return general_text(value)
    fmt = number_format or GENERAL
    if fmt == GENERAL and not isinstance(value, dt.date | dt.time | dt.timedelta):
        return general_text(value)
    from xlfmt import format_value

    try:
        return str(format_value(value, fmt, date1904=date1904))
    except (ValueError, ArithmeticError, TypeError):  # a format code xlfmt cannot read: the plain value
        return general_text(value)


def is_blank(texts: list[str]) -> bool:
    """A row whose every cell is empty or whitespace (formatted-but-empty rows included) is not a row."""
    return not any(t.strip() for t in texts)


class Workbook:
    """One sheet of an .xlsx file, streamed (openpyxl read-only: memory does not grow with the sheet).

    `sheet`: a name (exact, else case-insensitive) or a 1-based number given as int or digits; None for
    the sheet the workbook opens on. `sheet_name`, `sheet_names` and `notice` (a line saying which sheet
    was read when there are several and none was named, else None) are known once opened.
    """

    def __init__(self, path: Path, source: str, sheet: str | int | None = None) -> None:
        self.path, self.source, self.wanted = path, source, sheet
        self._inflation_checked = False
        self.sheet_names: list[str] = []
        self.sheet_name = ""
        self.notice: str | None = None
        self._head: list[tuple[int, list[str]]] = []  # the first rows, read to find the header
        self._after_head: Iterator[tuple[int, list[str]]] | None = None  # the open pass, past the head
        self.header_index = 0

    def _choose(self, book: object) -> object:
        """The sheet to read (sets sheet_name, sheet_names, notice); LoadError for a sheet not there."""
        names: list[str] = list(book.sheetnames)  # type: ignore[attr-defined]
        self.sheet_names = names
        wanted = self.wanted
        if wanted is None:
            sheet = book.active if book.active is not None else book.worksheets[0]  # type: ignore[attr-defined]
            self.sheet_name = sheet.title
            if len(names) > 1:
                self.notice = (
                    f"{self.source} has {len(names)} sheets ({', '.join(names)}); read {sheet.title!r}, "
                    "the one the workbook opens on; choose another with --sheet NAME|NUMBER"
                )
            return sheet
        text = str(wanted).strip()
        if text in names:
            match = text
        elif (loose := [n for n in names if n.casefold() == text.casefold()]) and len(loose) == 1:
            match = loose[0]
        elif text.isdigit() and 1 <= int(text) <= len(names):
            match = names[int(text) - 1]
        else:
            raise LoadError(
                f"{self.source} has no sheet {text!r}; its sheets are: "
                f"{', '.join(f'{i} {n}' for i, n in enumerate(names, 1))}; give --sheet NAME or NUMBER"
            )
        self.sheet_name = match
        return book[match]  # type: ignore[index]

    def rows(self) -> Iterator[tuple[int, list[str]]]:
        """(spreadsheet row number, cell texts) of the chosen sheet, streamed; LoadError if unreadable.

        The sheet's stored dimension (`<dimension ref="A1:C500"/>`) is not trusted: a wrong one would cut
        rows and columns off, or pad every row to thousands of empty cells. Rows and cells are read as
        they are in the sheet."""
        from openpyxl import load_workbook
        from openpyxl.utils.exceptions import InvalidFileException

        if not self._inflation_checked:  # before openpyxl inflates anything
            check_inflation(self.path, self.source)
            self._inflation_checked = True
        try:
            with self.path.open("rb") as fh:
                book = load_workbook(fh, read_only=True, data_only=True)  # a file object: any name works
                try:
                    sheet = self._choose(book)
                    if hasattr(sheet, "reset_dimensions"):
                        sheet.reset_dimensions()  # read what is there, not what the file says is there
                    date1904 = bool(getattr(book, "epoch", None) == dt.datetime(1904, 1, 1))
                    for number, cells in enumerate(sheet.iter_rows(), start=1):  # type: ignore[attr-defined]
                        yield (
                            number,
                            [cell_text(c.value, getattr(c, "number_format", None), date1904) for c in cells],
                        )
                finally:
                    book.close()
        except (zipfile.BadZipFile, InvalidFileException, KeyError, OSError) as exc:
            raise LoadError(
                f"{self.source} is not a readable .xlsx workbook ({exc}); save it again from Excel"
            ) from None

    def head(self, filled: int, most: int = 10_000) -> list[list[str]]:
        """The sheet's first rows, row 1 first, until `filled` of them are not blank (at most `most` rows).
        Call it first: it also chooses the sheet. The sheet stays open after them: `data_rows(header)`
        goes on from there. LoadError when they are all blank."""
        stream = self.rows()
        head: list[tuple[int, list[str]]] = []
        seen = 0
        for number, texts in stream:
            head.append((number, texts))
            seen += not is_blank(texts)
            if seen >= filled or len(head) >= most:
                break
        if not seen:
            raise LoadError(
                f"{self.source} sheet {self.sheet_name!r} is empty; put the recipients on it with a header "
                "row, or choose the sheet with --sheet NAME|NUMBER"
            )
        self._head, self._after_head = head, stream
        return [texts for _, texts in head]

    def header(self, index: int) -> list[str]:
        """The cells of the head's row `index` (0 = row 1), the header, without the empty cells past its
        last name (the used range often runs past the last column)."""
        self.header_index = index
        texts = list(self._head[index][1])
        while texts and not texts[-1].strip():
            texts.pop()
        return texts

    def data_rows(self) -> Iterator[tuple[int, list[str]]]:
        """The rows after the header: on from where `head()` stopped (one pass over the sheet), or from a
        fresh pass when read again."""
        stream, self._after_head = self._after_head, None
        if stream is not None:
            yield from self._head[self.header_index + 1 :]
            yield from stream
            return
        stream = self.rows()
        for _ in range(self.header_index + 1):  # skip to the header row
            next(stream, None)
        yield from stream
