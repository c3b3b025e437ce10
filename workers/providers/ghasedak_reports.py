"""Ghasedak v2 `sms/status` answers (seed 004; providers.md Decisions, Ghasedak, and §2A): delivery reports by
messageid (`type=1`) and reconciliation's lookup by our checkid (`type=2`).

A row without a status code, or without a messageid where one is due, answers nothing: logged once
(workers/providers/evidence.py) and left out, so its recipient is asked again, and a lookup row we cannot
read never turns into "not sent". Only the documented -1 ("unknown id") of a checkid lookup does, after the
client's grace period.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from workers.providers import phones
from workers.providers.evidence import ASKED_AGAIN, Unreadable
from workers.providers.values import field, lookup, to_int
from workers.providers.values import rows as dict_rows
from workers.status import DeliveryStatus, Message, SendOutcome, SendResult, StatusResult

# fmt: off
# sms/status `status` -> unified state. Source: seed 004 status table; mapping from providers.md §2A.
DELIVERY: dict[int, DeliveryStatus] = {
    0: DeliveryStatus.SENT_TO_OPERATOR, 1: DeliveryStatus.DELIVERED, 2: DeliveryStatus.UNDELIVERED,
    8: DeliveryStatus.SENT_TO_OPERATOR, 16: DeliveryStatus.FAILED, 27: DeliveryStatus.BLACKLISTED,
    -1: DeliveryStatus.UNKNOWN,  # bad or unknown id
}
# fmt: on
UNKNOWN_ID = -1


def delivery(code: Any) -> DeliveryStatus:
    return lookup(DELIVERY, code, "ghasedak delivery code")


def parse_status_items(items: Any, ids: Sequence[str]) -> list[StatusResult]:
    """One result per asked id, in order; an id the reply leaves out, or whose row has no status, is UNKNOWN
    with no raw code (rows without messageid or status logged once). `cost`: the item's `price` (seed 004
    status sample `"price": 155`, unit not stated; the credit is rial), as reported."""
    rows = {str(to_int(field(r, "messageid"))): r for r in readable(items, "sms/status", lookup=False)}
    keys = [to_int(i) for i in ids]
    found = [None if k is None else rows.get(str(k)) for k in keys]
    raws = [None if r is None else field(r, "status") for r in found]
    return [
        StatusResult(i, delivery(raw), str(raw), to_int(field(r, "price")))
        if raw is not None
        else StatusResult(i, DeliveryStatus.UNKNOWN)
        for i, r, raw in zip(ids, found, raws, strict=True)
    ]


def readable(items: Any, answer: str, *, lookup: bool) -> list[dict[str, Any]]:
    """The rows of `items` with a status (an unknown code is kept, raw) and a messageid (or, in a checkid
    `lookup`, the -1 of an unknown checkid); the others are logged once (evidence.Unreadable) and left out: they answer nothing."""
    rows, unread, out = dict_rows(items), Unreadable("ghasedak", answer), []
    if not isinstance(items, list):
        unread.row("no items list", items)
    for row in rows:
        raw, mid = field(row, "status"), to_int(field(row, "messageid"))
        if raw is None or (mid is None and not (lookup and to_int(raw) == UNKNOWN_ID)):
            unread.row("no status" if raw is None else "no messageid", row)
        else:
            out.append(row)
    unread.say(len(rows), ASKED_AGAIN if not lookup else "their messages are not taken as not sent")
    return out


def parse_lookup_items(items: Any, messages: Sequence[Message], grace_over: bool) -> list[SendResult]:
    """Reconciliation by checkid: found -> ACCEPTED, -1 -> NOT_SENT once the grace period is over. Rows are
    matched by checkid, else by position when every row could be read and they are as many as the ids."""
    rows = dict_rows(items)
    ok = readable(items, "sms/status type=2", lookup=True)
    if any(field(r, "checkid") is not None for r in rows):  # match by checkid when the reply carries it
        by_ref = {str(field(r, "checkid")): r for r in ok}
        matched = [by_ref.get(m.client_ref) for m in messages]
    else:  # else items come in the order of the ids asked; a count mismatch proves nothing
        matched = list(ok) if len(ok) == len(rows) == len(messages) else [None] * len(messages)
    out = []
    for m, row in zip(messages, matched, strict=True):
        code, message_id = to_int(field(row or {}, "status")), to_int(field(row or {}, "messageid"))
        receptor, raw = field(row or {}, "receptor"), None if code is None else str(code)
        if code == UNKNOWN_ID:
            outcome = SendOutcome.NOT_SENT if grace_over else SendOutcome.UNKNOWN
            out.append(SendResult(m.recipient_id, outcome, raw_code=raw, error="checkid unknown (-1)"))
        elif code is None or message_id is None or (receptor and phones.key(receptor) != phones.key(m.phone)):
            out.append(
                SendResult(m.recipient_id, SendOutcome.UNKNOWN, raw_code=raw, error="no matching item")
            )
        else:
            out.append(SendResult(m.recipient_id, SendOutcome.ACCEPTED, str(message_id), raw, delivery(code)))
    return out
