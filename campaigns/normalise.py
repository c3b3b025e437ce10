"""Iranian mobile numbers: every spelling people type, to E.164 `+989XXXXXXXXX`, or a reason why not.

Which numbers count as mobile is phonenumbers' metadata for region IR, number type MOBILE, read at
import time so that a phonenumbers upgrade moves us with it; tests/test_normalise.py checks our
verdict against `phonenumbers.is_valid_number` + `number_type` with a property test.

Vectorised over the whole column, with no Python per row: separators, invisible marks and Persian /
Arabic-Indic digits are handled on the UTF-8 bytes with numpy lookup tables, the rest with Arrow
compute kernels (RE2). pandas `.str` was measured first and was slower: `.str.translate` and
`.str.extract` run Python per row, and masked assignment copies (3.4 s for a million messy values,
against 0.45 s here; bench/load_csv.py)."""

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

# What happens to each character on the way to plain digits: kept, dropped (as a space: a value of only
# these is empty; or as punctuation), or replaced by the ASCII byte given.
_KEEP, _SPACE, _PUNCT = -1, -2, -3


def _character_actions() -> np.ndarray:
    actions = np.full(0x10000, _KEEP, dtype=np.int16)
    for char in " \t\r\n\v\f":
        actions[ord(char)] = _SPACE
    for char in "-.()/'\"_":  # between digit groups; ' and " are Excel's "store as text" marks
        actions[ord(char)] = _PUNCT
    for i in range(10):
        actions[0x06F0 + i] = actions[0x0660 + i] = ord("0") + i  # Persian and Arabic-Indic digits
    spaces = [0x00A0, 0x061C, 0x1680, 0x202F, 0x205F, 0x3000, 0xFEFF]  # no-break, ALM, ..., BOM
    spaces += [
        *range(0x2000, 0x2010),
        *range(0x2028, 0x202F),
        *range(0x2066, 0x206A),
    ]  # ZW*, LRM/RLM, embeddings
    actions[spaces] = _SPACE
    actions[[0x00AD, *range(0x2010, 0x2016), 0x2212, 0xFF08, 0xFF09]] = _PUNCT  # dashes, full-width ( )
    actions[0xFF0B] = ord("+")
    return actions


_ACTIONS = _character_actions()
_BYTE_ACTIONS = np.where(np.arange(256) < 0x80, _ACTIONS[:256], _KEEP).astype(np.int16)  # ASCII bytes only
_SCIENTIFIC = r"^[ \t]*[0-9](?:\.[0-9]+)?[eE]\+?[0-9]+[ \t]*$"  # Excel shows 989121234567 as 9.89121E+11
_EXCEL_FLOAT = r"^[ \t]*[0-9]+\.0+[ \t]*$"  # Excel stored the number as a float: 9121234567.0
_MOBILE = "^(?:" + MOBILE_PATTERN + ")$"


def _arrow_text(values: pd.Series | pa.Array | pa.ChunkedArray) -> pa.Array:
    """The values as an Arrow string array, missing values as ""."""
    if isinstance(values, pd.Series):
        if not isinstance(values.dtype, pd.StringDtype):
            values = values.astype("str")  # numbers from callers: 9121234567 -> "9121234567"
        values = pa.array(values.array)
    if not (pa.types.is_string(values.type) or pa.types.is_large_string(values.type)):
        values = pc.cast(values, pa.string())
    if isinstance(values, pa.ChunkedArray):
        values = values.combine_chunks()
    return pc.fill_null(values, "")


def _np(mask: pa.Array) -> np.ndarray:
    return mask.to_numpy(zero_copy_only=False)


def _per_row(offsets: np.ndarray, flags: np.ndarray) -> np.ndarray:
    """How many flagged bytes each row has."""
    # int32 when it fits: a block's column is far below 2 GiB, and the cumsum runs three times faster.
    total = np.zeros(len(flags) + 1, dtype=np.int32 if len(flags) < 2**31 else np.int64)
    total[1:] = flags
    np.cumsum(total, out=total)
    return (total[offsets[1:]] - total[offsets[:-1]]).astype(np.int64)


