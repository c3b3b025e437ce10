"""Chunk planning: cut the loaded recipients into provider-sized chunks and price them in parts.

Pure functions over DataFrames. Blocks from the loader arrive in arbitrary sizes; `plan` re-blocks
them so that every block it yields holds whole chunks only (the last one may be short), which lets
the store insert a block's chunks and recipients together.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from campaigns.rendered import DistinctTexts
from campaigns.text import Template, count_parts, encoding


@dataclass(frozen=True)
class PlannedBlock:
    """One block of recipients in whole chunks.

    `recipients`: row (int64), phone (E.164, str), fields (JSON text, str), text (None when the campaign's
    one text is sent, else the rendered text as a pandas Categorical: the distinct texts once, a code per
    row), parts (int64), alphabet ("gsm7" / "ucs2"), seq (int64). `chunks`: seq, size, parts (int64).
    """

    recipients: pd.DataFrame
    chunks: pd.DataFrame


def batch_size(configured: int, *, personalised: bool, provider_personalised: bool) -> int:
    """Numbers per chunk: the configured batch, or one when texts differ and one call carries one text."""
    return configured if not personalised or provider_personalised else 1


_NEEDS_ESCAPE = r'[\\"\n\r\t]'
_JSON_ESCAPES = (("\\", "\\\\"), ('"', '\\"'), ("\n", "\\n"), ("\r", "\\r"), ("\t", "\\t"))


def _large(text: str) -> pa.Scalar:
    return pa.scalar(text, pa.large_string())


def fields_json(df: pd.DataFrame, columns: Sequence[str]) -> pd.Series:
    """One JSON object per row of the given columns (str Series), built column-wise by Arrow's kernels
    (no per-row Python): each value as text, a missing one as "", escaped for JSON (backslash first, then
    quotes and the control characters CSVs carry)."""
    if not columns:
        return pd.Series("{}", index=df.index, dtype="str")
    pieces: list[pa.Array | pa.Scalar] = []
    for i, col in enumerate(columns):
        values = pa.array(df[col].astype("str").fillna(""), type=pa.large_string(), from_pandas=True)
        if isinstance(values, pa.ChunkedArray):
            values = values.combine_chunks()
        if pc.any(pc.match_substring_regex(values, _NEEDS_ESCAPE)).as_py():  # most columns need none
            for plain, escaped in _JSON_ESCAPES:
                values = pc.replace_substring(values, plain, escaped)
        key = json.dumps(str(col), ensure_ascii=False)
        pieces += [_large(("{" if i == 0 else ",") + key + ':"'), values, _large('"')]
    joined = pc.binary_join_element_wise(*pieces, _large("}"), _large(""))
    return pd.Series(joined, index=df.index, dtype="str")


def plan(
    blocks: Iterable[pd.DataFrame],
    template: Template,
    batch: int,
    columns: Sequence[str],
) -> Iterator[PlannedBlock]:
    """Number recipients into chunks of at most `batch`, render personalised texts, count parts.

    Texts, parts and alphabets are worked out once per distinct text (`campaigns.rendered`); a row
    carries the code of its text."""
    if batch < 1:
        raise ValueError("batch must be at least 1")
    static = template.static_text if template.is_static else None
    static_parts = count_parts(static) if static is not None else 0
    static_alphabet = encoding(static).value if static is not None else ""
    next_seq = 0
    carry: pd.DataFrame | None = None

    def build(df: pd.DataFrame, seq0: int) -> PlannedBlock:
        df = df.reset_index(drop=True)
        n = len(df)
        seq = seq0 + (np.arange(n, dtype=np.int64) // batch)
        if static is not None:
            text: object = np.full(n, None, dtype=object)
            parts = np.full(n, static_parts, dtype=np.int64)
            alphabet = np.full(n, static_alphabet, dtype=object)
        else:
            rendered = DistinctTexts.render(template, df)  # folds Arabic letters in the values too
            text, parts, alphabet = rendered.categorical(), rendered.parts(), rendered.alphabets()
        recipients = pd.DataFrame(
            {
                "row": df["row"].to_numpy(dtype=np.int64),
                "phone": df["phone"].astype("str"),
                "fields": fields_json(df, columns),
                "text": text,
                "parts": parts,
                "alphabet": alphabet,
                "seq": seq,
            }
        )
        starts = np.flatnonzero(np.concatenate(([True], seq[1:] != seq[:-1]))) if n else np.zeros(0, np.int64)
        chunks = pd.DataFrame(
            {
                "seq": seq[starts],
                "size": np.diff(np.append(starts, n)).astype(np.int64),
                "parts": np.add.reduceat(parts, starts) if n else np.zeros(0, np.int64),
            }
        )
        return PlannedBlock(recipients, chunks)

    for block in blocks:
        if carry is not None and len(carry):
            block = pd.concat([carry, block], ignore_index=True)
        whole = (len(block) // batch) * batch
        if whole:
            yield build(block.iloc[:whole], next_seq)
            next_seq += whole // batch
        carry = block.iloc[whole:]
    if carry is not None and len(carry):
        yield build(carry, next_seq)
