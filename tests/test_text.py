"""Templates, Arabic folding and SMS part counting."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from campaigns.text import (
    EMPTY_MESSAGE,
    GSM_BASIC,
    GSM_EXTENSION,
    Alphabet,
    Template,
    TemplateError,
    count_parts,
    count_parts_series,
    encoding,
    fold_arabic,
    segments,
)

# --- templates -----------------------------------------------------------------------------------


def test_placeholders_in_order_of_first_use() -> None:
    t = Template("سلام {name}، {amount} تومان. {name} عزیز")
    assert t.placeholders == ("name", "amount")
    assert not t.is_static
    assert t.static_text is None


def test_static_message_and_escaped_braces() -> None:
    t = Template("کد تخفیف: {{OFF50}} تا پایان هفته")
    assert t.is_static
    assert t.placeholders == ()
    assert t.static_text == "کد تخفیف: {OFF50} تا پایان هفته"
    assert t.render_one({}) == t.static_text
    assert t.render(pd.DataFrame({"x": ["a", "b"]})).tolist() == [t.static_text] * 2


def test_render_is_vectorised_and_renders_missing_as_empty() -> None:
    df = pd.DataFrame(
        {"name": ["علی", None, "Sara"], "amount": ["1000", "2000", np.nan], "city": ["a", "b", "c"]}
    )
    rendered = Template("{name} - {amount} {{x}}").render(df)
    assert isinstance(rendered, pd.Series)
    assert rendered.tolist() == ["علی - 1000 {x}", " - 2000 {x}", "Sara -  {x}"]
    assert rendered.index.equals(df.index)


def test_render_one_matches_render() -> None:
    t = Template("Dear {name}, {amount}")
    row = {"name": "كريم", "amount": None}
    assert t.render_one(row) == "Dear کریم, "
    assert t.render(pd.DataFrame([row])).tolist() == [t.render_one(row)]


def test_arabic_letters_folded_in_template_and_values() -> None:
    t = Template("مشتري گرامي {نام}")
    assert t.text == "مشتری گرامی {نام}"
    df = pd.DataFrame({"نام": ["علي كريمي"]})
    assert t.render(df).tolist() == ["مشتری گرامی علی کریمی"]


def test_placeholder_matches_column_ignoring_case_space_and_letter_forms() -> None:
    t = Template("{First Name} {شهر}")
    df = pd.DataFrame({"first name": ["Ali"], "شهر": ["تهران"]})
    assert t.render(df).tolist() == ["Ali تهران"]
    t2 = Template("{نام مشتري}")  # Arabic yeh in the template, Persian in the header
    assert t2.render(pd.DataFrame({"نام مشتری": ["x"]})).tolist() == ["x"]


def test_validate_names_the_unknown_placeholder_and_the_columns() -> None:
    with pytest.raises(TemplateError) as err:
        Template("سلام {nmae}").validate(["name", "mobile", "city"])
    assert str(err.value) == (
        "unknown placeholder {nmae}; the file's columns are: name, mobile, city (write {{ and }} for literal braces)"
    )
    Template("{name}").validate(["name"])


@pytest.mark.parametrize("text", ["", "   ", "\n\t"])
def test_empty_message_is_refused(text: str) -> None:
    with pytest.raises(TemplateError) as err:
        Template(text)
    assert (
        str(err.value) == EMPTY_MESSAGE == "the message is empty; give --message TEXT or --message-file FILE"
    )


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("hello {name", "unmatched '{' at character 7 of the message; write {{ for a literal brace"),
        ("a } b", "unmatched '}' at character 3 of the message; write }} for a literal brace"),
        (
            "x {} y",
            "empty placeholder {} at character 3 of the message; write {column}, or {{ }} for literal braces",
        ),
    ],
)
def test_broken_braces_are_one_line_errors(text: str, message: str) -> None:
    with pytest.raises(TemplateError) as err:
        Template(text)
    assert str(err.value) == message
    assert isinstance(err.value, ValueError)


# --- folding -------------------------------------------------------------------------------------


def test_fold_arabic_touches_only_yeh_and_kaf() -> None:
    assert fold_arabic("علي كريم") == "علی کریم"
    assert fold_arabic("ى ة ٠١٢ ۳۴۵ abc") == "ى ة ٠١٢ ۳۴۵ abc"


# --- parts ---------------------------------------------------------------------------------------

PERSIAN, LATIN = "س", "a"


@pytest.mark.parametrize(
    ("text", "enc", "parts"),
    [
        (PERSIAN * 70, "ucs2", 1),
        (PERSIAN * 71, "ucs2", 2),
        (PERSIAN * 134, "ucs2", 2),
        (PERSIAN * 135, "ucs2", 3),
        (LATIN * 160, "gsm7", 1),
        (LATIN * 161, "gsm7", 2),
        (LATIN * 306, "gsm7", 2),
        (LATIN * 307, "gsm7", 3),
        (LATIN * 159 + "€", "gsm7", 2),  # an extension character counts two septets
        (LATIN * 158 + "^", "gsm7", 1),
        ("{" * 80, "gsm7", 1),
        ("{" * 81, "gsm7", 2),
        ("[]~|\\" * 30 + "\f" * 2, "gsm7", 2),  # 152 chars, 304 septets: 76 escape pairs per part
        ("[]~|\\" * 30 + "\f" * 3, "gsm7", 3),  # 153 chars, 306 septets: a pair never split, so 3
        (LATIN * 160 + "ی", "ucs2", 3),  # one Persian letter makes it all UCS-2
        ("é" * 160, "gsm7", 1),  # é is in the GSM basic set
        ("á" * 2, "ucs2", 1),  # á is not
        ("😀" * 35, "ucs2", 1),  # emoji: two UTF-16 code units each
        ("😀" * 36, "ucs2", 2),
        (LATIN * 69 + "😀", "ucs2", 2),
        ("", "gsm7", 0),
    ],
)
def test_parts_boundaries(text: str, enc: str, parts: int) -> None:
    assert encoding(text) == enc
    assert count_parts(text) == parts
    assert count_parts_series(pd.Series([text])).tolist() == [parts]


def test_parts_series_keeps_index_and_treats_na_as_empty() -> None:
    s = pd.Series(["a" * 161, None, PERSIAN * 71], index=[5, 6, 7], dtype=object)
    result = count_parts_series(s)
    assert result.index.tolist() == [5, 6, 7]
    assert result.tolist() == [2, 0, 2]
    assert result.dtype == np.int64


ALPHABET = GSM_BASIC + GSM_EXTENSION + "سلامیک۱۲۳" + "😀🎉" + "áâ"


@settings(max_examples=200, deadline=None)
@given(st.lists(st.text(ALPHABET, max_size=400), min_size=1, max_size=20))
def test_series_count_equals_scalar_count(texts: list[str]) -> None:
    assert count_parts_series(pd.Series(texts)).tolist() == [count_parts(t) for t in texts]


# --- exact parts: no character split across two parts ------------------------------------------
# Sources: 3GPP TS 23.038 §6.2.1 (default alphabet), §6.2.1.1 (extension table: escape + char = 2 septets);
# TS 23.040 §9.2.3.24.1 (concatenation; the UDH leaves 153 septets / 134 octets = 67 UCS-2 units per part;
# an escape sequence is not split). A UTF-16 surrogate pair split in two is two broken halves on every
# handset, so a non-BMP character is never split either (the rule: "whatever the alphabet").
A, EMOJI = "a", "😀"


@pytest.mark.parametrize(
    ("text", "parts", "source"),
    [
        (A * 152 + "[" + A * 152, 3, "the escape pair would straddle parts 1 and 2"),
        (A * 152 + "[" + A * 151, 2, "part 1 ends at 152 a; [ + 151 a fill part 2 (153 septets)"),
        (A * 151 + "[" + A * 154, 3, "151 a + [ fill part 1 (153 septets); 153 a, then 1 a"),
        (A * 151 + "[" + A * 152, 2, "151 + 2 = 153 septets fill part 1 exactly; 152 a in part 2"),
        (A * 158 + "[", 1, "160 septets: one part, no UDH, no split possible"),
        (A * 159 + "[", 2, "161 septets: multi-part; fits 153 + 8"),
        ("[" * 80, 1, "160 septets"),
        ("[" * 153, 3, "76 pairs (152 septets) per part: 76 + 76 + 1"),
        ("[" * 152, 2, "76 + 76"),
        (PERSIAN * 66 + EMOJI + PERSIAN * 66, 3, "the pair would straddle units 67/68"),
        (PERSIAN * 65 + EMOJI + PERSIAN * 67, 2, "65 + 2 = 67 units fill part 1 exactly; 67 in part 2"),
        (PERSIAN * 68 + EMOJI, 1, "70 units: one part"),
        (PERSIAN * 69 + EMOJI, 2, "71 units: 67 + 4"),
        (EMOJI * 34, 1, "68 units"),
        (EMOJI * 67, 3, "33 pairs (66 units) per part: 33 + 33 + 1"),
        (EMOJI * 66, 2, "33 + 33"),
        (A * 153 * 23, 23, "a 3,519-character Latin text: 23 parts"),
        (PERSIAN * 67 * 23, 23, "a 1,541-character Persian text: 23 parts"),
    ],
)
def test_exact_parts_never_split_a_character(text: str, parts: int, source: str) -> None:
    assert count_parts(text) == parts, source
    assert len(segments(text)) == parts, source
    assert count_parts_series(pd.Series([text, "x"])).tolist() == [parts, 1], source


def _units(text: str) -> int:
    if encoding(text) == Alphabet.GSM7:
        return len(text) + sum(text.count(c) for c in GSM_EXTENSION)
    return len(text.encode("utf-16-le")) // 2


@settings(max_examples=300, deadline=None)
@given(st.text(GSM_BASIC + GSM_EXTENSION + "سل😀🎉", max_size=700))
def test_segments_rebuild_the_text_and_respect_the_limits(text: str) -> None:
    parts = segments(text)
    assert "".join(parts) == text
    assert len(parts) == count_parts(text)
    if len(parts) > 1:
        limit = 153 if encoding(text) == Alphabet.GSM7 else 67
        alphabet = encoding(text)
        for i, part in enumerate(parts):
            # measured in the whole message's alphabet (a GSM-only piece of a UCS-2 message is still UCS-2)
            units = _units(part) if encoding(part) == alphabet else len(part.encode("utf-16-le")) // 2
            assert units <= limit
            if i < len(parts) - 1:  # a part ends early only when the next character would not fit
                nxt = parts[i + 1][0]
                width = 2 if (nxt in GSM_EXTENSION if alphabet == Alphabet.GSM7 else ord(nxt) > 0xFFFF) else 1
                assert units + width > limit


# --- against an independent implementation -----------------------------------------------------
# gsm0338 (PyPI, MIT, Python 3.9-3.13, "Production/Stable") is a codec for the GSM 03.38 default
# alphabet and extension table: encoding a text gives one byte per septet, two for an extension
# character (escape + char). It agrees with our alphabet on every Unicode character but one: U+001B
# ESC, which gsm0338 encodes as the bare escape code. We send ESC as UCS-2 on purpose: in TS 23.038
# §6.2.1 0x1B is the escape to the extension table, not a character, and a receiver shows it as a
# space or drops it. No well-kept PyPI package splits messages: smsutil (last release 2020, needs the
# Python 2 `future` shim) splits greedily like us, keeping escape pairs and surrogate pairs whole; it
# agreed with `segments` on every case of the table above when compared by hand (when the rule was written).
gsm0338 = pytest.importorskip("gsm0338")


def test_alphabet_agrees_with_the_gsm0338_codec_on_every_character() -> None:
    disagree = []
    for code in range(0x110000):
        if 0xD800 <= code <= 0xDFFF:
            continue
        char = chr(code)
        try:
            char.encode("gsm03.38")
            theirs = True
        except UnicodeError:
            theirs = False
        if theirs != (encoding(char) == Alphabet.GSM7):
            disagree.append(char)
    assert disagree == ["\x1b"]


@settings(max_examples=300, deadline=None)
@given(st.text(GSM_BASIC + GSM_EXTENSION, max_size=500))
def test_septets_agree_with_the_gsm0338_codec(text: str) -> None:
    septets = len(text.encode("gsm03.38"))
    assert septets == _units(text)
    if septets <= 160:
        assert count_parts(text) == (1 if text else 0)
    else:  # every part but the last holds 152 or 153 septets, each part's text encodes alone
        parts = segments(text)
        sizes = [len(p.encode("gsm03.38")) for p in parts]
        assert all(152 <= n <= 153 for n in sizes[:-1]) and 0 < sizes[-1] <= 153
        assert sum(sizes) == septets
