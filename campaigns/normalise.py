"""Iranian mobile numbers: every spelling people type, to E.164 `+989XXXXXXXXX`, or a reason why not.

Which numbers count as mobile is phonenumbers' metadata for region IR, number type MOBILE, read at
import time so that a phonenumbers upgrade moves us with it; tests/test_normalise.py checks our
verdict against `phonenumbers.is_valid_number` + `number_type` with a property test.

Vectorised with Arrow compute kernels (RE2 regexes) on the column as a whole. We call pyarrow.compute
directly rather than through pandas `.str`, because pandas runs `.str.translate`/`.str.extract` and
some regexes in Python per row, and its masked assignment copies: measured 3.4 s against 0.5 s for a
million messy values. Only rows holding non-ASCII text go through `str.translate`, and only rows that
are not already plain digits go through the (slow) regex replace.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
from phonenumbers import PhoneMetadata

_IR = PhoneMetadata.metadata_for_region("IR")
if _IR is None or _IR.mobile is None or _IR.mobile.national_number_pattern is None:  # pragma: no cover
    raise ImportError("phonenumbers has no mobile metadata for region IR")
MOBILE_PATTERN: str = _IR.mobile.national_number_pattern
"""National significant number (10 digits, `9…`) of an Iranian mobile, as phonenumbers' metadata has it."""

COUNTRY_CODE = "98"

# The order is the order of precedence: a row gets the first reason that applies.
REASON_EMPTY = "empty"
REASON_NOT_A_NUMBER = "not a number"
REASON_SCIENTIFIC = "number in scientific notation, digits lost (format the column as Text in Excel)"
REASON_FOREIGN = "not an Iranian number"
REASON_SHORT = "too short"
REASON_LONG = "too long"
REASON_NOT_MOBILE = "not a mobile number"
REASONS: tuple[str, ...] = (
    REASON_EMPTY,
    REASON_SCIENTIFIC,
    REASON_NOT_A_NUMBER,
    REASON_FOREIGN,
    REASON_SHORT,
    REASON_LONG,
    REASON_NOT_MOBILE,
)
VALID = len(REASONS)
"""Reason code of a valid number; codes below it index REASONS."""
_REASON_TEXT = pa.array([*REASONS, None], type=pa.string())

# Persian (U+06F0..) and Arabic-Indic (U+0660..) digits to ASCII; invisible direction marks, zero-width
# characters, Unicode spaces and dashes dropped; full-width ( ) + to ASCII.
_UNICODE_TABLE: dict[int, int | None] = {
    **{0x06F0 + i: ord("0") + i for i in range(10)},
    **{0x0660 + i: ord("0") + i for i in range(10)},
    **dict.fromkeys([0x00A0, 0x00AD, 0x061C, 0x1680, 0x202F, 0x205F, 0x2212, 0x3000, 0xFEFF]),
    **dict.fromkeys(range(0x2000, 0x2016)),  # spaces, zero-width chars, LRM/RLM, hyphens and dashes
    **dict.fromkeys(range(0x2028, 0x202F)),  # separators, LRE/RLE/PDF/LRO/RLO
    **dict.fromkeys(range(0x2066, 0x206A)),  # isolates
    0xFF08: ord("("),
    0xFF09: ord(")"),
    0xFF0B: ord("+"),
}
_PLAIN = r"^\+?[0-9]+$"
_SCIENTIFIC = r"^[0-9](?:\.[0-9]+)?[eE]\+?[0-9]+$"  # Excel shows 989121234567 as 9.89121E+11
# Excel's float (9121234567.0) keeps its digits; otherwise drop ASCII separators people put between
# digit groups, and apostrophes/quotes (Excel's "store as text" marker).
_EXCEL_FLOAT_OR_SEPARATOR = r"^([0-9]+)\.0+$|[ \t\r\n\v\f\-.()/'\"_]"
_MOBILE = "^(?:" + MOBILE_PATTERN + ")$"


def _arrow_text(values: pd.Series) -> pa.Array:
    """The values as an Arrow string array, missing values as ""."""
    if not isinstance(values.dtype, pd.StringDtype):
        values = values.astype("str")  # numbers from .xlsx or callers: 9121234567 -> "9121234567"
    array = pa.array(values.array)
    if isinstance(array, pa.ChunkedArray):
        array = array.combine_chunks()
    return pc.fill_null(array, "")


def _np(mask: pa.Array) -> np.ndarray:
    return mask.to_numpy(zero_copy_only=False)