def _clean(text: pa.Array) -> tuple[pa.Array, np.ndarray, np.ndarray, np.ndarray]:
    """Digits made ASCII and separators dropped, plus masks: blank, scientific notation, numeric (`+?[0-9]+`).

    Works on the UTF-8 bytes of the whole column with numpy: no Python per row, and no regex replace,
    which was the slowest step. Dropping whole UTF-8 sequences or replacing them by one ASCII byte keeps
    the text valid UTF-8.
    """
    n = len(text)
    scientific = _np(pc.match_substring_regex(text, _SCIENTIFIC))
    excel_float = pc.match_substring_regex(text, _EXCEL_FLOAT)
    if pc.any(excel_float).as_py():  # rare: a regex on those rows only
        fixed = pc.replace_substring_regex(text.filter(excel_float), r"\.0+", "")
        text = pc.replace_with_mask(text, excel_float, fixed)
    if n == 0:
        return text, np.zeros(0, bool), scientific, np.zeros(0, bool)

    _, offset_buffer, data_buffer = text.buffers()
    offset_type = np.int64 if pa.types.is_large_string(text.type) else np.int32
    offsets = np.frombuffer(offset_buffer, dtype=offset_type)[text.offset : text.offset + n + 1].astype(
        np.int64
    )
    data = np.frombuffer(data_buffer, dtype=np.uint8) if data_buffer is not None else np.zeros(0, np.uint8)
    data = data[offsets[0] : offsets[-1]]
    offsets -= offsets[0]

    action = _BYTE_ACTIONS[data]
    for lead_min, lead_max, width in ((0xC2, 0xE0, 2), (0xE0, 0xF0, 3)):  # 2- and 3-byte sequences (the BMP)
        lead = np.flatnonzero((data >= lead_min) & (data < lead_max))
        if not len(lead):
            continue
        code = (data[lead] & (0x1F if width == 2 else 0x0F)).astype(np.int32)
        for k in range(1, width):
            code = (code << 6) | (data[lead + k] & 0x3F)
        act = _ACTIONS[code]
        hit = act != _KEEP
        lead, act = lead[hit], act[hit]
        action[lead] = act
        for k in range(1, width):
            action[lead + k] = np.where(act >= 0, _PUNCT, act)  # a replaced character keeps one byte
    kept = (action == _KEEP) | (action >= 0)
    out = np.where(action >= 0, action, data).astype(np.uint8)[kept]
    blank = _per_row(offsets, action != _SPACE) == 0

    length = _per_row(offsets, kept)
    new_offsets = np.zeros(n + 1, dtype=np.int64)
    np.cumsum(length, out=new_offsets[1:])
    non_digit = _per_row(new_offsets, (out < ord("0")) | (out > ord("9")))
    first = out[np.minimum(new_offsets[:-1], max(len(out) - 1, 0))] if len(out) else np.zeros(n, np.uint8)
    plus = (length > 0) & (first == ord("+"))
    numeric = (length > plus) & (non_digit == plus)
    cleaned = pa.LargeStringArray.from_buffers(n, pa.py_buffer(new_offsets), pa.py_buffer(out.tobytes()))
    return cleaned, blank, scientific, numeric


def national_numbers(values: pd.Series | pa.Array | pa.ChunkedArray) -> tuple[pa.Array, np.ndarray]:
    """Per value: the 10-digit national mobile number (`9…`, "" when invalid) and the reason code
    (an index into REASONS, or VALID).

    The loader works on national numbers because they fit in int64 for deduplication.
    """
    text, blank, scientific, numeric = _clean(_arrow_text(values))
    length = _np(pc.binary_length(text)).astype(np.int64)  # bytes == characters for the numeric rows

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
