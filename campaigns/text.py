"""Message text: `{column}` templates filled from the recipients file, Arabic letters folded, SMS parts counted.

Parts follow 3GPP TS 23.038 (alphabets) and TS 23.040 (concatenation). A message using only the GSM 7-bit
default alphabet and its extension table is GSM-7: 160 septets in one part, 153 per part when
concatenated (the user data header takes the rest); an extension character takes two septets, escape +
char (23.038 §6.2.1.1). Any other character makes the whole message UCS-2: 70 UTF-16 code units, 67 per
part; a character outside the BMP, such as most emoji, takes two (a surrogate pair). Persian text is
therefore always UCS-2.

No character is ever split across two parts (23.040 §9.2.3.24.1 for the escape sequence; a surrogate
pair cut in two is two broken halves on every handset): when the next character does not fit in what
is left of a part, the part ends short and the character opens the next one. So 152 x `a` + `[` +
152 x `a` (306 septets) is 3 parts, not 2; `segments()` gives the parts themselves.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Mapping
from enum import StrEnum

import numpy as np
import pandas as pd

__all__ = [
    "Template",
    "TemplateError",
    "count_parts",
    "count_parts_series",
    "encoding",
    "segments",
    "encoding_series",
    "Alphabet",
    "fold_arabic",
    "EMPTY_MESSAGE",
]

EMPTY_MESSAGE = "the message is empty; give --message TEXT or --message-file FILE"

# GSM 03.38 default alphabet (ESC 0x1B left out: it is not a character of the text) and extension table.
GSM_BASIC = (
    "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?"
    "¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà"
)
GSM_EXTENSION = "\f^{}\\[~]|€"

GSM7_SINGLE, GSM7_MULTI = 160, 153
UCS2_SINGLE, UCS2_MULTI = 70, 67


def _char_class(chars: str, negate: bool = False) -> str:
    """A regex character class, valid for both Python's re and RE2 (pyarrow)."""
    special = {
        "\\": r"\\",
        "]": r"\]",
        "[": r"\[",
        "^": r"\^",
        "-": r"\-",
        "\n": r"\n",
        "\r": r"\r",
        "\f": r"\f",
    }
    body = "".join(special.get(c, c) for c in chars)
    return f"[{'^' if negate else ''}{body}]"


_NOT_GSM = _char_class(GSM_BASIC + GSM_EXTENSION, negate=True)
_GSM_EXTENSION = _char_class(GSM_EXTENSION)
_ASTRAL = "[\U00010000-\U0010ffff]"  # two UTF-16 code units each (real characters: RE2 takes no \U escapes)
_NOT_GSM_RE = re.compile(_NOT_GSM)

# Only these two: Arabic yeh and kaf typed on an Arabic keyboard (or saved by Excel in Windows-1256)
# look the same but are different letters to search, sort and some providers' filters.
_ARABIC_TO_PERSIAN = {"ي": "ی", "ك": "ک"}
_FOLD_TABLE = str.maketrans(_ARABIC_TO_PERSIAN)


PHONE = "phone"  # the loader's column of the number (E.164), written in a message as 09…


class TemplateError(ValueError):
    """The message template cannot be used; the message is one line naming the problem and the fix."""


def fold_arabic(text: str) -> str:
    """Arabic ي/ك to Persian ی/ک; everything else (digits included) left as it is."""
    return text.translate(_FOLD_TABLE)


def fold_arabic_series(values: pd.Series) -> pd.Series:
    """fold_arabic over a Series, vectorised (two literal replaces)."""
    for arabic, persian in _ARABIC_TO_PERSIAN.items():
        values = values.str.replace(arabic, persian, regex=False)
    return values


class Alphabet(StrEnum):
    """The data coding of a message (3GPP TS 23.038 §4): GSM 7-bit default alphabet, or UCS-2."""

    GSM7 = "gsm7"
    UCS2 = "ucs2"


_EXTENSION_SET = frozenset(GSM_EXTENSION)


def encoding(text: str) -> Alphabet:
    """The alphabet a message is sent in: gsm7 if every character is in GSM 03.38, else ucs2."""
    return Alphabet.UCS2 if _NOT_GSM_RE.search(text) else Alphabet.GSM7


