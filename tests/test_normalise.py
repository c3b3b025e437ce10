"""Phone normalisation: every spelling, every reason, and agreement with phonenumbers."""

from __future__ import annotations

import pandas as pd
import phonenumbers
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from phonenumbers import PhoneMetadata, PhoneNumberFormat, PhoneNumberType

from campaigns.normalise import (
    MOBILE_PATTERN,
    REASON_EMPTY,
    REASON_FOREIGN,
    REASON_LONG,
    REASON_NOT_A_NUMBER,
    REASON_NOT_MOBILE,
    REASON_SCIENTIFIC,
    REASON_SHORT,
    normalise,
    normalise_one,
    normalise_series,
)

E164 = "+989121234567"

SPELLINGS = [
    "09121234567",
    "9121234567",
    "+989121234567",
    "00989121234567",
    "989121234567",
    "۰۹۱۲۱۲۳۴۵۶۷",  # Persian digits
    "٠٩١٢١٢٣٤٥٦٧",  # Arabic-Indic digits
    "+۹۸۹۱۲۱۲۳۴۵۶۷",
    "۰۹۱۲ ۱۲۳ ۴۵۶۷",
    "0912 123 4567",
    " 09121234567 ",
    "0912-123-4567",
    "0912.123.4567",
    "(0912) 123 4567",
    "'09121234567",  # Excel's "store as text" apostrophe
    "9121234567.0",  # Excel's float
    "+98 (912) 123-4567",
    "0 912 123 4567",
    "+98 (0) 912 123 4567",
    "0098 0912 123 4567",
    "9809121234567",
    "\u200f09121234567\u200e",  # RLM / LRM around the number
    "0912\u200c123\u200b4567",  # ZWNJ, zero-width space
    "\u202b+98 912 123 4567\u202c",  # RTL embedding
    "0912\u00a0123\u00a04567",  # no-break spaces
    "0912–123–4567",  # en dashes
    "\t09121234567\n",
    9121234567,  # a number from a spreadsheet cell
    9121234567.0,
]


@pytest.mark.parametrize("value", SPELLINGS, ids=[repr(v) for v in SPELLINGS])
def test_every_spelling_normalises_to_e164(value: object) -> None:
    assert normalise(value) == E164
    phones, reasons = normalise_series(pd.Series([value], dtype=object))
    assert phones.tolist() == [E164]
    assert reasons.isna().all()


INVALID = [
    ("", REASON_EMPTY),
    ("   ", REASON_EMPTY),
    ("\u200f", REASON_EMPTY),
    (None, REASON_EMPTY),
    (float("nan"), REASON_EMPTY),
    ("ندارد", REASON_NOT_A_NUMBER),
    ("abc", REASON_NOT_A_NUMBER),
    ("0912abc4567", REASON_NOT_A_NUMBER),
    ("--", REASON_NOT_A_NUMBER),
    ("+", REASON_NOT_A_NUMBER),
    ("0912+1234567", REASON_NOT_A_NUMBER),
    ("9.12123E+09", REASON_SCIENTIFIC),
    ("9.89121E+11", REASON_SCIENTIFIC),
    ("+14155552671", REASON_FOREIGN),
    ("004412345678", REASON_FOREIGN),
    ("+0912", REASON_FOREIGN),
    ("0", REASON_SHORT),
    ("+98", REASON_SHORT),
    ("0912123456", REASON_SHORT),
    ("912123456", REASON_SHORT),
    ("091212345678", REASON_LONG),
    ("+9891212345678", REASON_LONG),
    ("02112345678", REASON_NOT_MOBILE),  # Tehran landline
    ("+982112345678", REASON_NOT_MOBILE),
    ("09601234567", REASON_NOT_MOBILE),  # 960 is not allocated to mobiles
    ("09401234567", REASON_NOT_MOBILE),  # 94x are fixed-line (wireless local loop) numbers
    ("9891212345", REASON_NOT_MOBILE),
]


@pytest.mark.parametrize(("value", "reason"), INVALID, ids=[repr(v) for v, _ in INVALID])
def test_refused_values_carry_their_reason(value: object, reason: str) -> None:
    assert normalise_one(value) == (None, reason)


