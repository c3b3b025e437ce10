"""Rows of a provider's answer that could not be read: counted, said once, never read as absence.

A sent box, a status list or a phonebook listing is evidence only where it was read. A row without a
number, an id or a text (a renamed field, an empty value, several numbers in one field) could be any
message, so whoever meets one keeps open the verdicts that row could change: reconciliation answers
UNKNOWN instead of NOT_SENT (the campaign's `--on-unknown` policy applies at its deadline), the poller
asks again, a contacts push holds the numbers instead of adding them again.

What could not be read is logged once per process for each (provider, answer, what was missing) at
WARNING, with the keys the unreadable rows did carry (what the provider sends instead); repeats go to
DEBUG with their count, so a campaign polling the same drifted field does not flood the log.
"""

from __future__ import annotations

import logging
import re
import threading
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from workers.providers import phones

log = logging.getLogger("workers.providers.evidence")

_SAID: Counter[tuple[str, str, tuple[str, ...]]] = Counter()
_LOCK = threading.Lock()
_SEPARATORS = re.compile(r"[,;]+")  # between numbers of a list (spaces may be inside one number)
KEYS_SHOWN = 12  # keys of the unreadable rows named in the log line at most
ASKED_AGAIN = "their recipients are not taken as answered and are asked again"  # `say`'s consequence


def forget() -> None:
    """Forget what was said (tests that check the one line start from a clean slate)."""
    with _LOCK:
        _SAID.clear()


@dataclass
class Unreadable:
    """The rows of one answer (`answer`: the method, e.g. "GetMessagesByDateRange") that could not be
    read, counted by what was missing; `say(total)` logs them once (see the module docstring)."""

    provider: str
    answer: str
    reasons: Counter[str] = field(default_factory=Counter)
    keys: set[str] = field(default_factory=set)

    @property
    def rows(self) -> int:
        return sum(self.reasons.values())

    def __bool__(self) -> bool:
        return self.rows > 0

    def row(self, why: str, row: Any = None) -> None:
        """Count one unreadable row; `why` says what was missing ("no receiver"); `row` gives its keys."""
        self.reasons[why] += 1
        if isinstance(row, Mapping):
            self.keys.update(str(k) for k in row)

    def say(self, total: int, consequence: str) -> None:
        """Log the unreadable rows of an answer of `total` rows, once (module docstring). `consequence`
        says what was not concluded from them ("their messages are not taken as not sent")."""
        if not self:
            return
        key = (self.provider, self.answer, tuple(sorted(self.reasons)))
        with _LOCK:
            _SAID[key] += 1
            times = _SAID[key]
        whats = ", ".join(f"{why}: {n}" for why, n in sorted(self.reasons.items()))
        shown = sorted(self.keys)[:KEYS_SHOWN]
        keys = f"; keys in them: {', '.join(shown)}" if shown else ""
        line = f"{self.provider} {self.answer}: {self.rows} of {total} rows could not be read ({whats}{keys})"
        if times == 1:
            log.warning("%s; %s (said once; repeats at debug level)", line, consequence)
        else:
            log.debug("%s (again, %d times)", line, times)


def one_number(value: Any) -> str | None:
    """The number a field holds, as its last ten digits (phones.key); None when it holds none, letters,
    or several (a comma list, a row about a whole batch, more than 15 digits): such a row cannot prove
    one recipient."""
    if isinstance(value, float) and value.is_integer():
        value = int(value)  # a number sent as a JSON float
    if value is None or isinstance(value, bool | float | dict | list):
        return None
    parts = [p for p in _SEPARATORS.split(str(value).strip()) if p]
    if len(parts) != 1 or any(ch.isalpha() for ch in parts[0]):
        return None
    digits = phones.digits(parts[0])
    return phones.key(digits) if 10 <= len(digits) <= 15 else None


def an_id(value: Any) -> str | None:
    """A provider's message id as text; None when the field is absent, empty, zero or not a scalar
    (providers answer 0 or "" where they have no id)."""
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if value is None or isinstance(value, bool | float | dict | list):
        return None
    text = str(value).strip()
    return None if text in ("", "0") else text
