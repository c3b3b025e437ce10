"""Column names: the header cells as unique names, and which column holds the phone number."""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from enum import IntEnum
from typing import ClassVar

import pandas as pd

from campaigns.load.errors import LoadError
from campaigns.normalise import VALID, national_numbers

# Column names that hold the phone number, best first, compared after name_key (case, spaces,
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


def name_key(name: str) -> str:
    """Column name as compared: casefolded, without spaces/separators/invisible marks, Persian letter forms."""
    key = name.casefold().translate({0x064A: "ی", 0x0643: "ک", 0x0649: "ی"})
    return re.sub(r"[\s_\-.:#/()\u200b-\u200f\ufeff]+", "", key)


def unique_names(raw: list[str]) -> list[str]:
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


def _by_name(columns: list[str]) -> tuple[str, bool] | None:
    """The phone column by its name: (column, whether the whole name matched), or None."""
    keys = [name_key(c) for c in columns]
    for names in PHONE_COLUMN_NAMES:
        for column, key in zip(columns, keys, strict=True):
            if key in names:
                return column, True
    for parts in PHONE_COLUMN_PARTS:
        for column, key in zip(columns, keys, strict=True):
            if any(part in key for part in parts):
                return column, False
    return None


def listed(columns: Sequence[str], most: int = 12, longest: int = 40) -> str:
    """Column names for a one-line message: a long one cut (`xxxx… (200,000 characters)`), and at most
    `most` of them (`, and 30 more`)."""
    shown = [c if len(c) <= longest else f"{c[:longest]}… ({len(c):,} characters)" for c in columns[:most]]
    more = f", and {len(columns) - most:,} more" if len(columns) > most else ""
    return ", ".join(shown) + more


def find_phone_column(columns: list[str], wanted: str | None, source: str, row: int = 1) -> str:
    """The phone column: the one named by --column, else the best match by name; LoadError if none.
    `row`: the spreadsheet row the header is on (for the message)."""
    if wanted is not None:
        if wanted in columns:
            return wanted
        matches = [c for c in columns if name_key(c) == name_key(wanted)]
        if len(matches) == 1:
            return matches[0]
        raise LoadError(f"{source} has no column {wanted!r}; its columns are: {listed(columns)}")
    found = _by_name(columns)
    if found is not None:
        return found[0]
    header_phones = [
        c for c, code in zip(columns, national_numbers(pd.Series(columns))[1], strict=True) if code == VALID
    ]
    if header_phones:
        raise LoadError(
            f"{source} has no header row (row {row} holds the number {header_phones[0]}); "
            f"insert a {'first row' if row == 1 else 'row above it'} with column names, e.g. mobile"
        )
    raise LoadError(f"{source} has no phone column among: {listed(columns)}; name it with --column COLUMN")


def is_blank_row(cells: Sequence[str]) -> bool:
    """A row whose every cell is empty or whitespace (formatted-but-empty rows included) is not a row."""
    return not any((c or "").strip() for c in cells)


def _holds_a_phone(cells: Sequence[str]) -> bool:
    """Whether a cell of the row is an Iranian mobile number (a header row holds none)."""
    _, codes = national_numbers(pd.Series([c or "" for c in cells], dtype=object))
    return bool((codes == VALID).any())


class Rank(IntEnum):
    """How surely a row is the header: higher wins (see `choose_header`)."""

    FIRST = 0  # the first row that is not blank: nothing better was found
    PART = 1  # a column whose name holds a phone word ("Customer Mobile")
    NAMED = 2  # a column named like a phone (`mobile`, `شماره موبایل`), the --column name, or --header-row


@dataclass(frozen=True)
class HeaderChoice:
    """The header's index among the rows looked at (row 1 first), and how it was found."""

    index: int
    rank: Rank

    FIRST: ClassVar[Rank] = Rank.FIRST
    PART: ClassVar[Rank] = Rank.PART
    NAMED: ClassVar[Rank] = Rank.NAMED


def choose_header(
    rows: Sequence[Sequence[str]], wanted: str | None, header_row: int | None, source: str
) -> HeaderChoice:
    """Which of the file's first rows is the header (an index into `rows`, row 1 first).

    Title rows and blank rows may come first ("لیست مشتریان فروشگاه", an export's date): the header is
    `header_row` when given (counted as the spreadsheet counts rows, blank ones included; LoadError
    when the file has no such row near its top, or it is blank); else the first row holding the
    `--column` name; else the first row with a recognisable phone column (a whole name such as `mobile`
    or `شماره موبایل` before a part of one, so a title like "Mobile numbers, autumn" does not win over
    the header under it); else the first row that is not blank (`find_phone_column` then says why).
    A row holding a mobile number is a recipient's, never the header (a "No" in a yes/no column).
    """
    if header_row is not None:
        if header_row < 1 or header_row > len(rows):
            raise LoadError(
                f"--header-row {header_row}: {source} has {len(rows)} rows near its top; "
                f"give the row number the spreadsheet shows for the header (1 to {len(rows)})"
            )
        if is_blank_row(rows[header_row - 1]):
            raise LoadError(
                f"--header-row {header_row}: row {header_row} of {source} is blank; "
                "give the row number the spreadsheet shows for the header"
            )
        return HeaderChoice(header_row - 1, Rank.NAMED)
    filled = [i for i, row in enumerate(rows) if not is_blank_row(row)]
    part: int | None = None
    for i in filled:
        names = unique_names(list(rows[i]))
        if _holds_a_phone(rows[i]):  # a recipient's row ("No" in a yes/no column), never a header
            continue
        if wanted is not None:
            if wanted in names or any(name_key(c) == name_key(wanted) for c in names):
                return HeaderChoice(i, Rank.NAMED)
            continue
        found = _by_name(names)
        if found is not None and found[1]:
            return HeaderChoice(i, Rank.NAMED)
        if found is not None and part is None:
            part = i
    if part is not None:
        return HeaderChoice(part, Rank.PART)
    return HeaderChoice(filled[0] if filled else 0, Rank.FIRST)
