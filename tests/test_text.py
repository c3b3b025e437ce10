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
    Template,
    TemplateError,
    count_parts,
    count_parts_series,
    encoding,
    fold_arabic,
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
        ("[]~|\\" * 30 + "\f" * 3, "gsm7", 2),  # 153 chars, 306 septets
        ("[]~|\\" * 30 + "\f" * 4, "gsm7", 3),
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
