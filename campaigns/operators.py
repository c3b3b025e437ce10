"""Which mobile operator a number belongs to: MCI, Irancell, Rightel or other.

An estimate, not a fact: the answer comes from the number's prefix in the `phonenumbers` carrier
data, and Iranian numbers can be ported between operators (MNP) without their prefix changing.
Everything that shows these counts to a person says so (`ESTIMATE_NOTE`).

The carrier names are read from phonenumbers' metadata at call time, so a library upgrade that
assigns a new prefix moves us with it; numbers with no carrier there (or a small carrier such as
MTCE/Spadan, Taliya or an MVNO) count as `other`.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from enum import StrEnum
from functools import lru_cache

import numpy as np
import pandas as pd
import phonenumbers
import pyarrow as pa
import pyarrow.compute as pc
from phonenumbers import carrier

ESTIMATE_NOTE = "by number prefix (phonenumbers carrier data); ported numbers may belong to another operator"


class Operator(StrEnum):
    """The three national mobile operators, and everything else."""

    MCI = "MCI"
    IRANCELL = "Irancell"
    RIGHTEL = "Rightel"
    OTHER = "other"


PERSIAN_NAMES: dict[Operator, str] = {
    Operator.MCI: "همراه اول",
    Operator.IRANCELL: "ایرانسل",
    Operator.RIGHTEL: "رایتل",
    Operator.OTHER: "سایر",
}

# phonenumbers' English carrier names (its `carrier/data` for +98), mapped to ours.
_CARRIERS: dict[str, Operator] = {
    "IR-MCI": Operator.MCI,
    "MCI": Operator.MCI,
    "Irancell": Operator.IRANCELL,
    "MTN Irancell": Operator.IRANCELL,
    "Rightel": Operator.RIGHTEL,
    "RighTel": Operator.RIGHTEL,
}


@lru_cache(maxsize=4096)
def _operator_of_prefix(prefix: str) -> Operator:
    try:
        number = phonenumbers.parse(prefix + "0" * (13 - len(prefix)), None)
    except phonenumbers.NumberParseException:
        return Operator.OTHER
    return _CARRIERS.get(carrier.name_for_number(number, "en"), Operator.OTHER)


def operator_of(e164: str) -> Operator:
    """The operator of an Iranian mobile number in E.164 (`+989121234567`); `OTHER` when unknown.

    Decided by the first seven characters (`+98` and the four-digit mobile prefix, e.g. `+98912`
    plus one digit, which is as fine as phonenumbers' carrier data for Iran goes), cached, so a
    million numbers cost about a million dictionary look-ups.
    """
    if not e164.startswith("+989") or len(e164) != 13:
        return Operator.OTHER
    return _operator_of_prefix(e164[:7])


def operators_by_prefix(phones: pd.Series) -> tuple[np.ndarray, list[Operator]]:
    """Per phone (E.164 str Series) the index (intp array) of its operator in the list returned, which has
    one entry per distinct first seven characters (`operator_of`'s unit): a column's operators with one
    `operator_of` per prefix, not per number (Arrow's hash table does the per-row part)."""
    values = pa.array(phones.astype("str"), from_pandas=True)
    if isinstance(values, pa.ChunkedArray):
        values = values.combine_chunks()
    encoded = pc.dictionary_encode(pc.utf8_slice_codeunits(values, 0, 7))
    operators = [operator_of(prefix + "000000") for prefix in encoded.dictionary.to_pylist()]
    return encoded.indices.to_numpy(zero_copy_only=False).astype(np.intp), operators


def count_operators(phones: Iterable[str]) -> dict[Operator, int]:
    """Recipients per operator, every operator present (zero when none): `{Operator.MCI: n, ...}`."""
    counts = Counter(operator_of(p) for p in phones)
    return {op: counts.get(op, 0) for op in Operator}
