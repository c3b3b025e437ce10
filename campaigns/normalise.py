"""Iranian mobile numbers: every spelling people type, to E.164 `+989XXXXXXXXX`, or a reason why not.

Which numbers count as mobile is phonenumbers' metadata for region IR, number type MOBILE (read at
import time, so a phonenumbers upgrade moves us with it); tests/test_normalise.py checks our verdict
against `phonenumbers.is_valid_number` + `number_type` with a property test.

Vectorised: the hot path is pandas `.str` methods, which on pyarrow-backed strings run as Arrow
compute kernels (RE2 regexes). Patterns avoid `\\d`, `\\s` and `$`, which would make pandas fall back
to Python's `re` row by row. Only rows holding non-ASCII characters go through `str.translate`.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from phonenumbers import PhoneMetadata

# ASCII on purpose: RE2 (pyarrow) `\d` is ASCII anyway, and pandas would fall back to Python's `re`
# on non-ASCII data when it sees `\d`.
_IR = PhoneMetadata.metadata_for_region("IR")
if _IR is None or _IR.mobile is None or _IR.mobile.national_number_pattern is None:  # pragma: no cover
    raise ImportError("phonenumbers has no mobile metadata for IR")
MOBILE_PATTERN: str = _IR.mobile.national_number_pattern.replace(r"\d", "[0-9]")
"""National significant number (10 digits, `9…`) of an Iranian mobile, from phonenumbers' metadata."""

COUNTRY_CODE = "98"

REASON_EMPTY = "empty"
REASON_NOT_A_NUMBER = "not a number"
REASON_SCIENTIFIC = "number in scientific notation, digits lost (format the column as Text in Excel)"
REASON_FOREIGN = "not an Iranian number"
REASON_SHORT = "too short"
REASON_LONG = "too long"
REASON_NOT_MOBILE = "not a mobile number"

# Persian (U+06F0..) and Arabic-Indic (U+0660..) digits to ASCII; invisible direction marks, zero-width
# characters, Unicode spaces and dashes dropped. Applied only to rows that hold non-ASCII text.
_UNICODE_TABLE: dict[int, int | None] = {
    **{0x06F0 + i: ord(str(i)) for i in range(10)},
    **{0x0660 + i: ord(str(i)) for i in range(10)},
    **dict.fromkeys([0x00A0, 0x1680, 0x202F, 0x205F, 0x3000, 0xFEFF, 0x00AD, 0x061C, 0x2212]),
    **dict.fromkeys(range(0x2000, 0x2010)),  # spaces, zero-width chars, LRM/RLM
    **dict.fromkeys(range(0x2010, 0x2016)),  # hyphens and dashes
    **dict.fromkeys(range(0x2028, 0x202F)),  # separators, LRE/RLE/PDF/LRO/RLO
    **dict.fromkeys(range(0x2066, 0x206A)),  # isolates
    **{0xFF08: ord("("), 0xFF09: ord(")"), 0xFF0B: ord("+")},
}
# ASCII separators people put between digit groups; apostrophes/quotes are Excel's "text" markers.
_SEPARATORS = r"[ \t\r\n\-.()/'\"_]"
_EXCEL_FLOAT = r"^([0-9]+)\.0+\Z"  # Excel stored the number as a float: 9121234567.0
_SCIENTIFIC = r"[0-9](?:\.[0-9]+)?[eE]\+?[0-9]+"


def _as_text(values: pd.Series) -> pd.Series:
    """The values as pandas' string dtype (pyarrow-backed when pyarrow is installed), NA -> ""."""
    if not isinstance(values.dtype, pd.StringDtype):
        values = values.astype("str")
    return values.fillna("")


def national_numbers(values: pd.Series) -> tuple[pd.Series, pd.Series]:
    """Per value: the 10-digit national mobile number (`9…`, or "" if invalid) and the reason (or NA).

    The loader works on national numbers because they fit in int64 for deduplication.
    """
    s = _as_text(values)
    non_ascii = ~s.str.isascii()
    if non_ascii.any():
        s = s.copy()
        s[non_ascii] = s[non_ascii].str.translate(_UNICODE_TABLE)
    s = s.str.strip()
    blank = s.str.len() == 0
    scientific = s.str.fullmatch(_SCIENTIFIC)

    cleaned = s.str.replace(_EXCEL_FLOAT, r"\1", regex=True).str.replace(_SEPARATORS, "", regex=True)
    numeric = cleaned.str.fullmatch(r"\+?[0-9]+")

    intl = cleaned.str.startswith("+") | cleaned.str.startswith("00")
    digits = cleaned.str.replace(r"^(?:\+|00)", "", regex=True)
    has_cc = digits.str.startswith(COUNTRY_CODE)
    foreign = intl & ~has_cc
    # Without + or 00, a leading 98 is the country code only when the rest is long enough to be a number.
    strip_cc = has_cc & (intl | (digits.str.len() >= 12))
    national = digits.where(~strip_cc, digits.str.slice(2)).str.removeprefix("0")  # trunk prefix
    length = national.str.len().to_numpy()
    mobile = national.str.fullmatch(MOBILE_PATTERN).to_numpy(dtype=bool)

    reason_values = np.select(
        [
            blank.to_numpy(dtype=bool),
            scientific.to_numpy(dtype=bool),
            ~numeric.to_numpy(dtype=bool),
            foreign.to_numpy(dtype=bool),
            length < 10,
            length > 10,
            ~mobile,
        ],
        [REASON_EMPTY, REASON_SCIENTIFIC, REASON_NOT_A_NUMBER, REASON_FOREIGN, REASON_SHORT, REASON_LONG, REASON_NOT_MOBILE],
        default="",
    )
    reasons = pd.Series(reason_values, index=values.index, dtype="str")
    valid = reason_values == ""
    national = national.where(valid, "")
    return national, reasons.where(~valid)


def normalise_series(values: pd.Series) -> tuple[pd.Series, pd.Series]:
    """Per value: E.164 (`+989XXXXXXXXX`) or NA, and the reason it was refused or NA."""
    national, reasons = national_numbers(values)
    phones = ("+" + COUNTRY_CODE + national).where(reasons.isna())
    return phones, reasons


def normalise(value: object) -> str | None:
    """One value to E.164, or None when it is not an Iranian mobile number."""
    phones, _ = normalise_series(pd.Series([value], dtype=object))
    phone = phones.iloc[0]
    return None if pd.isna(phone) else str(phone)


def reason(value: object) -> str | None:
    """Why one value is refused (None when it is a valid Iranian mobile number)."""
    _, reasons = normalise_series(pd.Series([value], dtype=object))
    why = reasons.iloc[0]
    return None if pd.isna(why) else str(why)