def test_series_keeps_index_and_marks_missing_as_na() -> None:
    values = pd.Series(["09121234567", "abc", None, "+989351234567"], index=[10, 11, 12, 13])
    phones, reasons = normalise_series(values)
    assert phones.index.tolist() == [10, 11, 12, 13]
    assert phones.isna().tolist() == [False, True, True, False]
    assert phones[13] == "+989351234567"
    assert reasons.tolist()[1:3] == [REASON_NOT_A_NUMBER, REASON_EMPTY]
    assert reasons.isna().tolist() == [True, False, False, True]


def test_object_and_string_dtypes_agree() -> None:
    values = ["۰۹۱۲ ۱۲۳ ۴۵۶۷", "x", "", "+98 (912) 123-4567"]
    a = normalise_series(pd.Series(values, dtype=object))
    b = normalise_series(pd.Series(values, dtype="string[pyarrow]"))
    assert a[0].tolist() == b[0].tolist() and a[1].fillna("").tolist() == b[1].fillna("").tolist()


def test_mobile_pattern_is_phonenumbers_metadata() -> None:
    metadata = PhoneMetadata.metadata_for_region("IR")
    assert metadata is not None and metadata.mobile is not None
    assert metadata.mobile.national_number_pattern == MOBILE_PATTERN


# --- agreement with phonenumbers ----------------------------------------------------------------

MOBILE_TYPES = {PhoneNumberType.MOBILE, PhoneNumberType.FIXED_LINE_OR_MOBILE}

nationals = st.one_of(
    # 10 digits starting 9XX: where the mobile ranges live, every 3-digit prefix equally likely
    st.tuples(st.integers(900, 999), st.integers(0, 10**7 - 1)).map(lambda t: f"{t[0]}{t[1]:07d}"),
    # 5-digit prefixes, for ranges such as 9951x, 99810 and 99988 that only a longer prefix decides
    st.tuples(st.integers(99000, 99999), st.integers(0, 10**5 - 1)).map(lambda t: f"{t[0]}{t[1]:05d}"),
    # anything: other lengths, landlines, leading zeros
    st.text("0123456789", min_size=1, max_size=13),
)


def phonenumbers_verdict(e164_like: str) -> str | None:
    try:
        parsed = phonenumbers.parse(e164_like)
    except phonenumbers.NumberParseException:
        return None
    if parsed.country_code != 98 or not phonenumbers.is_valid_number(parsed):
        return None
    if phonenumbers.number_type(parsed) not in MOBILE_TYPES:
        return None
    return phonenumbers.format_number(parsed, PhoneNumberFormat.E164)


@settings(max_examples=3000, deadline=None)
@given(nationals)
def test_verdict_agrees_with_phonenumbers(national: str) -> None:
    assert normalise("+98" + national) == phonenumbers_verdict("+98" + national)


@settings(max_examples=300, deadline=None)
@given(st.lists(nationals, min_size=1, max_size=50))
def test_series_agrees_with_scalar_and_phonenumbers(batch: list[str]) -> None:
    phones, _ = normalise_series(pd.Series(["+98" + n for n in batch]))
    expected = [phonenumbers_verdict("+98" + n) for n in batch]
    assert [None if pd.isna(p) else p for p in phones] == expected


SPELLERS = [
    lambda n: "0" + n,
    lambda n: n,
    lambda n: "0098" + n,
    lambda n: "98" + n,
    lambda n: ("0" + n).translate(str.maketrans("0123456789", "۰۱۲۳۴۵۶۷۸۹")),
    lambda n: f"+98 ({n[:3]}) {n[3:6]}-{n[6:]}",
    lambda n: f"0 {n[:3]} {n[3:6]} {n[6:]}",
    lambda n: n + ".0",
]


@settings(max_examples=500, deadline=None)
@given(nationals.filter(lambda n: len(n) == 10), st.sampled_from(range(len(SPELLERS))))
def test_spelling_does_not_change_the_verdict(national: str, speller: int) -> None:
    assert normalise(SPELLERS[speller](national)) == normalise("+98" + national)
