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

from campaigns.text import Template, count_parts, count_parts_series


@dataclass(frozen=True)
class PlannedBlock:
    recipients: pd.DataFrame  # row, phone, fields (JSON text), text (str or None), parts, seq
    chunks: pd.DataFrame  # seq, size, parts


def batch_size(configured: int, *, personalised: bool, provider_personalised: bool) -> int:
    """Numbers per chunk: the configured batch, or one when texts differ and one call carries one text."""
    return configured if not personalised or provider_personalised else 1


def fields_json(df: pd.DataFrame, columns: Sequence[str]) -> pd.Series:
    """One JSON object per row of the given columns, built column-wise (no per-row Python)."""
    if not columns:
        return pd.Series("{}", index=df.index, dtype=object)
    out: pd.Series | None = None
    for i, col in enumerate(columns):
        key = json.dumps(str(col), ensure_ascii=False)
        values = df[col].astype(str).fillna("")
        # JSON string escaping: backslash first, then quotes and the control characters CSVs carry.
        values = (
            values.str.replace("\\", "\\\\", regex=False)
            .str.replace('"', '\\"', regex=False)
            .str.replace("\n", "\\n", regex=False)
            .str.replace("\r", "\\r", regex=False)
            .str.replace("\t", "\\t", regex=False)
        )
        piece = ("{" if i == 0 else ",") + key + ':"' + values + '"'
        out = piece if out is None else out + piece
    assert out is not None
    return (out + "}").astype(object)


def plan(
    blocks: Iterable[pd.DataFrame],
    template: Template,
    batch: int,
    columns: Sequence[str],
) -> Iterator[PlannedBlock]:
    """Number recipients into chunks of at most `batch`, render personalised texts, count parts."""
    if batch < 1:
        raise ValueError("batch must be at least 1")
    static_parts = count_parts(template.static_text) if template.is_static else 0
    next_seq = 0
    carry: pd.DataFrame | None = None

    def build(df: pd.DataFrame, seq0: int) -> PlannedBlock:
        df = df.reset_index(drop=True)
        seq = seq0 + (np.arange(len(df)) // batch)
        if template.is_static:
            text = pd.Series([None] * len(df), dtype=object)
            parts = pd.Series(np.full(len(df), static_parts, dtype=np.int64))
        else:
            rendered = template.render(df)  # folds Arabic letters in the values too
            text = rendered.astype(object)
            parts = count_parts_series(rendered).astype(np.int64)
        recipients = pd.DataFrame(
            {
                "row": df["row"].astype(np.int64).to_numpy(),
                "phone": df["phone"].astype(str).to_numpy(),
                "fields": fields_json(df, columns).to_numpy(),
                "text": text.to_numpy(),
                "parts": parts.to_numpy(),
                "seq": seq,
            }
        )
        chunks = (
            recipients.groupby("seq", sort=True)
            .agg(size=("row", "size"), parts=("parts", "sum"))
            .reset_index()
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
