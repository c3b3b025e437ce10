"""Reconciling an ambiguous send against a provider's sent box (Media Payamak §3B, Amoot §4).

Rows are matched to messages by number (last ten digits) and text, as the provider may store the
text; one row proves one message, never two. A message with no row is NOT_SENT once the grace
period is over (`settled`), else UNKNOWN: the sent box may lag the send.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from workers.providers import phones
from workers.status import Message, SendOutcome, SendResult

ARABIC_TO_PERSIAN = str.maketrans({"\u064a": "\u06cc", "\u0643": "\u06a9"})  # ي -> ی, ك -> ک


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


def match_sent_box(
    messages: Sequence[Message], rows: Sequence[SentRow], *, settled: bool, text_key: Callable[[str], str]
) -> list[SendResult]:
    """One result per message: ACCEPTED with the row's id, UNKNOWN for a row without an id, and for no
    row NOT_SENT when `settled`, else UNKNOWN. `text_key` says which texts count as the same."""
    pool: dict[tuple[str, str], list[SentRow]] = {}
    for row in rows:
        pool.setdefault((phones.key(row.number), text_key(row.text)), []).append(row)
    out = []
    for m in messages:
        found = pool.get((phones.key(m.phone), text_key(m.text)))
        if not found:
            outcome = SendOutcome.NOT_SENT if settled else SendOutcome.UNKNOWN
            out.append(SendResult(m.recipient_id, outcome, error="not in the sent box"))
            continue
        row = found.pop(0)
        if row.message_id:
            out.append(SendResult(m.recipient_id, SendOutcome.ACCEPTED, row.message_id, row.raw_code))
        else:
            out.append(SendResult(m.recipient_id, SendOutcome.UNKNOWN, error="found, without an id"))
    return out
