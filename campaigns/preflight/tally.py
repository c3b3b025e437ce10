"""One pass over the loaded recipients, block by block, gathering what the preflight summary needs. Pure.

`Tally.add(block)` takes a loader block (`row`, `phone` in E.164, then the file's own columns, as
`campaigns.load.RecipientLoader.blocks()` yields them) and returns the block to send: the same block,
or without the recipients sent recently when `skip_recent` is set. Memory grows by 16 bytes per
recipient (the fingerprint's number and text hash); everything else is counters.

The fingerprint names "this list with this text": sha256 over the sorted unique numbers, the template
(Arabic letters folded, whitespace collapsed) and, when the text is personalised, a 64-bit hash of each
rendered message. File order, number spelling (0912…, +98912…, Persian digits), duplicate rows and the
file's other columns do not change it; a number opted out between two runs does (the loader drops it).
"""

from __future__ import annotations

import hashlib
import re
import unicodedata
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from campaigns.operators import Operator, operator_of
from campaigns.preflight.summary import Preview
from campaigns.text import Alphabet, Template, count_parts, count_parts_series, encoding, encoding_series

__all__ = ["LINK", "EmptyPlaceholders", "RecentSends", "Tally"]

FINGERPRINT_VERSION = b"smsdispatch-fingerprint-v1\n"

# A link as lines filter them: a scheme, www., or a bare domain with a common top-level domain.
LINK = re.compile(
    r"(?i)\b(?:https?://|www\.)\S+|\b[a-z0-9][a-z0-9-]*(?:\.[a-z0-9-]+)*\."
    r"(?:ir|com|net|org|info|io|me|co|app|link|shop|site|xyz|ly)\b(?:/\S*)?"
)


@dataclass(frozen=True)
class RecentSends:
    """Numbers sent by some campaign within the frequency cap, and the campaign (the latest one that sent
    to each). Two int64 arrays, 16 bytes a number: `numbers` sorted (E.164 digits without the +)."""

    numbers: np.ndarray
    campaigns: np.ndarray

    @classmethod
    def from_pairs(cls, pairs: Iterable[tuple[str, int]]) -> RecentSends:
        """(E.164 phone, campaign id) pairs, oldest first: a later pair for the same phone wins."""
        items = list(pairs)
        numbers = np.array([int(p[1:]) for p, _ in items], dtype=np.int64)
        return cls.from_arrays(numbers, np.array([c for _, c in items], dtype=np.int64))

    @classmethod
    def from_arrays(cls, numbers: np.ndarray, campaigns: np.ndarray) -> RecentSends:
        """E.164 digits (int64) and campaign ids, oldest send first: a later send of a number wins."""
        # np.unique keeps the first occurrence: reverse so that the latest send is the one kept.
        kept, first = np.unique(numbers[::-1], return_index=True)
        return cls(kept, campaigns[::-1][first])

    def __len__(self) -> int:
        return len(self.numbers)

    def lookup(self, phones: pd.Series) -> np.ndarray:
        """The campaign that sent each E.164 phone recently, 0 for none (campaign ids start at 1)."""
        if not len(self.numbers) or not len(phones):
            return np.zeros(len(phones), dtype=np.int64)
        wanted = phones.str.slice(1).astype(np.int64).to_numpy()
        at = np.clip(np.searchsorted(self.numbers, wanted), 0, len(self.numbers) - 1)
        return np.where(self.numbers[at] == wanted, self.campaigns[at], 0)


class EmptyPlaceholders:
    """Rows where some placeholder came out empty: how many, the first row, and which placeholders."""

    def __init__(self) -> None:
        self.rows = 0
        self.first_row: int | None = None
        self.names: Counter[str] = Counter()


