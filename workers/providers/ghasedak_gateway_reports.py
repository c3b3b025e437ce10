"""Ghasedak gateway REST v1 `CheckSmsStatus` answers (providers.md §2B): delivery reports by messageId
(`Type=1`) and reconciliation's lookup by clientReferenceId (`Type=2`).

The answer's key case varies between endpoints, so keys are read case-insensitively. A row we cannot read
answers nothing: a status row without messageId or status leaves its recipient to be asked again; a lookup
answer without a list of rows, or with a row that has neither clientReferenceId nor receptor (it could be
any message's), never turns a message it does not list into "not sent". Each is logged once
(workers/providers/evidence.py).
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Sequence
from typing import Any

from workers.providers import phones
from workers.providers.evidence import ASKED_AGAIN, Unreadable
from workers.providers.values import field, lookup, to_float
from workers.providers.values import rows as dict_rows
from workers.status import DeliveryStatus, Message, SendOutcome, SendResult, StatusResult

log = logging.getLogger("workers.providers.ghasedak_gateway")
_S = DeliveryStatus
# fmt: off
# Delivery `status`, (a) the docs' enum and (b) the SDKs' SendStatus, mapped as §2B says.
DOCS_DELIVERY: dict[int, DeliveryStatus] = {
    0: _S.PENDING, 1: _S.FAILED, 2: _S.BLACKLISTED, 3: _S.SENT_TO_OPERATOR, 4: _S.UNDELIVERED,
    5: _S.DELIVERED, 6: _S.FAILED, 7: _S.UNKNOWN, 8: _S.UNKNOWN,
}
SDK_DELIVERY: dict[int, DeliveryStatus] = {
    **dict.fromkeys((0, 2, 3, 9, 17), _S.PENDING), **dict.fromkeys((4, 10, 11), _S.SENT_TO_OPERATOR),
    14: _S.DELIVERED, 13: _S.UNDELIVERED, **dict.fromkeys((1, 6, 7, 15, 16), _S.FAILED),
    **dict.fromkeys((8, 12), _S.BLACKLISTED), 5: _S.UNKNOWN,
}
# fmt: on
ENUMS = {"docs": DOCS_DELIVERY, "sdk": SDK_DELIVERY}


def delivery(raw: Any, enum: str) -> DeliveryStatus:
    return lookup(ENUMS[enum], raw, f"ghasedak-gateway delivery status ({enum} enum)")


def status_rows(data: Any, unread: Unreadable | None = None) -> list[dict[str, Any]]:
    """CheckSmsStatus `data`: a list of rows (docs), or rows under `items`; neither is noted in `unread`."""
    rows = data if isinstance(data, list) else field(data, "items")
    if not isinstance(rows, list) and unread is not None:
        unread.row("no list of rows", data)
    return dict_rows(rows)


def parse_status_data(data: Any, ids: Sequence[str], enum: str) -> list[StatusResult]:
    """One result per asked id, in order; an id the reply leaves out is UNKNOWN with no raw code, as is one
    whose row has no status (logged once); each item's `price` (§2B CheckSmsStatus) is kept as its cost."""
    unread, rows = Unreadable("ghasedak-gateway", "CheckSmsStatus"), {}
    for row in (items := status_rows(data, unread)):
        mid, raw = field(row, "messageId"), field(row, "status")
        if mid in (None, "") or raw is None:
            unread.row("no messageId" if mid in (None, "") else "no status", row)
        else:
            rows[str(mid)] = row
    unread.say(len(items), ASKED_AGAIN)
    raws = {i: field(r, "status") for i, r in rows.items()}
    log.info("ghasedak-gateway: raw delivery statuses %s", dict(Counter(map(str, raws.values()))))
    return [
        StatusResult(i, delivery(raws[i], enum), str(raws[i]), to_float(field(rows[i], "price")))
        if i in raws
        else StatusResult(i, _S.UNKNOWN)
        for i in map(str, ids)
    ]


def parse_lookup_data(
    data: Any, messages: Sequence[Message], grace_over: bool, enum: str
) -> list[SendResult]:
    """Type=2 rows -> one result per message: its own clientReferenceId's row, else (bulk mode) a row to its
    number; found with an id -> ACCEPTED; absent -> NOT_SENT once `grace_over`, unless
    the answer had no list or a row with neither clientReferenceId nor receptor (it could be anyone's)."""
    unread = Unreadable("ghasedak-gateway", "CheckSmsStatus Type=2")
    rows, usable = status_rows(data, unread), []
    anyone = bool(unread)  # no list of rows
    for row in rows:
        if field(row, "clientReferenceId") is None and not field(row, "receptor"):
            unread.row("no clientReferenceId or receptor", row)
            anyone = True
            continue
        usable.append(row)
        if field(row, "messageId") in (None, "", 0, "0"):
            unread.row("no messageId", row)
    unread.say(len(rows), "their messages are not taken as not sent")
    out = []
    for m in messages:
        mine = [r for r in usable if str(field(r, "clientReferenceId")) == m.client_ref]
        key = phones.key(m.phone)
        to_it = [r for r in usable if field(r, "receptor") and phones.key(field(r, "receptor")) == key]
        # its own reference (unless another number's), else (bulk mode) a row of the batch to its number
        same = [r for r in mine if not field(r, "receptor") or r in to_it] or to_it
        row = (same or [None])[0]
        mid = None if row is None else field(row, "messageId")
        if row is None or mid in (None, "", 0, "0"):
            outcome = (
                SendOutcome.NOT_SENT if grace_over and row is None and not anyone else SendOutcome.UNKNOWN
            )
            out.append(SendResult(m.recipient_id, outcome, error="clientReferenceId not listed"))
            continue
        raw, cost = field(row, "status"), to_float(field(row, "price"))
        state, raw_code = (_S.PENDING, None) if raw is None else (delivery(raw, enum), str(raw))
        out.append(SendResult(m.recipient_id, SendOutcome.ACCEPTED, str(mid), raw_code, state, cost=cost))
    return out
