"""A block's personalised texts, worked out once per distinct text instead of once per row.

A recipients list has few distinct texts per template: `سلام {name}` over a million rows is a few thousand
names at most. Rendering, SMS parts, alphabet and the link check are functions of the text, so
`DistinctTexts.render` renders one representative row per distinct combination of the placeholders'
values, merges equal texts, and keeps per row only the index of its text (`codes`). Anything per row is
then a take: `parts()`, `alphabets()`, `objects()` (the row's text as a shared `str`, for a driver that
binds Python objects) and `categorical()` (codes plus distinct texts, for Arrow and pandas).

Measured on the messy million of bench/load_csv.py (154 distinct texts): docs/benchmarks.md, "Storing a
campaign".
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from campaigns.text import Template, count_parts_series, encoding_series

__all__ = ["DistinctTexts"]


def _arrow(values: pd.Series) -> pa.Array:
    """A str Series as one Arrow array (pandas may hold it in several chunks)."""
    array = pa.array(values, from_pandas=True)
    return array.combine_chunks() if isinstance(array, pa.ChunkedArray) else array


def _codes(values: pa.Array) -> tuple[np.ndarray, int]:
    """Per row the index of its value among the distinct ones (a missing value is one of them), numbered
    in order of first appearance, and how many there are: Arrow's hash table."""
    encoded = pc.dictionary_encode(values, null_encoding="encode")
    return encoded.indices.to_numpy(zero_copy_only=False).astype(np.int64), len(encoded.dictionary)


def _first_rows(codes: np.ndarray, k: int) -> np.ndarray:
    """The position of each code's first row, for codes numbered in order of first appearance (Arrow's
    dictionary_encode numbers them so); np.unique otherwise."""
    if not len(codes):
        return np.zeros(0, dtype=np.int64)
    seen = np.maximum.accumulate(codes)
    first = np.flatnonzero(np.concatenate(([True], seen[1:] > seen[:-1])))
    if len(first) != k or not np.array_equal(codes[first], np.arange(k)):
        first = np.unique(codes, return_index=True)[1]
    return first


@dataclass(frozen=True)
class DistinctTexts:
    """Rendered texts of some rows: `texts` the distinct ones (str, index 0..k-1), `codes` (int64, one per
    row) the index of each row's text in `texts`."""

    codes: np.ndarray
    texts: pd.Series

    @classmethod
    def render(cls, template: Template, df: pd.DataFrame) -> DistinctTexts:
        """`template.render(df)`, computed once per distinct combination of the placeholders' values, then
        kept once per distinct text. When most rows differ (a placeholder of the phone, a customer id) the
        rows are rendered as they are. Raises TemplateError for a placeholder that is not a column of `df`."""
        resolved = template.resolve(df.columns.astype(str))
        codes = np.zeros(len(df), dtype=np.int64)
        k = 1
        for column in dict.fromkeys(resolved.values()):
            # the values as the template renders them (`astype("str")`: 1 and 1.0 are two texts)
            more, n = _codes(_arrow(df[column].astype("str")))
            codes, k = _codes(pa.array(codes * n + more)) if k > 1 else (more, n)
            if 2 * k > len(df):  # mostly distinct: nothing to save
                return cls._merged(template.render(df.reset_index(drop=True)), np.arange(len(df)))
        return cls._merged(template.render(df.iloc[_first_rows(codes, k)].reset_index(drop=True)), codes)

    @classmethod
    def _merged(cls, rendered: pd.Series, codes: np.ndarray) -> DistinctTexts:
        """From texts rendered for some rows and each row's index into them: equal texts kept once."""
        merged = pc.dictionary_encode(_arrow(rendered.astype("str")))
        to_text = merged.indices.to_numpy(zero_copy_only=False).astype(np.int64)
        texts = pd.Series(merged.dictionary.to_pandas(), dtype="str").reset_index(drop=True)
        return cls(to_text[codes], texts)

    def __len__(self) -> int:
        return len(self.codes)

    @cached_property
    def distinct_parts(self) -> np.ndarray:
        """SMS parts of each distinct text (campaigns.text.count_parts)."""
        return count_parts_series(self.texts).to_numpy(dtype=np.int64)

    @cached_property
    def distinct_alphabets(self) -> np.ndarray:
        """Alphabet ("gsm7" / "ucs2") of each distinct text (campaigns.text.encoding)."""
        return encoding_series(self.texts).to_numpy(dtype=object)

    @cached_property
    def _distinct_objects(self) -> np.ndarray:
        return self.texts.to_numpy(dtype=object)

    def parts(self) -> np.ndarray:
        """SMS parts per row (int64)."""
        return self.distinct_parts[self.codes]

    def alphabets(self) -> np.ndarray:
        """Alphabet per row ("gsm7" / "ucs2", object array)."""
        return self.distinct_alphabets[self.codes]

    def objects(self) -> np.ndarray:
        """The text per row as an object array of `str`; rows with the same text share one object."""
        return self._distinct_objects[self.codes]

    def categorical(self) -> pd.Categorical:
        """Codes and distinct texts as a pandas Categorical (`pa.array` of it is a DictionaryArray)."""
        return pd.Categorical.from_codes(self.codes, categories=pd.Index(self.texts, dtype="str"))

    def take(self, rows: np.ndarray) -> DistinctTexts:
        """These rows only (a boolean mask or positions); the distinct texts are kept as they are."""
        return DistinctTexts(self.codes[rows], self.texts)
