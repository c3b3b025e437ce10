"""One pass over the loaded recipients, block by block, gathering what the preflight summary needs. Pure.

`Tally.add(block)` takes a loader block (`row`, `phone` in E.164, then the file's own columns, as
`campaigns.load.RecipientLoader.blocks()` yields them) and returns the block to send: the same block, or
without the numbers the operator blacklisted on an earlier promotional campaign (`blacklisted`, unless
`skip_blacklisted` is off) and without the recipients sent recently when `skip_recent` is set. Memory
grows by 8 bytes per recipient (the fingerprint's number); everything else is counters.

The fingerprint names "this list with this text": sha256 over the sorted unique numbers as loaded from
the file, BEFORE the suppression list and the blacklist memory take any out (the loader hands the
suppressed ones to `add_suppressed`), and the template (Arabic letters folded, whitespace collapsed).
File order, number spelling (0912…, +98912…, Persian digits), duplicate rows, the file's other columns
and a number opted out between two runs do not change it: the same file and text is the same campaign.
"""

from __future__ import annotations

import hashlib
import re
import unicodedata
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from campaigns.operators import Operator, operators_by_prefix
from campaigns.preflight.summary import Preview
from campaigns.rendered import DistinctTexts
from campaigns.text import Alphabet, Template, count_parts, encoding

__all__ = ["LINK", "EmptyPlaceholders", "RecentSends", "Tally"]

FINGERPRINT_VERSION = b"smsdispatch-fingerprint-v2\n"  # v1 also hashed rendered texts

# A link as lines filter them: a scheme, www., or a bare domain with a common top-level domain.
LINK = re.compile(
    r"(?i)\b(?:https?://|www\.)\S+|\b[a-z0-9][a-z0-9-]*(?:\.[a-z0-9-]+)*\."
    r"(?:ir|com|net|org|info|io|me|co|app|link|shop|site|xyz|ly)\b(?:/\S*)?"
)


@dataclass(frozen=True)
class RecentSends:
    """Numbers some campaigns sent to (or learnt something about), with the campaigns. E.164 digits
    without the + as int64.

    `numbers`/`campaigns`: one entry per number, the latest campaign (sorted by number), for `lookup`;
    `pair_numbers`/`pair_campaigns`: every distinct (number, campaign), sorted, for `campaigns_of`.
    About 32 bytes a number."""

    numbers: np.ndarray
    campaigns: np.ndarray
    pair_numbers: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))
    pair_campaigns: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))

    @classmethod
    def from_pairs(cls, pairs: Iterable[tuple[str, int]]) -> RecentSends:
        """(E.164 phone, campaign id) pairs, oldest first: a later pair for the same phone wins."""
        items = list(pairs)
        numbers = np.array([int(p[1:]) for p, _ in items], dtype=np.int64)
        return cls.from_arrays(numbers, np.array([c for _, c in items], dtype=np.int64))

    @classmethod
    def from_arrays(cls, numbers: np.ndarray, campaigns: np.ndarray) -> RecentSends:
        """E.164 digits (int64) and campaign ids, oldest first: a later one for a number wins `lookup`."""
        # np.unique keeps the first occurrence: reverse so that the latest send is the one kept.
        kept, first = np.unique(numbers[::-1], return_index=True)
        order = np.lexsort((campaigns, numbers))
        pn, pc_ = numbers[order], campaigns[order]
        distinct = np.ones(len(pn), dtype=bool)
        distinct[1:] = (pn[1:] != pn[:-1]) | (pc_[1:] != pc_[:-1])
        return cls(kept, campaigns[::-1][first], pn[distinct], pc_[distinct])

    def __len__(self) -> int:
        return len(self.numbers)

    @staticmethod
    def digits(phones: pd.Series) -> np.ndarray:
        """E.164 phones -> their digits as int64 (the arrays' spelling)."""
        return phones.str.slice(1).astype(np.int64).to_numpy()

    def lookup(self, phones: pd.Series) -> np.ndarray:
        """The latest campaign of each E.164 phone, 0 for none (campaign ids start at 1)."""
        if not len(self.numbers) or not len(phones):
            return np.zeros(len(phones), dtype=np.int64)
        wanted = self.digits(phones)
        at = np.clip(np.searchsorted(self.numbers, wanted), 0, len(self.numbers) - 1)
        return np.where(self.numbers[at] == wanted, self.campaigns[at], 0)

    def campaigns_of(self, phones: pd.Series) -> Counter[int]:
        """campaign -> how many of these E.164 phones it has (every campaign, not only the latest)."""
        if not len(self.pair_numbers) or not len(phones):
            return Counter()
        wanted = self.digits(phones)
        left = np.searchsorted(self.pair_numbers, wanted, "left")
        lengths = np.searchsorted(self.pair_numbers, wanted, "right") - left
        total = int(lengths.sum())
        if not total:
            return Counter()
        ends = np.cumsum(lengths)
        at = np.repeat(left, lengths) + (np.arange(total) - np.repeat(ends - lengths, lengths))
        found, counts = np.unique(self.pair_campaigns[at], return_counts=True)
        return Counter(dict(zip(found.tolist(), counts.tolist(), strict=True)))