def _clean(text: pa.Array) -> tuple[pa.Array, np.ndarray, np.ndarray, np.ndarray]:
    """Separators dropped and digits made ASCII, plus masks: blank, scientific notation, numeric (`+?[0-9]+`)."""
    non_ascii = pc.invert(pc.string_is_ascii(text))
    if pc.any(non_ascii).as_py():
        # Python per row, but only for rows with non-ASCII text: there is no Arrow kernel for a translate table.
        translated = [value.translate(_UNICODE_TABLE) for value in text.filter(non_ascii).to_pylist()]
        text = pc.replace_with_mask(text, non_ascii, pa.array(translated, type=text.type))
    blank = np.zeros(len(text), dtype=bool)
    scientific = np.zeros(len(text), dtype=bool)
    numeric = _np(pc.match_substring_regex(text, _PLAIN))
    messy = pa.array(~numeric)
    messy_idx = np.flatnonzero(~numeric)
    if len(messy_idx):
        sub = pc.utf8_trim_whitespace(text.filter(messy))
        blank[messy_idx] = _np(pc.equal(pc.binary_length(sub), 0))
        scientific[messy_idx] = _np(pc.match_substring_regex(sub, _SCIENTIFIC))
        sub = pc.replace_substring_regex(sub, _EXCEL_FLOAT_OR_SEPARATOR, r"\1")
        numeric[messy_idx] = _np(pc.match_substring_regex(sub, _PLAIN))
        text = pc.replace_with_mask(text, messy, sub)
    return text, blank, scientific, numeric


def national_numbers(values: pd.Series) -> tuple[pa.Array, np.ndarray]:
    """Per value: the 10-digit national mobile number (`9…`, "" when invalid) and the reason code
    (an index into REASONS, or VALID).

    The loader works on national numbers because they fit in int64 for deduplication.
    """
    text, blank, scientific, numeric = _clean(_arrow_text(values))
    length = _np(pc.binary_length(text)).astype(np.int64)  # bytes == characters once ASCII digits

    def starts(prefix: str) -> np.ndarray:
        return _np(pc.starts_with(text, prefix))

    plus_cc, zeros_cc = starts("+" + COUNTRY_CODE), starts("00" + COUNTRY_CODE)
    intl = starts("+") | starts("00")
    # Without + or 00, a leading 98 is the country code only if the rest is long enough to be a number.
    bare_cc = ~intl & starts(COUNTRY_CODE) & (length >= 12)
    prefix = np.where(plus_cc, 3, np.where(zeros_cc, 4, np.where(bare_cc, 2, 0)))
    trunk_zero = (
        (plus_cc & starts("+" + COUNTRY_CODE + "0"))
        | (zeros_cc & starts("00" + COUNTRY_CODE + "0"))
        | (bare_cc & starts(COUNTRY_CODE + "0"))
        | (~intl & ~bare_cc & starts("0"))
    )
    national_length = length - prefix - trunk_zero
    national = pc.utf8_slice_codeunits(text, start=-10)  # right for every row that can still be valid
    mobile = _np(pc.match_substring_regex(national, _MOBILE))

    codes = np.select(
        [
            blank,
            scientific,
            ~numeric,
            intl & ~plus_cc & ~zeros_cc,
            national_length < 10,
            national_length > 10,
            ~mobile,
        ],
        list(range(len(REASONS))),
        default=VALID,
    ).astype(np.int8)
    national = pc.if_else(pa.array(codes == VALID), national, "")
    return national, codes


def reason_text(codes: np.ndarray) -> pa.Array:
    """Reason codes as text, null where valid."""
    return _REASON_TEXT.take(pa.array(codes))


def normalise_series(values: pd.Series) -> tuple[pd.Series, pd.Series]:
    """Per value: E.164 (`+989XXXXXXXXX`) or NA, and the reason it was refused or NA. Same index as `values`."""
    national, codes = national_numbers(values)
    phones = pc.if_else(pa.array(codes == VALID), e164(national), None)
    return (
        pd.Series(phones, index=values.index, dtype="str"),
        pd.Series(reason_text(codes), index=values.index, dtype="str"),
    )


def e164(national: pa.Array) -> pa.Array:
    """National numbers to E.164."""
    return pc.utf8_replace_slice(national, start=0, stop=0, replacement="+" + COUNTRY_CODE)


def normalise(value: object) -> str | None:
    """One value to E.164, or None when it is not an Iranian mobile number."""
    phone, _ = normalise_one(value)
    return phone


def normalise_one(value: object) -> tuple[str | None, str | None]:
    """One value to (E.164, None) or (None, reason)."""
    phones, reasons = normalise_series(pd.Series([value], dtype=object))
    phone, why = phones.iloc[0], reasons.iloc[0]
    return (None if pd.isna(phone) else str(phone)), (None if pd.isna(why) else str(why))
