"""Ghasedak v2 REST client. Wire protocol: shared/providers.md, "Decisions" (Ghasedak) and §2A; seed 004.

Base https://api.ghasedak.me/v2, header `apikey`, POST form-urlencoded, envelope {"result": {"code",
"message"}, "items": ...}: success iff result.code == 200, whatever the HTTP status. One text to many goes to
`sms/send/pair`; different texts to `sms/send/bulk` (parallel comma lists, each text percent-encoded first as
the official C# SDK does, so commas inside a text survive) or one `sms/send/simple` per recipient. Our
`Message.client_ref` is the `checkid`, which `sms/status type=2` looks up when a send was ambiguous.
Inbox (opt-out replies): `sms/receive/paging` on our line (seed 004: `linenumber`, `isread` 0 unread / 1 read,
`fromdate`/`todate` in Unix seconds, `page` from 0, `offset` = rows per page, at most 200; rows `messageid`,
`message`, `sender`, `linenumber`, `receivedate` (no documented time zone; kept as written); `totalcount`),
read in time windows (workers/providers/inbox.py; no source says the ids grow). `sms/receive/last` is not
used: it returns 100 unread messages and no source says whether reading marks them read.

Options (environment SMSDISPATCH_GHASEDAK_<OPTION>), each for a fact the sources leave open:
  BULK_MODE        "bulk" (default) or "simple": how a batch with different texts goes out. The sources
                   disagree on `sms/send/bulk` (providers.md §0.2); without a sender line "simple" is used.
  RECONCILE_GRACE  seconds (default 60) after `since` before a checkid answered -1 counts as NOT_SENT.
  INBOX_ISREAD     `isread` values to read, default "0,1" (a reply read in the panel is still an opt-out).
  INBOX_OVERLAP    seconds each window reaches back before the previous one ended, default 300.
  INBOX_LOOKBACK   seconds the first pass reaches back, default 2592000 (30 days).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from datetime import datetime
from functools import partial
from typing import Any
from urllib.parse import quote

import requests

from workers.errors import (
    AccountError,
    AmbiguousSendError,
    ConfigurationError,
    ProviderError,
    RecipientRefusedError,
    RequestError,
    TransientError,
)
from workers.providers import phones
from workers.providers.base import Capabilities, Envelope, ProviderClient, Reply, Request
from workers.providers.ghasedak_reports import (  # noqa: F401 (DELIVERY: read by provider_codes)
    DELIVERY,
    UNKNOWN_ID,
    delivery,
    parse_lookup_items,
    parse_status_items,
)
from workers.providers.inbox import Page, format_inbox_cursor, parse_inbox_cursor, read_window  # noqa: F401
from workers.providers.transport import chunks, inbound_messages
from workers.providers.values import field, settled, to_int
from workers.providers.values import rows as dict_rows
from workers.settings import ProviderSettings
from workers.status import (
    Balance,
    DeliveryStatus,
    InboundMessage,
    Message,
    SendBatch,
    SendOutcome,
    SendResult,
    StatusResult,
)

log = logging.getLogger("workers.providers.ghasedak")

OK = 200
# result.code -> error class (None = success). Source: seed 004 error table; classes from providers.md §2A.
# RecipientRefusedError marks the per-recipient codes; 21 is ambiguous on a send and transient elsewhere.
# fmt: off
CALL_CODES: dict[int, type[ProviderError] | None] = {
    OK: None, 21: AmbiguousSendError,  # 21: connection to the operator lost
    # 1 bad key or user, 6 account inactive, 7 line not accessible, 9 not enough credit, 11 IP not allowed,
    # 24 not allowed on the free plan, 419 undocumented for v2 (INFERENCE in §2A)
    **dict.fromkeys((1, 6, 7, 9, 11, 24, 401, 419), AccountError),
    **dict.fromkeys((2, 3, 4, 400, 404), RequestError),  # empty lists, over 100, lengths differ
    5: TransientError, 10: TransientError,  # cannot fetch new messages; system error, try again
    8: RecipientRefusedError, 20: RecipientRefusedError,  # invalid receptor; receptor filtered
}
# The unified state a refused recipient gets; providers.md §1 counts "filtered" as failed.
REFUSED_STATUS: dict[int, DeliveryStatus] = {8: DeliveryStatus.FAILED, 20: DeliveryStatus.FAILED}
# fmt: on
BULK_MODES = ("bulk", "simple")
INBOX_PAGE = 200  # sms/receive/paging `offset` maximum (seed 004)
INBOX_MAX_PAGES = 100  # per `isread` value and window: 20,000 replies
INBOX_PATH = "sms/receive/paging"
local_number = phones.national  # the spelling every seed 004 sample uses


def error_class(code: int | str | None, *, sending: bool) -> type[ProviderError] | None:
    """The error a call-level code means (CALL_CODES through the base's algorithm)."""
    number = to_int(code)
    return GhasedakClient.call_class(number if number is not None else str(code), sending=sending)


def parse_envelope(body: Any) -> tuple[int | str, str, Any] | None:
    """(code, message, items), or None when the body is not Ghasedak's envelope at all."""
    result = body.get("result") if isinstance(body, dict) else None
    if not isinstance(result, dict) or "code" not in result:
        return None
    code: int | str = to_int(result["code"]) if to_int(result["code"]) is not None else str(result["code"])
    return code, str(result.get("message") or ""), body.get("items")


def build_pair_form(messages: Sequence[Message], sender: str) -> dict[str, str]:
    form = {
        "message": messages[0].text,
        "receptor": ",".join(local_number(m.phone) for m in messages),
        "checkid": ",".join(m.client_ref for m in messages),
    }
    return {**form, "linenumber": sender} if sender else form


def build_bulk_form(messages: Sequence[Message], sender: str) -> dict[str, str]:
    return {
        "message": ",".join(quote(m.text, safe="") for m in messages),  # commas inside texts become %2C
        "receptor": ",".join(local_number(m.phone) for m in messages),
        "linenumber": ",".join(sender for _ in messages),
        "checkid": ",".join(m.client_ref for m in messages),
    }


def parse_send_items(items: Any, messages: Sequence[Message]) -> list[SendResult] | None:
    """One ACCEPTED result per message, ids in receptor order; None when the ids cannot be matched safely."""
    if not isinstance(items, list) or len(items) != len(messages):
        return None
    ids = [id_text(i) for i in items]
    if None in ids:
        return None
    ok, accepted, pending = str(OK), SendOutcome.ACCEPTED, DeliveryStatus.PENDING
    return [SendResult(m.recipient_id, accepted, i, ok, pending) for m, i in zip(messages, ids, strict=True)]


def id_text(item: Any) -> str | None:
    """A message id as `str(to_int(item))` spells it (None: not a whole number), the usual JSON int or plain
    digit string without the round trip."""
    kind = type(item)
    if kind is str and item.isdigit() and item.isascii() and (item[0] != "0" or len(item) == 1):
        return item
    if kind is int:
        return str(item)
    number = to_int(item)
    return None if number is None else str(number)


def parse_balance(items: Any) -> Balance | None:
    amount = items.get("balance") if isinstance(items, dict) else None
    try:
        value = float(amount)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return None
    expire = items.get("expire")
    return Balance(value, "rial", None if expire in (None, "") else str(expire))


def build_inbox_form(line: str, isread: int, start: int, end: int, page: int) -> dict[str, str]:
    form = dict(linenumber=line, isread=isread, fromdate=start, todate=end, page=page, offset=INBOX_PAGE)
    return {k: str(v) for k, v in form.items()}


def parse_inbox_items(items: Any) -> list[InboundMessage]:
    """Seed 004 rows (messageid, message, sender, linenumber, receivedate) -> InboundMessage."""
    return inbound_messages("ghasedak", [inbound_row(r) for r in dict_rows(items)])


def inbound_row(row: Any, at: str = "receivedate") -> tuple[str, str, str, str | None]:
    """(messageid, sender, message, `at`) of an inbox row, keys read case-insensitively."""
    mid, when = field(row, "messageid"), field(row, at)
    return (
        "" if mid is None else str(mid),
        str(field(row, "sender") or ""),
        str(field(row, "message") or ""),
        (None if when is None else str(when)),
    )


def inbox_total(body: Any) -> int | None:
    """`totalcount` beside `items` in a paging reply (seed 004), when present."""
    return to_int(body.get("totalcount")) if isinstance(body, dict) else None


class GhasedakClient(ProviderClient):
    name = "ghasedak"
    capabilities = Capabilities(100, 100, personalised=True, reconcile="checkid", inbox=True, contacts=True)
    call_codes = CALL_CODES
    refused_status = REFUSED_STATUS
    default_url = "https://api.ghasedak.me/v2"
    credential_names = ("apikey",)
    option_names = ("bulk_mode", "reconcile_grace", "inbox_isread", "inbox_overlap", "inbox_lookback")

    def __init__(self, settings: ProviderSettings, session: requests.Session | None = None) -> None:
        super().__init__(settings, session)
        self.bulk_mode = self.choice_option("bulk_mode", BULK_MODES)
        self.reconcile_grace = self.number_option("reconcile_grace", "60")
        isread = [x.strip() for x in settings.option("inbox_isread", "0,1").split(",") if x.strip()]
        if not isread or any(x not in ("0", "1") for x in isread):
            raise ConfigurationError(f"{settings.env_name('inbox_isread')}: 0, 1 or 0,1")
        self.inbox_isread = tuple(dict.fromkeys(int(x) for x in isread))
        self.inbox_overlap = int(self.number_option("inbox_overlap", "300", whole=True))
        self.inbox_lookback = int(self.number_option("inbox_lookback", "2592000", whole=True))

    # ---- hooks of the base's send and reply algorithm ---------------------------------------------
    def send_checked(self, batch: SendBatch) -> list[SendResult]:
        sender = batch.sender or self.settings.sender
        if batch.single_text or (self.bulk_mode == "bulk" and sender):
            return self.send_call(self.build_send(batch), batch.messages)
        simple = [(Request("sms/send/simple", build_pair_form((m,), sender)), (m,)) for m in batch.messages]
        return self.send_in_turn(batch.messages, simple)

    def build_send(self, batch: SendBatch) -> Request:
        sender = batch.sender or self.settings.sender
        if batch.single_text:
            return Request("sms/send/pair", build_pair_form(batch.messages, sender))
        return Request("sms/send/bulk", build_bulk_form(batch.messages, sender))

    def parse_send(self, payload: Any, messages: Sequence[Message], reply: Reply) -> list[SendResult]:
        results = parse_send_items(payload, messages)
        if results is None:
            detail = f"{len(messages)} receptors but items {payload!r}"[:200]
            raise self.error(AmbiguousSendError, detail, code=OK)  # never guess which id is whose
        return results

    def envelope(self, reply: Reply) -> Envelope | None:
        found = parse_envelope(reply.body)
        return None if found is None else Envelope(*found)

    def auth_headers(self) -> Mapping[str, str]:
        return {"apikey": self.settings.secret("apikey")}

    def status(self, message_ids: Sequence[str]) -> list[StatusResult]:
        out: list[StatusResult] = []
        for part in chunks(list(message_ids), self.capabilities.max_status_batch):
            items = self._post("sms/status", {"id": ",".join(part), "type": "1"})
            out += parse_status_items(items, part)
        return out

    def reconcile(self, batch: SendBatch, since: datetime) -> list[SendResult]:
        grace_over = settled(since, self.reconcile_grace)
        out: list[SendResult] = []
        for part in chunks(list(batch.messages), self.capabilities.max_status_batch):
            items = self._post("sms/status", {"id": ",".join(m.client_ref for m in part), "type": "2"})
            out += parse_lookup_items(items, part, grace_over)
        return out

    def balance(self) -> Balance:
        items = self._post("account/info", {})
        balance = parse_balance(items)
        if balance is None:
            raise self.error(TransientError, f"account/info without a balance: {items!r}"[:200])
        return balance

    def inbox(self, cursor: str | None) -> tuple[list[InboundMessage], str]:
        """Replies on our line from the cursor's window (see the module docstring) to now."""
        line = self.settings.sender
        if not line:
            raise ConfigurationError(f"set {self.settings.env_name('sender')}: the inbox is read per line")
        readers = [partial(self._inbox_page, line, isread) for isread in self.inbox_isread]
        limits = dict(page_size=INBOX_PAGE, max_pages=INBOX_MAX_PAGES, provider=self.name)
        return read_window(
            cursor, readers, overlap=self.inbox_overlap, lookback=self.inbox_lookback, **limits
        )

    def _inbox_page(self, line: str, isread: int, start: int, end: int, page: int) -> Page:
        reply = self.request(Request(INBOX_PATH, build_inbox_form(line, isread, start, end, page)))
        return parse_inbox_items(self.unwrap(reply, sending=False, what=INBOX_PATH)), inbox_total(reply.body)

    def _post(self, path: str, form: Mapping[str, str]) -> Any:
        return self.read(Request(path, form)).payload