def encoding_series(texts: pd.Series) -> pd.Series:
    """`encoding` for every message, vectorised (one regex test per row): a Series of "gsm7" / "ucs2"."""
    if not isinstance(texts.dtype, pd.StringDtype):
        texts = texts.astype("str")
    ucs2 = texts.fillna("").str.contains(_NOT_GSM, regex=True).to_numpy(dtype=bool)
    return pd.Series(
        np.where(ucs2, Alphabet.UCS2.value, Alphabet.GSM7.value), index=texts.index, dtype=object
    )


def _width(char: str, alphabet: Alphabet) -> int:
    """Units one character takes: septets in GSM-7 (2 for an extension character), UTF-16 code units in UCS-2."""
    if alphabet is Alphabet.GSM7:
        return 2 if char in _EXTENSION_SET else 1
    return 2 if ord(char) > 0xFFFF else 1


def segments(text: str) -> list[str]:
    """The parts a message is sent as, in order (`"".join(segments(t)) == t`); [] for an empty message.

    One part when the whole text fits (160 septets / 70 code units); otherwise parts of at most 153
    septets / 67 code units, filled greedily, a character that does not fit whole opening the next part.
    """
    if not text:
        return []
    alphabet = encoding(text)
    single, multi = (GSM7_SINGLE, GSM7_MULTI) if alphabet is Alphabet.GSM7 else (UCS2_SINGLE, UCS2_MULTI)
    widths = [_width(c, alphabet) for c in text]
    if sum(widths) <= single:
        return [text]
    out: list[str] = []
    start = used = 0
    for i, width in enumerate(widths):
        if used + width > multi:
            out.append(text[start:i])
            start, used = i, 0
        used += width
    out.append(text[start:])
    return out