class Tally:
    """Counters over the blocks of one load; see the module docstring.

    `recent`: the numbers some campaign sent to within the frequency cap (a mapping E.164 -> campaign id
    is accepted too).
    """

    def __init__(
        self,
        template: Template,
        *,
        recent: RecentSends | Mapping[str, int] | None = None,
        skip_recent: bool = False,
    ) -> None:
        self.template = template
        if recent is None or isinstance(recent, RecentSends):
            self.recent = recent or RecentSends.from_pairs([])
        else:
            self.recent = RecentSends.from_pairs(recent.items())
        self.skip_recent = skip_recent
        self.recipients = 0
        self.operators: Counter[Operator] = Counter()
        self.histogram: Counter[int] = Counter()
        self.alphabets: Counter[Alphabet] = Counter()
        self.parts_by: Counter[tuple[Operator, Alphabet]] = Counter()  # SMS parts per operator and alphabet
        self.recent_hits: Counter[int] = Counter()  # campaign -> recipients it sent within the cap
        self.skipped: list[tuple[int, str, int]] = []  # (row, phone, campaign) moved to the rejects
        self.links = 0
        self.first_link: str | None = None
        self.empty = EmptyPlaceholders()
        self.first: Preview | None = None
        self.longest: Preview | None = None
        self.empty_preview: Preview | None = None
        self._numbers: list[np.ndarray] = []
        self._hashes: list[np.ndarray] = []
        self._static = template.static_text
        if self._static is not None:
            self._static_parts = count_parts(self._static)
            self._static_alphabet = encoding(self._static)
            match = LINK.search(self._static)
            self._static_link = match.group(0) if match else None

    @property
    def total_parts(self) -> int:
        return sum(self.parts_by.values())

    def add(self, block: pd.DataFrame) -> pd.DataFrame:
        """Count one loader block; return it (without recently-sent recipients when skipping them)."""
        if not len(block):
            return block
        texts = None if self._static is not None else self.template.render(block)
        self._fingerprint(block, texts)
        if len(self.recent):
            campaigns = self.recent.lookup(block["phone"])
            hit = campaigns > 0
            if hit.any():
                self.recent_hits.update(campaigns[hit].tolist())
                if self.skip_recent:
                    rows = block["row"].to_numpy()[hit].tolist()
                    phones = block["phone"].to_numpy()[hit].tolist()
                    self.skipped.extend(zip(rows, phones, campaigns[hit].tolist(), strict=True))
                    block = block[~hit]
                    texts = None if texts is None else texts[~hit]
                    if not len(block):
                        return block
        self._count(block, texts)
        return block

    def _fingerprint(self, block: pd.DataFrame, texts: pd.Series | None) -> None:
        self._numbers.append(block["phone"].str.slice(1).astype(np.int64).to_numpy())
        if texts is not None:
            self._hashes.append(pd.util.hash_pandas_object(texts, index=False).to_numpy(dtype=np.uint64))

    def fingerprint(self) -> str:
        """sha256 hex of this list with this text (module docstring), over every block added so far."""
        numbers = np.concatenate(self._numbers) if self._numbers else np.zeros(0, dtype=np.int64)
        order = np.argsort(numbers, kind="stable")
        digest = hashlib.sha256(FINGERPRINT_VERSION)
        text = " ".join(unicodedata.normalize("NFC", self.template.text).split())
        digest.update(text.encode("utf-8") + b"\n")
        digest.update(numbers[order].astype("<i8").tobytes())
        if self._hashes:
            digest.update(np.concatenate(self._hashes)[order].astype("<u8").tobytes())
        return digest.hexdigest()

    def _count(self, block: pd.DataFrame, rendered: pd.Series | None) -> None:
        rows = block["row"].to_numpy()
        codes, prefixes = pd.factorize(block["phone"].str.slice(0, 7))  # operator_of reads +98 and 4 digits
        operators = pd.Series(
            np.array([operator_of(p + "000000") for p in prefixes], dtype=object)[codes], index=block.index
        )
        if self._static is not None:
            texts = pd.Series(self._static, index=block.index, dtype=object)
            parts = pd.Series(self._static_parts, index=block.index, dtype=np.int64)
            alphabets = pd.Series(self._static_alphabet.value, index=block.index, dtype=object)
            links = np.full(len(block), self._static_link is not None)
            if self._static_link and self.first_link is None:
                self.first_link = self._static_link
        else:
            assert rendered is not None
            texts = rendered
            parts = count_parts_series(texts)
            alphabets = encoding_series(texts)
            # pyarrow's RE2 directly: pandas sends this pattern to Python's re, row by row (10x slower).
            found = pc.match_substring_regex(pa.array(texts, type=pa.string()), LINK.pattern)
            links = found.fill_null(False).to_numpy(zero_copy_only=False)
            if links.any() and self.first_link is None:
                match = LINK.search(str(texts.iloc[int(np.argmax(links))]))
                self.first_link = match.group(0) if match else None
        self.recipients += len(block)
        self.links += int(links.sum())
        self.operators.update(operators.value_counts().to_dict())
        self.histogram.update({int(k): int(v) for k, v in parts.value_counts().items()})
        self.alphabets.update({Alphabet(k): int(v) for k, v in alphabets.value_counts().items()})
        grouped = pd.DataFrame(
            {"op": operators.to_numpy(), "ab": alphabets.to_numpy(), "parts": parts.to_numpy()}
        )
        for (op, ab), total in grouped.groupby(["op", "ab"], sort=False)["parts"].sum().items():
            self.parts_by[(Operator(op), Alphabet(ab))] += int(total)
        self._previews(rows, texts, parts)
        self._empty_placeholders(block, rows, texts, parts)

    def _previews(self, rows: np.ndarray, texts: pd.Series, parts: pd.Series) -> None:
        if self.first is None:
            self.first = Preview(int(rows[0]), str(texts.iloc[0]), int(parts.iloc[0]), "first row")
        lengths = texts.str.len().to_numpy()
        best = int(np.lexsort((-rows, lengths, parts.to_numpy()))[-1])  # most parts, then longest, then first
        candidate = (int(parts.iloc[best]), int(lengths[best]))
        if self.longest is None or candidate > (self.longest.parts, len(self.longest.text)):
            self.longest = Preview(int(rows[best]), str(texts.iloc[best]), candidate[0], "longest text")

    def _empty_placeholders(
        self, block: pd.DataFrame, rows: np.ndarray, texts: pd.Series, parts: pd.Series
    ) -> None:
        if self.template.is_static:
            return
        any_empty = np.zeros(len(block), dtype=bool)
        for name, column in self.template.resolve(block.columns.astype(str)).items():
            values = block[column]
            empty = (values.isna() | (values.astype(str).str.strip() == "")).to_numpy(dtype=bool)
            if empty.any():
                self.empty.names[name] += int(empty.sum())
                any_empty |= empty
        if not any_empty.any():
            return
        self.empty.rows += int(any_empty.sum())
        if self.empty.first_row is None:
            at = int(np.argmax(any_empty))
            self.empty.first_row = int(rows[at])
            self.empty_preview = Preview(
                int(rows[at]), str(texts.iloc[at]), int(parts.iloc[at]), "empty placeholder"
            )