MOBILE_BASE = 989_000_000_000  # an Iranian mobile's E.164 digits less this fit in uint32 (989 + 9 digits)


def _compact(digits: np.ndarray) -> np.ndarray:
    """E.164 digits (int64) as uint32 offsets from MOBILE_BASE when every one is an Iranian mobile (what the
    loader keeps), else as they are: the fingerprint keeps one number per row, 4 bytes instead of 8."""
    offsets = digits - MOBILE_BASE
    if len(offsets) and (offsets.min() < 0 or offsets.max() > np.iinfo(np.uint32).max):
        return digits
    return offsets.astype(np.uint32)


class EmptyPlaceholders:
    """Rows where some placeholder came out empty: how many, the first row, and which placeholders."""

    def __init__(self) -> None:
        self.rows = 0
        self.first_row: int | None = None
        self.names: Counter[str] = Counter()


class Tally:
    """Counters over the blocks of one load; see the module docstring.

    `recent`: the numbers campaigns sent to within the frequency cap (a mapping E.164 -> campaign id is
    accepted too). `blacklisted`: the numbers a delivery report marked blacklisted on an earlier
    promotional campaign, with the campaign that learnt it (None: not looked at, e.g. transactional);
    skipped unless `skip_blacklisted` is False (`--include-blacklisted`: counted, kept).
    """

    def __init__(
        self,
        template: Template,
        *,
        recent: RecentSends | Mapping[str, int] | None = None,
        skip_recent: bool = False,
        blacklisted: RecentSends | None = None,
        skip_blacklisted: bool = True,
    ) -> None:
        self.template = template
        if recent is None or isinstance(recent, RecentSends):
            self.recent = recent or RecentSends.from_pairs([])
        else:
            self.recent = RecentSends.from_pairs(recent.items())
        self.skip_recent = skip_recent
        self.blacklisted = blacklisted
        self.skip_blacklisted = skip_blacklisted
        self.recipients = 0
        self.operators: Counter[Operator] = Counter()
        self.histogram: Counter[int] = Counter()
        self.alphabets: Counter[Alphabet] = Counter()
        self.parts_by: Counter[tuple[Operator, Alphabet]] = Counter()  # SMS parts per operator and alphabet
        self.recent_recipients = 0  # recipients some campaign sent to within the cap
        self.recent_by: Counter[int] = Counter()  # campaign -> of this file's recipients, how many it sent to
        self.skipped: list[tuple[int, str, int]] = []  # (row, phone, campaign) moved to the rejects
        # the operator blacklist memory: campaign that learnt it -> recipients; (row, phone, campaign)
        # skipped; their SMS parts per operator and alphabet (what skipping them saves)
        self.blacklist_hits: Counter[int] = Counter()
        self.blacklist_skipped: list[tuple[int, str, int]] = []
        self.blacklist_parts_by: Counter[tuple[Operator, Alphabet]] = Counter()
        self.links = 0
        self.first_link: str | None = None
        self.empty = EmptyPlaceholders()
        self.first: Preview | None = None
        self.longest: Preview | None = None
        self.empty_preview: Preview | None = None
        self._numbers: list[np.ndarray] = []
        self._static = template.static_text
        if self._static is not None:
            self._static_parts = count_parts(self._static)
            self._static_alphabet = encoding(self._static)
            match = LINK.search(self._static)
            self._static_link = match.group(0) if match else None

    @property
    def total_parts(self) -> int:
        return sum(self.parts_by.values())

    @property
    def blacklisted_count(self) -> int:
        """Recipients the blacklist memory knows (skipped, or kept with `--include-blacklisted`)."""
        return sum(self.blacklist_hits.values())

    def add_suppressed(self, numbers: np.ndarray) -> None:
        """Numbers the loader took out for the suppression list (E.164 digits as int64): they still
        belong to the list the fingerprint names (module docstring)."""
        if len(numbers):
            self._numbers.append(_compact(np.asarray(numbers, dtype=np.int64)))

    def add(self, block: pd.DataFrame) -> pd.DataFrame:
        """Count one loader block; return it without the recipients skipped (blacklisted, recent)."""
        if not len(block):
            return block
        texts = None if self._static is not None else DistinctTexts.render(self.template, block)
        self._numbers.append(_compact(RecentSends.digits(block["phone"])))
        if self.blacklisted is not None and len(self.blacklisted):
            learnt = self.blacklisted.lookup(block["phone"])
            hit = learnt > 0
            if hit.any():
                self.blacklist_hits.update(learnt[hit].tolist())
                operators, parts, alphabets = self._measure(
                    block[hit], None if texts is None else texts.take(hit)
                )
                self._add_parts(self.blacklist_parts_by, operators, alphabets, parts)
                if self.skip_blacklisted:
                    self.blacklist_skipped.extend(
                        zip(
                            block["row"].to_numpy()[hit].tolist(),
                            block["phone"].to_numpy()[hit].tolist(),
                            learnt[hit].tolist(),
                            strict=True,
                        )
                    )
                    block = block[~hit]
                    texts = None if texts is None else texts.take(~hit)
                    if not len(block):
                        return block
        if len(self.recent):
            campaigns = self.recent.lookup(block["phone"])
            hit = campaigns > 0
            if hit.any():
                self.recent_recipients += int(hit.sum())
                self.recent_by.update(self.recent.campaigns_of(block["phone"][hit]))
                if self.skip_recent:
                    rows = block["row"].to_numpy()[hit].tolist()
                    phones = block["phone"].to_numpy()[hit].tolist()
                    self.skipped.extend(zip(rows, phones, campaigns[hit].tolist(), strict=True))
                    block = block[~hit]
                    texts = None if texts is None else texts.take(~hit)
                    if not len(block):
                        return block
        self._count(block, texts)
        return block

    def fingerprint(self) -> str:
        """sha256 hex of this list with this text (module docstring), over every block added so far."""
        wide = any(part.dtype != np.uint32 for part in self._numbers)
        parts = [
            p.astype(np.int64) + MOBILE_BASE if wide and p.dtype == np.uint32 else p for p in self._numbers
        ]
        numbers = np.concatenate(parts) if parts else np.zeros(0, dtype=np.uint32)
        del parts
        self._numbers = [numbers]  # the blocks' arrays go now: one copy of a list of millions, not two
        numbers.sort()  # in place: a set's order is free
        digest = hashlib.sha256(FINGERPRINT_VERSION)
        text = " ".join(unicodedata.normalize("NFC", self.template.text).split())
        digest.update(text.encode("utf-8") + b"\n")
        # the sorted unique numbers, as np.unique gives them (its hashing took 0.9 s of a million), by slices
        previous = None
        for start in range(0, len(numbers), 1 << 20):
            part = numbers[start : start + (1 << 20)]
            new = np.empty(len(part), dtype=bool)
            new[0] = previous is None or part[0] != previous
            np.not_equal(part[1:], part[:-1], out=new[1:])
            unique = part[new].astype(np.int64)
            digest.update((unique + MOBILE_BASE if not wide else unique).astype("<i8").tobytes())
            previous = part[-1]
        return digest.hexdigest()

    def _measure(
        self, block: pd.DataFrame, rendered: DistinctTexts | None
    ) -> tuple[pd.Series, pd.Series, pd.Series]:
        """(operator, SMS parts, alphabet) of each recipient of the block."""
        codes, by_prefix = operators_by_prefix(block["phone"])
        of_prefix = np.array(by_prefix, dtype=object)
        operators = pd.Series(
            of_prefix[codes] if len(codes) else of_prefix[:0], index=block.index, dtype=object
        )
        if self._static is not None:
            parts = pd.Series(self._static_parts, index=block.index, dtype=np.int64)
            alphabets = pd.Series(self._static_alphabet.value, index=block.index, dtype=object)
        else:
            assert rendered is not None  # counted once per distinct text
            parts = pd.Series(rendered.parts(), index=block.index, dtype=np.int64)
            alphabets = pd.Series(rendered.alphabets(), index=block.index, dtype=object)
        return operators, parts, alphabets

    @staticmethod
    def _add_parts(
        into: Counter[tuple[Operator, Alphabet]], operators: pd.Series, alphabets: pd.Series, parts: pd.Series
    ) -> None:
        op_codes, ops = pd.factorize(operators.to_numpy())
        ab_codes, abs_ = pd.factorize(alphabets.to_numpy())
        totals = np.bincount(
            op_codes * len(abs_) + ab_codes,
            weights=parts.to_numpy(dtype=np.float64),
            minlength=len(ops) * len(abs_),
        )
        present = np.bincount(op_codes * len(abs_) + ab_codes, minlength=len(ops) * len(abs_))
        for at in np.flatnonzero(present):
            into[(Operator(ops[at // len(abs_)]), Alphabet(abs_[at % len(abs_)]))] += int(totals[at])

    def _count(self, block: pd.DataFrame, rendered: DistinctTexts | None) -> None:
        rows = block["row"].to_numpy()
        operators, parts, alphabets = self._measure(block, rendered)
        if self._static is not None:
            texts = np.full(len(block), self._static, dtype=object)
            lengths = np.full(len(block), len(self._static), dtype=np.int64)
            links = np.full(len(block), self._static_link is not None)
            if self._static_link and self.first_link is None:
                self.first_link = self._static_link
        else:
            assert rendered is not None
            texts = rendered.objects()  # a row's text is its distinct text's str: nothing built per row
            lengths = rendered.texts.str.len().to_numpy(dtype=np.int64)[rendered.codes]
            # once per distinct text, with pyarrow's RE2 (pandas sends this pattern to Python's re)
            found = pc.match_substring_regex(pa.array(rendered.texts, type=pa.string()), LINK.pattern)
            links = found.fill_null(False).to_numpy(zero_copy_only=False)[rendered.codes]
            if links.any() and self.first_link is None:
                match = LINK.search(str(texts[int(np.argmax(links))]))
                self.first_link = match.group(0) if match else None
        self.recipients += len(block)
        self.links += int(links.sum())
        self.operators.update(operators.value_counts().to_dict())
        self.histogram.update({int(k): int(v) for k, v in parts.value_counts().items()})
        self.alphabets.update({Alphabet(k): int(v) for k, v in alphabets.value_counts().items()})
        self._add_parts(self.parts_by, operators, alphabets, parts)
        self._previews(rows, texts, lengths, parts)
        self._empty_placeholders(block, rows, texts, parts)

    def _previews(self, rows: np.ndarray, texts: np.ndarray, lengths: np.ndarray, parts: pd.Series) -> None:
        """`texts`: each row's text (object array), `lengths` their lengths in characters."""
        if self.first is None:
            self.first = Preview(int(rows[0]), str(texts[0]), int(parts.iloc[0]), "first row")
        best = int(np.lexsort((-rows, lengths, parts.to_numpy()))[-1])  # most parts, then longest, then first
        candidate = (int(parts.iloc[best]), int(lengths[best]))
        if self.longest is None or candidate > (self.longest.parts, len(self.longest.text)):
            self.longest = Preview(int(rows[best]), str(texts[best]), candidate[0], "longest text")

    def _empty_placeholders(
        self, block: pd.DataFrame, rows: np.ndarray, texts: np.ndarray, parts: pd.Series
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
                int(rows[at]), str(texts[at]), int(parts.iloc[at]), "empty placeholder"
            )
