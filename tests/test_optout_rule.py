"""The opt-out rule (campaigns/optout.py): a table of real-looking replies and properties of the rule."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from campaigns.optout import (
    DEFAULT_KEYWORDS,
    MAX_WORDS,
    is_opt_out,
    keyword_set,
    normalise_text,
    opt_out_keyword,
    parse_keywords,
)

ZWNJ = "\u200c"

OPT_OUTS = [
    ("لغو", "لغو"),
    ("لغو11", "لغو11"),
    ("لغو 11", "لغو11"),
    ("لغو ۱۱", "لغو11"),  # Persian digits
    ("لغو١١", "لغو11"),  # Arabic-Indic digits
    ("  لغو۱۱ \n", "لغو11"),
    ("لغو-11", "لغو11"),
    ("لغو" + ZWNJ + "11", "لغو11"),
    ("لـــغو", "لغو"),  # tatweel
    ("لَغو", "لغو"),  # a haraka
    ("\ufedf\ufed0\ufeee", "لغو"),  # Arabic presentation forms (NFKC)
    ("11", "11"),
    ("۱۱", "11"),
    ("١١", "11"),
    ("stop", "stop"),
    ("STOP!", "stop"),
    ("Stop.", "stop"),
    ("ｓｔｏｐ", "stop"),  # full-width (NFKC)
    ("cancel", "cancel"),
    ("Cancel please", "cancel"),
    ("لغو کنید", "لغو"),
    ("لغو ۱۱ لطفا", "لغو"),  # first word, three words
    ("stop stop stop", "stop"),
]

NOT_OPT_OUTS = [
    "",
    "   ",
    "سلام",
    "hi",
    "111",
    "1",
    "1 1 1",
    "لغوی",  # another word
    "stopped",
    "I will stop by your shop tomorrow",  # a sentence containing "stop"
    "the bus stop",  # keyword not first
    "لطفا لغو",  # keyword not first
    "stop the bus now please",  # first word, but more than MAX_WORDS words
    "ممنون، تخفیف لغو11 شامل من هم میشه؟",
    "https://example.com/stop",
]


@pytest.mark.parametrize(("text", "keyword"), OPT_OUTS)
def test_opt_out_replies(text, keyword):
    assert opt_out_keyword(text) == keyword
    assert is_opt_out(text)


@pytest.mark.parametrize("text", NOT_OPT_OUTS)
def test_not_opt_outs(text):
    assert opt_out_keyword(text) is None
    assert not is_opt_out(text)


def test_arabic_yeh_and_kaf_are_folded():
    assert normalise_text("يك") == "یک"
    assert is_opt_out("يك", keyword_set(["یک"]))


def test_keywords_are_a_setting():
    keys = parse_keywords("انصراف, END")
    assert is_opt_out("انصراف", keys) and is_opt_out("end", keys)
    assert not is_opt_out("لغو", keys)
    assert parse_keywords("") == keyword_set(DEFAULT_KEYWORDS) == parse_keywords(" , ")


@given(
    st.sampled_from(DEFAULT_KEYWORDS),
    st.sampled_from(["", " ", "  ", "\n", ZWNJ, "!", ".", "؟", "،"]),
    st.sampled_from(["", " ", "\t", "!!", "."]),
    st.booleans(),
)
def test_a_keyword_with_any_padding_and_digit_script_is_an_opt_out(keyword, before, after, persian):
    text = keyword.translate(str.maketrans("0123456789", "۰۱۲۳۴۵۶۷۸۹")) if persian else keyword
    assert is_opt_out(before + text.upper() + after)


@given(
    st.sampled_from(DEFAULT_KEYWORDS),
    st.lists(st.sampled_from(["سلام", "please", "فردا", "shop", "the", "تخفیف"]), min_size=1, max_size=6),
)
def test_a_keyword_after_other_words_is_never_an_opt_out(keyword, lead):
    assert not is_opt_out(" ".join([*lead, keyword]))


@given(
    st.sampled_from(DEFAULT_KEYWORDS),
    st.lists(st.sampled_from(["سلام", "please", "فردا", "shop"]), min_size=MAX_WORDS, max_size=8),
)
def test_a_keyword_first_in_a_long_message_is_not_an_opt_out(keyword, tail):
    assert not is_opt_out(" ".join([keyword, *tail]))


@given(st.text(max_size=60))
def test_never_raises_and_is_stable_under_normalisation(text):
    assert is_opt_out(text) == is_opt_out(normalise_text(text))
