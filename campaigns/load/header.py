"""Where a CSV file's header is: title rows and blank lines may come before it, and the separator is
the one of the header's own line.

A spreadsheet exported as CSV often starts with a title ("لیست مشتریان فروشگاه"), an export date or
blank rows. The header is the row `columns.choose_header` picks among the first `HEADER_SEARCH_ROWS`
rows that are not blank, read with each separator in turn: the separator that finds the header by its
phone column (with the most cells in it) wins; when none does, the first non-blank line decides, as
it always did. Rows are CSV records (a quoted cell may hold line breaks), counted from 1 after Excel's
`sep=` line, as a spreadsheet counts them; line breaks may be `\\r\\n`, `\\n` or a bare `\\r` (Excel
for Mac's "CSV (Macintosh)").
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass, replace

from campaigns.load.columns import HeaderChoice, choose_header, is_blank_row
from campaigns.load.sniff import DELIMITERS, Sniffed, guess_delimiter

HEADER_SEARCH_ROWS = 100  # non-blank rows looked at for the header


@dataclass(frozen=True)
class TopRow:
    """One record near the top of the file: its cells, where it starts in the text (a character index)
    and on which physical line (0-based, within the text after the `sep=` line)."""

    cells: list[str]
    start: int
    line: int


def top_rows(text: str, delimiter: str, limit: int = HEADER_SEARCH_ROWS, *, complete: bool) -> list[TopRow]:
    """The first records of `text` until `limit` of them are not blank (fewer at the end of the text, or
    at a record the csv module cannot read). `complete`: `text` is the whole file; otherwise the record
    running into the end of `text` is dropped (it may be cut)."""
    consumed = [0, 0]  # characters, physical lines

    def lines():  # noqa: ANN202 - the csv module pulls exactly the lines of each record
        for line in io.StringIO(text, newline=""):  # splits at \r\n, \n and a bare \r, keeping them
            consumed[0] += len(line)
            consumed[1] += 1
            yield line

    rows: list[TopRow] = []
    start, line, filled = 0, 0, 0
    # A cell as long as the text itself is read, not taken for damage: the csv module's default limit
    # (131,072 characters) ended the search at a long first line, leaving no header at all. The text is
    # the sniffed head (at most SNIFF_BYTES), so this bounds the limit; it is only ever raised.
    csv.field_size_limit(max(csv.field_size_limit(), len(text) + 1))
    try:
        for cells in csv.reader(lines(), delimiter=delimiter):
            if not complete and consumed[0] >= len(text):
                break
            rows.append(TopRow(cells, start, line))
            start, line = consumed
            filled += not is_blank_row(cells)
            if filled >= limit:
                break
    except csv.Error:  # a NUL byte and the like: what came before it is all there is to look at
        pass
    return rows


def locate_header(
    sniffed: Sniffed, wanted: str | None, header_row: int | None, source: str
) -> tuple[Sniffed, HeaderChoice]:
    """`sniffed` with its header found (cells, spreadsheet row, byte offset, lines before it) and the
    delimiter of the header's line; and how the header was chosen. LoadError for a `header_row` the
    top of the file does not have."""
    text, complete = sniffed.text, sniffed.complete
    first = next((ln for ln in io.StringIO(text, newline="") if ln.strip()), "")
    guessed = sniffed.delimiter if sniffed.hinted else guess_delimiter(first)
    candidates = [guessed] if sniffed.hinted else [guessed, *(d for d in DELIMITERS if d != guessed)]
    best: tuple[tuple[int, int], str, list[TopRow], HeaderChoice] | None = None
    for delimiter in candidates:
        rows = top_rows(text, delimiter, complete=complete)
        if not rows:
            break
        choice = choose_header([r.cells for r in rows], wanted, header_row, source)
        cells = sum(1 for c in rows[choice.index].cells if c.strip())
        score = (choice.rank, cells)
        if best is None or score > best[0]:
            best = (score, delimiter, rows, choice)
        if choice.index == 0 and choice.rank == HeaderChoice.NAMED and delimiter == guessed:
            break  # the common file: the header on row 1, found by name with its own line's separator
    if best is None:
        return sniffed, HeaderChoice(0, HeaderChoice.FIRST)
    _, delimiter, rows, choice = best
    row = rows[choice.index]
    prefix = text[: row.start]
    base = sniffed.encoding.removesuffix("-sig")
    offset = sniffed.text_offset + len(prefix.encode(base, "surrogateescape"))
    return (
        replace(
            sniffed,
            delimiter=delimiter,
            header=tuple(row.cells),
            header_row=choice.index + 1,
            offset=offset,
            skip_lines=sniffed.skip_lines + row.line,
        ),
        choice,
    )
