"""Reconciling an ambiguous send against a provider's sent box (Media Payamak §3B, Amoot §4).

Rows are matched to messages by number (last ten digits) and text, as the provider may store the
text; one row proves one message, never two. A message with no row is NOT_SENT once the grace
period is over (`settled`), else UNKNOWN: the sent box may lag the send. A row that could not be read
(no number, several numbers, no text: workers/providers/evidence.py) is no evidence of absence: while
the answer holds one, the messages it could be stay UNKNOWN (a row without a number could be any of
them; one with a number but no text, that number's), and reconciliation waits for its deadline.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from workers.providers import phones
from workers.providers.evidence import Unreadable, an_id, one_number
from workers.providers.values import field as get
from workers.status import Message, SendOutcome, SendResult

ARABIC_TO_PERSIAN = str.maketrans({"\u064a": "\u06cc", "\u0643": "\u06a9"})  # ي -> ی, ك -> ک
UNREAD = "the messages they could be are not taken as not sent (reconciliation waits for its deadline, then the campaign's --on-unknown policy)"


def loose_text(text: object) -> str:
    """Text as a Persian panel may store it: Arabic yeh/kaf as Persian, runs of whitespace as one space.
    A false "not sent" means a duplicate SMS, so compare loosely on what a panel may rewrite."""
    return " ".join(str(text).translate(ARABIC_TO_PERSIAN).split())


@dataclass(frozen=True)
class SentRow:
    number: str  # the recipient as the provider spells it
    text: str
    message_id: str | None  # the id `status` polls; None when the row carries none
    raw_code: str | None = None


@dataclass(frozen=True)
class SentBox:
    """A sent box as read: its readable rows, the number keys (phones.key) of rows whose text could not be
    read, and whether some row had no readable number at all (it could be any message)."""

    rows: Sequence[SentRow]
    unsure: frozenset[str] = field(default_factory=frozenset)
    anyone: bool = False

    def could_hide(self, phone: str) -> bool:
        """Whether an unreadable row could be this number's message."""
        return self.anyone or phones.key(phone) in self.unsure


def read_sent_box(
    provider: str,
    answer: str,
    reply: Any,
    names: tuple[str, str, str, str],
    raw_code: str | None = None,
    message_id: Callable[[Any], str | None] = an_id,
) -> SentBox:
    """A reply's sent box -> SentBox. `names`: the keys of the list in `reply` (a mapping), and of each
    row's number, text and id, all read case-insensitively; `message_id` reads the id (default `an_id`).
    A reply without the list (a renamed key), a list that is not one, and rows that cannot be read are
    logged once (evidence.Unreadable) and kept as `anyone`/`unsure`; a null list is an empty sent box."""
    list_key, number_key, text_key, id_key = names
    unread = Unreadable(provider, answer)
    found: list[SentRow] = []
    unsure: set[str] = set()
    anyone = False
    rows = get(reply, list_key)
    has_list = isinstance(reply, dict) and any(str(k).lower() == list_key.lower() for k in reply)
    if not has_list or not isinstance(rows, list | None):
        unread.row(f"no {list_key} list", reply)
        anyone, rows = True, []
    for row in rows or []:
        number = one_number(get(row, number_key))
        if number is None:
            unread.row(f"no single {number_key}", row)
            anyone = True
            continue
        text = get(row, text_key)
        if not isinstance(text, str) or not text.strip():
            unread.row(f"no {text_key}", row)
            unsure.add(number)
            continue
        mid = message_id(get(row, id_key))
        if mid is None:
            unread.row(f"no {id_key}", row)
        found.append(SentRow(number, text, mid, raw_code))
    unread.say(len(rows or []), UNREAD)
    return SentBox(found, frozenset(unsure), anyone)


def match_sent_box(
    messages: Sequence[Message], box: SentBox, *, settled: bool, text_key: Callable[[str], str]
) -> list[SendResult]:
    """One result per message: ACCEPTED with the row's id, UNKNOWN for a row without an id; for no row,
    NOT_SENT when `settled` and no unreadable row could be it, else UNKNOWN. `text_key` says which texts
    count as the same."""
    pool: dict[tuple[str, str], list[SentRow]] = {}
    for row in box.rows:
        pool.setdefault((phones.key(row.number), text_key(row.text)), []).append(row)
    out = []
    for m in messages:
        found = pool.get((phones.key(m.phone), text_key(m.text)))
        if not found:
            if box.could_hide(m.phone):
                out.append(SendResult(m.recipient_id, SendOutcome.UNKNOWN, error="sent box not readable"))
            else:
                outcome = SendOutcome.NOT_SENT if settled else SendOutcome.UNKNOWN
                out.append(SendResult(m.recipient_id, outcome, error="not in the sent box"))
            continue
        row = found.pop(0)
        if row.message_id:
            out.append(SendResult(m.recipient_id, SendOutcome.ACCEPTED, row.message_id, row.raw_code))
        else:
            out.append(SendResult(m.recipient_id, SendOutcome.UNKNOWN, error="found, without an id"))
    return out
