"""Is an inbound SMS an opt-out reply? Pure: text in, verdict out.

Keywords (README, "Opt-outs"): `لغو` ("cancel"), `لغو11` (the token Iranian operators require in promotional
texts, shared/providers.md §1.2), `11` alone (the digits of that token, in Persian or Latin), `cancel`
and `stop`. `SMSDISPATCH_OPTOUT_KEYWORDS` (a comma list) replaces the set.

Normalisation, applied to the reply and to the keywords alike: NFKC (Arabic presentation forms and
full-width letters to their plain forms), Persian and Arabic-Indic digits to Latin, Arabic ي/ك to
Persian ی/ک, invisible format characters (ZWNJ, ZWJ, direction marks, BOM), tatweel and combining
marks (harakat) removed, case folded. Then the text is cut into words at whitespace, punctuation
and symbols.

The rule, so that a sentence that merely contains a keyword ("the bus stop near your shop") is not
an opt-out:
  * the whole reply, once its words are joined without separators, is a keyword
    (`لغو`, `لغو ۱۱`, `لغو-11`, `STOP!`, `۱۱`); or
  * its first word is a keyword and the reply has at most `MAX_WORDS` words
    (`لغو کنید`, `stop please`, `لغو ۱۱ لطفا`).
Anything longer, or with the keyword later in the text, is not an opt-out.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable

from campaigns.text import fold_arabic

DEFAULT_KEYWORDS: tuple[str, ...] = ("لغو", "لغو11", "11", "cancel", "stop")
MAX_WORDS = 3  # a keyword as first word counts only in a reply this short

_DIGITS = str.maketrans(
    {**{chr(0x06F0 + i): str(i) for i in range(10)}, **{chr(0x0660 + i): str(i) for i in range(10)}}
)
_TATWEEL = "\u0640"
_SEPARATOR = re.compile(r"[\s\W_]+", re.UNICODE)


def normalise_text(text: str) -> str:
    """The reply as compared: NFKC, Latin digits, Persian letter forms, no invisible marks, casefolded."""
    text = unicodedata.normalize("NFKC", text).translate(_DIGITS)
    text = fold_arabic(text).replace(_TATWEEL, "")
    kept = (ch for ch in text if unicodedata.category(ch) not in ("Cf", "Mn", "Me"))
    return "".join(kept).casefold()


def words(text: str) -> list[str]:
    """Normalised words: cut at whitespace, punctuation and symbols."""
    return [w for w in _SEPARATOR.split(normalise_text(text)) if w]


def keyword_set(keywords: Iterable[str] = DEFAULT_KEYWORDS) -> frozenset[str]:
    """Keywords normalised like replies (separators removed); empty ones dropped."""
    return frozenset(k for k in ("".join(words(k)) for k in keywords) if k)


_DEFAULT = keyword_set()


def opt_out_keyword(text: str, keywords: frozenset[str] | None = None) -> str | None:
    """The keyword the reply opts out with, or None when it is not an opt-out (see the module's rule)."""
    keys = _DEFAULT if keywords is None else keywords
    parts = words(text or "")
    if not parts:
        return None
    whole = "".join(parts)
    if whole in keys:
        return whole
    if len(parts) <= MAX_WORDS and parts[0] in keys:
        return parts[0]
    return None


def is_opt_out(text: str, keywords: frozenset[str] | None = None) -> bool:
    return opt_out_keyword(text, keywords) is not None


def parse_keywords(value: str) -> frozenset[str]:
    """`SMSDISPATCH_OPTOUT_KEYWORDS`: a comma list; empty means the default set."""
    given = [k for k in value.split(",") if k.strip()]
    return keyword_set(given) if given else _DEFAULT
