"""Prices of SMS parts, in rial: per part, per alphabet, optionally per operator. Pure.

A price table comes from the provider's own account call where it lists prices (Amoot `AccountStatus`,
shared/providers.md §4), else from settings, in one of two spellings:

* `SMSDISPATCH_<P>_PRICE`: one number (rial per part, any alphabet, any operator), or a comma list of
  `key=rial` where key is `gsm7`, `ucs2`, an operator (`MCI`, `Irancell`, `Rightel`, `other`) or
  `operator.alphabet`: `SMSDISPATCH_AMOOT_PRICE="gsm7=800,ucs2=1000,MCI.ucs2=950"`.
* a `[prices]` table in smsdispatch.toml: `amoot = 1000`, or `[prices.amoot]` with `part`, `gsm7`,
  `ucs2` and per-operator sub-tables (`[prices.amoot.MCI]` / `ucs2 = 950`).

The most specific price wins: operator and alphabet, then operator, then alphabet, then any part.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from campaigns.operators import Operator, operators_by_prefix
from campaigns.text import Alphabet, encoding, encoding_series

__all__ = [
    "CURRENCY",
    "PriceError",
    "PriceTable",
    "UnpricedError",
    "parse_price_setting",
    "price_table_from_toml",
    "recipient_costs",
]

Key = tuple[Operator | None, Alphabet | None]

# The `currency` of every rial amount a machine reads (`send --json`'s and the API's preflight `cost`,
# `status --json`'s and the webhooks' `cost`): ISO 4217's code of the Iranian rial. People read "rial".
CURRENCY = "IRR"

_ALPHABETS = {a.value: a for a in Alphabet}
_OPERATORS = {o.value.casefold(): o for o in Operator}


class PriceError(ValueError):
    """A price setting that cannot be read; the message names the setting and how to write it."""


class UnpricedError(ValueError):
    """A part to send has no price in the table (bad input where a rial budget needs one: exit 2)."""


@dataclass(frozen=True)
class PriceTable:
    """Rial per SMS part. `prices` maps (operator or None, alphabet or None) to rial; `source` says where
    the table came from ("provider", "SMSDISPATCH_AMOOT_PRICE", "smsdispatch.toml [prices]")."""

    prices: Mapping[Key, float] = field(default_factory=dict)
    source: str = ""

    def per_part(self, operator: Operator, alphabet: Alphabet) -> float | None:
        """Rial for one part to a number of `operator` in `alphabet`; None when the table has no price."""
        for key in ((operator, alphabet), (operator, None), (None, alphabet), (None, None)):
            if key in self.prices:
                return self.prices[key]
        return None

    def __bool__(self) -> bool:
        return bool(self.prices)

    def as_json(self) -> dict[str, Any]:
        """`{"source": ..., "prices": {"MCI.ucs2": 950.0, "gsm7": 800.0, "part": 1000.0}}`: the keys in the
        spelling of `SMSDISPATCH_<P>_PRICE` (`operator.alphabet`, `part` for any part), for the store."""
        keys = {key: ".".join(p.value for p in key if p is not None) or "part" for key in self.prices}
        return {"source": self.source, "prices": {keys[k]: v for k, v in self.prices.items()}}

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> PriceTable:
        """The table `as_json` wrote. Raises PriceError for a key it cannot read."""
        where = str(data.get("source") or "stored prices")
        prices = {_key(k, where): _rial(v, where) for k, v in (data.get("prices") or {}).items()}
        return cls(prices, where)


def _key(text: str, where: str) -> Key:
    operator: Operator | None = None
    alphabet: Alphabet | None = None
    for piece in (p for p in text.strip().split(".") if p):
        low = piece.strip().casefold()
        if low in _ALPHABETS and alphabet is None:
            alphabet = _ALPHABETS[low]
        elif low in _OPERATORS and operator is None:
            operator = _OPERATORS[low]
        elif low not in ("part", "any", "*"):
            raise PriceError(
                f"{where}: {text!r} is not gsm7, ucs2, part or an operator "
                f"({', '.join(o.value for o in Operator)}); write e.g. gsm7=800,ucs2=1000,MCI.ucs2=950"
            )
    return operator, alphabet


def _rial(value: object, where: str) -> float:
    try:
        amount = float(str(value).replace(",", "").replace("_", "").strip())
    except ValueError:
        raise PriceError(f"{where}: {value!r} is not a price in rial; write a number like 1000") from None
    if amount < 0:
        raise PriceError(f"{where}: {value!r} is negative; a price is rial per SMS part")
    return amount


def parse_price_setting(text: str, setting: str) -> PriceTable:
    """`"1000"` or `"gsm7=800,ucs2=1000,MCI.ucs2=950"` -> PriceTable; "" -> an empty table.

    Raises PriceError naming `setting` for anything else.
    """
    text = text.strip()
    if not text:
        return PriceTable(source=setting)
    if "=" not in text:
        return PriceTable({(None, None): _rial(text, setting)}, setting)
    prices: dict[Key, float] = {}
    for item in (i for i in text.split(",") if i.strip()):
        key, sep, value = item.partition("=")
        if not sep:
            raise PriceError(f"{setting}: {item!r} has no '='; write key=rial, e.g. ucs2=1000")
        prices[_key(key, setting)] = _rial(value, setting)
    return PriceTable(prices, setting)


def price_table_from_toml(table: Mapping[str, Any], provider: str, where: str) -> PriceTable:
    """The `[prices]` table of smsdispatch.toml, for one provider (an empty table when it has none)."""
    entry = table.get(provider)
    if entry is None:
        return PriceTable(source=where)
    if not isinstance(entry, Mapping):
        return PriceTable({(None, None): _rial(entry, f"{where} {provider}")}, where)
    prices: dict[Key, float] = {}
    for key, value in entry.items():
        if isinstance(value, Mapping):  # [prices.amoot.MCI]: an operator's own prices
            operator, _ = _key(str(key), f"{where} {provider}")
            for sub, inner in value.items():
                _, alphabet = _key(str(sub), f"{where} {provider}.{key}")
                prices[(operator, alphabet)] = _rial(inner, f"{where} {provider}.{key}.{sub}")
        else:
            prices[_key(str(key), f"{where} {provider}")] = _rial(value, f"{where} {provider}.{key}")
    return PriceTable(prices, where)


def recipient_costs(
    phones: pd.Series,
    texts: pd.Series,
    parts: pd.Series,
    table: PriceTable,
    static_text: str = "",
    *,
    alphabets: pd.Series | None = None,
) -> np.ndarray:
    """Estimated rial per recipient: its SMS parts x the table's price for its operator and alphabet. Pure.

    `phones` in E.164, `texts` the rendered texts (None where the campaign's one `static_text` is sent),
    `parts` SMS parts per message (campaigns.text). The operator comes from the number's prefix
    (campaigns.operators, an estimate: numbers can be ported), so the look-ups are one per prefix and
    alphabet, not one per recipient. `alphabets` ("gsm7" / "ucs2" per recipient), when the caller worked
    them out already (`campaigns.plan`), saves reading every text again. Raises UnpricedError naming the
    first (operator, alphabet) the table has no price for.
    """
    if not len(phones):
        return np.zeros(0)
    prefix_codes, operators = operators_by_prefix(phones)
    if alphabets is not None:
        alphabet_codes, alphabets = pd.factorize(alphabets)
    elif texts.notna().any():
        alphabet_codes, alphabets = pd.factorize(encoding_series(texts.fillna(static_text)))
    else:
        alphabet_codes, alphabets = np.zeros(len(phones), dtype=np.intp), [encoding(static_text).value]
    prices = np.array(
        [[_or_nan(table.per_part(op, Alphabet(alphabet))) for alphabet in alphabets] for op in operators]
    )
    per_part = prices[prefix_codes, alphabet_codes]
    missing = np.isnan(per_part)
    if missing.any():  # only a pair some recipient has counts
        at = int(np.argmax(missing))
        operator, alphabet = operators[prefix_codes[at]], alphabets[alphabet_codes[at]]
        where = table.source or "the price table"
        raise UnpricedError(f"no price for {alphabet} parts to {operator.value} numbers in {where}")
    return per_part * parts.to_numpy(dtype=np.float64)


def _or_nan(price: float | None) -> float:
    return np.nan if price is None else price