def _parts(length: np.ndarray, ucs2: np.ndarray) -> np.ndarray:
    """Parts from units alone: exact when every character takes one unit (nothing can be split)."""
    single = np.where(ucs2, UCS2_SINGLE, GSM7_SINGLE)
    multi = np.where(ucs2, UCS2_MULTI, GSM7_MULTI)
    return np.where(length == 0, 0, np.where(length <= single, 1, -(-length // multi)))


def count_parts(text: str) -> int:
    """SMS parts for one message (0 for an empty one), by the rules in the module docstring."""
    if not text:
        return 0
    alphabet = encoding(text)
    if alphabet is Alphabet.GSM7:
        wide = sum(text.count(c) for c in GSM_EXTENSION)
        single, multi = GSM7_SINGLE, GSM7_MULTI
    else:
        wide = len(text.encode("utf-16-le")) // 2 - len(text)
        single, multi = UCS2_SINGLE, UCS2_MULTI
    units = len(text) + wide
    if units <= single:
        return 1
    if not wide:  # every character one unit: nothing to split, the division is exact
        return math.ceil(units / multi)
    return len(segments(text))


def count_parts_series(texts: pd.Series) -> pd.Series:
    """count_parts for every message, vectorised: lengths, a regex test for non-GSM, counted extras.

    Rows with a two-unit character past one part (rare: an extension character or an emoji in a long
    message) are counted one by one with `segments`, since where they fall decides the count.
    """
    if not isinstance(texts.dtype, pd.StringDtype):
        texts = texts.astype("str")
    texts = texts.fillna("")
    length = texts.str.len().to_numpy(dtype=np.int64)
    ucs2 = texts.str.contains(_NOT_GSM, regex=True).to_numpy(dtype=bool)
    extra = np.zeros(len(texts), dtype=np.int64)
    if ucs2.any():  # UTF-16: characters beyond the BMP take two code units
        extra[ucs2] = texts[ucs2].str.count(_ASTRAL).to_numpy(dtype=np.int64)
    if (~ucs2).any():  # GSM-7: extension characters take two septets
        extra[~ucs2] = texts[~ucs2].str.count(_GSM_EXTENSION).to_numpy(dtype=np.int64)
    parts = _parts(length + extra, ucs2)
    single = np.where(ucs2, UCS2_SINGLE, GSM7_SINGLE)
    exact = np.flatnonzero((extra > 0) & (length + extra > single))
    if len(exact):
        values = texts.to_numpy(dtype=object)
        parts[exact] = [len(segments(values[i])) for i in exact]
    return pd.Series(parts, index=texts.index, dtype=np.int64)


# {{ and }} are literal braces; {name} is a placeholder; a lone brace is an error.
_TOKEN = re.compile(r"\{\{|\}\}|\{([^{}]*)\}|[{}]")


def _key(name: str) -> str:
    """How placeholder and column names are compared when they are not spelled exactly alike."""
    return " ".join(fold_arabic(name).casefold().split())


class Template:
    """A message with `{column}` placeholders.

    `text` is the template as given, with Arabic ي/ك folded to Persian; `static_text` is the message
    itself when there are no placeholders (braces unescaped), else None.
    """

    def __init__(self, text: str) -> None:
        if not text or not text.strip():
            raise TemplateError(EMPTY_MESSAGE)
        self.text = fold_arabic(text)
        self._parts: list[str | tuple[str]] = []  # literal text, or (placeholder,)
        literal: list[str] = []
        pos = 0
        for match in _TOKEN.finditer(self.text):
            literal.append(self.text[pos : match.start()])
            pos = match.end()
            token = match.group(0)
            if token in ("{{", "}}"):
                literal.append(token[0])
            elif match.group(1) is None:
                raise TemplateError(
                    f"unmatched {token!r} at character {match.start() + 1} of the message; write {token * 2} for a literal brace"
                )
            else:
                name = match.group(1).strip()
                if not name:
                    raise TemplateError(
                        f"empty placeholder {{}} at character {match.start() + 1} of the message; write {{column}}, or {{{{ }}}} for literal braces"
                    )
                self._parts.append("".join(literal))
                self._parts.append((name,))
                literal = []
        literal.append(self.text[pos:])
        self._parts.append("".join(literal))
        self._parts = [p for p in self._parts if p != ""]
        self.placeholders: tuple[str, ...] = tuple(
            dict.fromkeys(p[0] for p in self._parts if isinstance(p, tuple))
        )

    @property
    def is_static(self) -> bool:
        """True when the message has no placeholders: every recipient gets the same text."""
        return not self.placeholders

    @property
    def static_text(self) -> str | None:
        """The message when it has no placeholders ({{ and }} unescaped), else None."""
        return "".join(p for p in self._parts if isinstance(p, str)) if self.is_static else None

    def __repr__(self) -> str:
        return f"Template({self.text!r})"

    def resolve(self, columns: Iterable[str]) -> dict[str, str]:
        """Placeholder -> column: the exact name, else the one column equal ignoring case, spaces and ي/ك."""
        columns = list(columns)
        by_key: dict[str, list[str]] = {}
        for column in columns:
            by_key.setdefault(_key(column), []).append(column)
        resolved: dict[str, str] = {}
        for name in self.placeholders:
            if name in columns:
                resolved[name] = name
                continue
            candidates = by_key.get(_key(name), [])
            if len(candidates) != 1:
                shown = [c for c in columns if c != "row"]  # `row` is ours, not the file's
                available = ", ".join(shown) if shown else "(none)"
                raise TemplateError(
                    f"unknown placeholder {{{name}}}; the file's columns are: {available} (write {{{{ and }}}} for literal braces)"
                )
            resolved[name] = candidates[0]
        return resolved

    def validate(self, columns: Iterable[str]) -> None:
        """Raise TemplateError naming the first placeholder that is not a column of the file."""
        self.resolve(columns)

    def render(self, df: pd.DataFrame) -> pd.Series:
        """One message per row, vectorised: literal parts and column values concatenated; NA renders as ""."""
        resolved = self.resolve(df.columns.astype(str))
        out = pd.Series("", index=df.index, dtype="str")
        for part in self._parts:
            if isinstance(part, str):
                out = out + part
            else:
                values = df[resolved[part[0]]]
                if not isinstance(values.dtype, pd.StringDtype):
                    values = values.astype("str")
                if resolved[part[0]] == PHONE:  # the number as people write it: +989121234567 -> 09121234567
                    values = values.str.replace(r"^\+98", "0", regex=True)
                out = out + fold_arabic_series(values.fillna(""))
        return out

    def render_one(self, mapping: Mapping[str, object]) -> str:
        """One message from one row's values; a missing value (None, NaN) renders as ""."""
        resolved = self.resolve(mapping.keys())
        pieces: list[str] = []
        for part in self._parts:
            if isinstance(part, str):
                pieces.append(part)
            else:
                value = mapping[resolved[part[0]]]
                if resolved[part[0]] == PHONE and isinstance(value, str) and value.startswith("+98"):
                    value = "0" + value[3:]  # the number as people write it
                pieces.append(
                    ""
                    if value is None or (isinstance(value, float) and math.isnan(value))
                    else fold_arabic(str(value))
                )
        return "".join(pieces)
