"""Column names: the header cells as unique names, and which column holds the phone number."""

from __future__ import annotations

import re

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


def find_phone_column(columns: list[str], wanted: str | None, source: str) -> str:
    """The phone column: the one named by --column, else the best match by name; LoadError if none."""
    if wanted is not None:
        if wanted in columns:
            return wanted
        matches = [c for c in columns if name_key(c) == name_key(wanted)]
        if len(matches) == 1:
            return matches[0]
        raise LoadError(f"{source} has no column {wanted!r}; its columns are: {', '.join(columns)}")
    keys = [name_key(c) for c in columns]
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
