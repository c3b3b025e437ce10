"""Ghasedak v2 REST client. Wire protocol: shared/providers.md, "Decisions" (Ghasedak) and §2A; seed 004.

Base https://api.ghasedak.me/v2, header `apikey`, POST form-urlencoded, envelope
{"result": {"code", "message"}, "items": ...}: success iff result.code == 200, read whatever the HTTP status.
One text to many goes to `sms/send/pair`; different texts to `sms/send/bulk` (parallel comma lists, each text
percent-encoded first as the official C# SDK does, so commas inside a text survive) or one `sms/send/simple` per
recipient. Our `Message.client_ref` is the `checkid`, which `sms/status type=2` looks up when a send was ambiguous.

Options (environment SMSDISPATCH_GHASEDAK_<OPTION>):
  BULK_MODE        "bulk" (default) or "simple": how a batch with different texts goes out. The sources disagree
                   on `sms/send/bulk` (providers.md §0.2), so "simple" is the fallback. Without a sender line
                   the simple path is used too, since bulk needs a `linenumber` list.
  RECONCILE_GRACE  seconds (default 60) after `since` before a checkid the provider answers -1 for counts as
                   NOT_SENT; no source says how soon a checkid becomes visible, so until then it stays UNKNOWN.

Inbox (opt-out replies): `sms/receive/paging` on our line (seed 004: `linenumber`, `isread` 0 unread / 1 read,
`fromdate`/`todate` in Unix seconds, `page` from 0, `offset` = rows per page, at most 200; rows `messageid`,
`message`, `sender`, `linenumber`, `receivedate`; `totalcount` beside `items`). `sms/receive/last` is not used:
it returns 100 unread messages and no source says whether reading marks them read, so an inbox with more than
100 unread ones could hide replies from it forever. The cursor is a time window of our own clock, not the
provider's ids (no source says they grow): `{"until": <Unix seconds read up to>, "seen": [ids of that pass]}`.
The next pass reads from `until - INBOX_OVERLAP` to now and skips the ids already seen, so a reply that
arrives late or under clock skew is still read, and one already handled is not handled again (an
`optouts remove` stays removed). Options:
  INBOX_ISREAD     which `isread` values to read, default "0,1" (both: a reply someone already read in the
                   panel is still an opt-out, and whether our own read marks it read is undocumented).
  INBOX_OVERLAP    seconds each window reaches back before the previous one ended, default 300.
  INBOX_LOOKBACK   seconds the first pass reaches back when there is no cursor yet, default 2592000 (30 days).
`receivedate` has no documented time zone (seed sample "2017-10-16T12:31:1"); it is kept as written.
"""

from __future__ import annotations

import json
import logging
import re
import time
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
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
from workers.providers.base import Capabilities, ProviderClient, Reply, chunks, inbound_messages
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
CALL_CODES: dict[int, type[ProviderError] | None] = {
    OK: None,
    1: AccountError,  # bad key or user
    2: RequestError,  # empty lists
    3: RequestError,  # list longer than 100
    4: RequestError,  # list lengths differ
    5: TransientError,  # cannot fetch new messages (receive)
    6: AccountError,  # account inactive
    7: AccountError,  # line not accessible
    8: RecipientRefusedError,  # invalid receptor
    9: AccountError,  # not enough credit
    10: TransientError,  # system error, try again
    11: AccountError,  # IP not allowed
    20: RecipientRefusedError,  # receptor filtered
    21: AmbiguousSendError,  # connection to the operator lost
    24: AccountError,  # not allowed on the free plan
    400: RequestError,
    401: AccountError,
    404: RequestError,
    419: AccountError,  # meaning undocumented for v2 (INFERENCE in §2A)
}
# The unified state a refused recipient gets; providers.md §1 counts "filtered" as failed.
REFUSED_STATUS: dict[int, DeliveryStatus] = {8: DeliveryStatus.FAILED, 20: DeliveryStatus.FAILED}
# sms/status `status` -> unified state. Source: seed 004 status table; mapping from providers.md §2A.
DELIVERY: dict[int, DeliveryStatus] = {
    0: DeliveryStatus.SENT_TO_OPERATOR,
    1: DeliveryStatus.DELIVERED,
    2: DeliveryStatus.UNDELIVERED,
    8: DeliveryStatus.SENT_TO_OPERATOR,
    16: DeliveryStatus.FAILED,
    27: DeliveryStatus.BLACKLISTED,
    -1: DeliveryStatus.UNKNOWN,  # bad or unknown id
}
UNKNOWN_ID = -1
BULK_MODES = ("bulk", "simple")
INBOX_PAGE = 200  # sms/receive/paging `offset` maximum (seed 004)
INBOX_MAX_PAGES = 100  # per `isread` value and window: 20,000 replies
INBOX_PATH = "sms/receive/paging"
_IR_MOBILE = re.compile(r"^(?:\+?98|0)?(9\d{9})$")


def to_int(value: Any) -> int | None:
    try:
        return int(str(value).strip())
    except (TypeError, ValueError):
        return None


def local_number(phone: str) -> str:
    """+989121234567 -> 09121234567, the spelling every seed 004 sample uses; anything else as given."""
    match = _IR_MOBILE.match(phone.strip())
    return "0" + match.group(1) if match else phone


def e164(number: str) -> str:
    match = _IR_MOBILE.match(str(number).strip())
    return "+98" + match.group(1) if match else str(number)


def error_class(code: int | str | None, *, sending: bool) -> type[ProviderError] | None:
    """The error a call-level code means; unknown codes may have gone out on a send, so they are ambiguous there."""
    number = to_int(code)
    if number is None or number not in CALL_CODES:
        return AmbiguousSendError if sending else TransientError
    cls = CALL_CODES[number]
    return TransientError if cls is AmbiguousSendError and not sending else cls


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
    if not isinstance(items, list) or len(items) != len(messages) or any(to_int(i) is None for i in items):
        return None
    return [
        SendResult(m.recipient_id, SendOutcome.ACCEPTED, str(to_int(i)), str(OK), DeliveryStatus.PENDING)
        for m, i in zip(messages, items, strict=True)
    ]


def _rows(items: Any) -> list[dict[str, Any]]:
    return [i for i in items if isinstance(i, dict)] if isinstance(items, list) else []


def _field(item: Mapping[str, Any], name: str) -> Any:
    """Keys are `messageid` in the seed and `messageId` in the C# model: read them case-insensitively."""
    return next((v for k, v in item.items() if str(k).lower() == name), None)


def delivery(code: Any) -> DeliveryStatus:
    number = to_int(code)
    if number is None or number not in DELIVERY:
        log.warning("ghasedak: unknown delivery code %r kept as unknown", code)
        return DeliveryStatus.UNKNOWN
    return DELIVERY[number]


def parse_status_items(items: Any, ids: Sequence[str]) -> list[StatusResult]:
    """One result per asked id, in order; an id the reply leaves out is UNKNOWN with no raw code. `cost`: the
    item's `price` (seed 004 status sample `"price": 155`, unit not stated; the credit is rial), as reported."""
    found = {str(to_int(_field(r, "messageid"))): _field(r, "status") for r in _rows(items)}
    prices = {str(to_int(_field(r, "messageid"))): to_int(_field(r, "price")) for r in _rows(items)}
    raws = [found.get(str(to_int(i))) if to_int(i) is not None else None for i in ids]
    unknown = DeliveryStatus.UNKNOWN
    return [
        StatusResult(
            i,
            unknown if raw is None else delivery(raw),
            None if raw is None else str(raw),
            prices.get(str(to_int(i))),
        )
        for i, raw in zip(ids, raws, strict=True)
    ]


def parse_lookup_items(items: Any, messages: Sequence[Message], grace_over: bool) -> list[SendResult]:
    """Reconciliation by checkid: found -> ACCEPTED, -1 -> NOT_SENT once the grace period is over."""
    rows = _rows(items)
    if any(_field(r, "checkid") is not None for r in rows):  # match by checkid when the reply carries it
        by_ref = {str(_field(r, "checkid")): r for r in rows}
        matched = [by_ref.get(m.client_ref) for m in messages]
    else:  # else items come in the order of the ids asked; a count mismatch proves nothing
        matched = list(rows) if len(rows) == len(messages) else [None] * len(messages)
    out = []
    for m, row in zip(messages, matched, strict=True):
        code, message_id = to_int(_field(row or {}, "status")), to_int(_field(row or {}, "messageid"))
        receptor, raw = _field(row or {}, "receptor"), None if code is None else str(code)
        if code == UNKNOWN_ID:
            outcome = SendOutcome.NOT_SENT if grace_over else SendOutcome.UNKNOWN
            out.append(SendResult(m.recipient_id, outcome, raw_code=raw, error="checkid unknown (-1)"))
        elif code is None or message_id is None or (receptor and e164(receptor) != e164(m.phone)):
            out.append(
                SendResult(m.recipient_id, SendOutcome.UNKNOWN, raw_code=raw, error="no matching item")
            )
        else:
            out.append(SendResult(m.recipient_id, SendOutcome.ACCEPTED, str(message_id), raw, delivery(code)))
    return out


def parse_balance(items: Any) -> Balance | None:
    amount = items.get("balance") if isinstance(items, dict) else None
    try:
        value = float(amount)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return None
    expire = items.get("expire")
    return Balance(value, "rial", None if expire in (None, "") else str(expire))


def build_inbox_form(line: str, isread: int, start: int, end: int, page: int) -> dict[str, str]:
    return {
        "linenumber": line,
        "isread": str(isread),
        "fromdate": str(start),
        "todate": str(end),
        "page": str(page),
        "offset": str(INBOX_PAGE),
    }


def parse_inbox_items(items: Any) -> list[InboundMessage]:
    """Seed 004 rows (messageid, message, sender, linenumber, receivedate) -> InboundMessage."""
    rows = [
        (
            str(_field(r, "messageid") if _field(r, "messageid") is not None else ""),
            str(_field(r, "sender") or ""),
            str(_field(r, "message") or ""),
            None if _field(r, "receivedate") is None else str(_field(r, "receivedate")),
        )
        for r in _rows(items)
    ]
    return inbound_messages("ghasedak", rows)


def inbox_total(body: Any) -> int | None:
    """`totalcount` beside `items` in a paging reply (seed 004), when present."""
    return to_int(body.get("totalcount")) if isinstance(body, dict) else None


def parse_inbox_cursor(cursor: str | None) -> tuple[int | None, frozenset[str]]:
    """(Unix seconds read up to, ids seen in that pass); (None, {}) for no or unreadable cursor."""
    try:
        data = json.loads(cursor or "")
        return int(data["until"]), frozenset(str(i) for i in data.get("seen") or ())
    except (ValueError, TypeError, KeyError, AttributeError):
        return None, frozenset()


def format_inbox_cursor(until: int, seen: set[str]) -> str:
    return json.dumps({"until": until, "seen": sorted(i for i in seen if i)}, separators=(",", ":"))


class GhasedakClient(ProviderClient):
    name = "ghasedak"
    capabilities = Capabilities(100, 100, personalised=True, reconcile="checkid", inbox=True)
    default_url = "https://api.ghasedak.me/v2"
    credential_names = ("apikey",)
    option_names = ("bulk_mode", "reconcile_grace", "inbox_isread", "inbox_overlap", "inbox_lookback")

    def __init__(self, settings: ProviderSettings, session: requests.Session | None = None) -> None:
        super().__init__(settings, session)
        self.bulk_mode = settings.option("bulk_mode", "bulk").lower()
        grace = settings.option("reconcile_grace", "60")
        self.reconcile_grace = float(grace) if re.fullmatch(r"\d+(?:\.\d+)?", grace) else -1.0
        if self.bulk_mode not in BULK_MODES:
            raise ConfigurationError(f"{settings.env_name('bulk_mode')}: choose bulk or simple")
        if self.reconcile_grace < 0:
            raise ConfigurationError(f"{settings.env_name('reconcile_grace')}: give seconds, like 60")
        isread = [x.strip() for x in settings.option("inbox_isread", "0,1").split(",") if x.strip()]
        if not isread or any(x not in ("0", "1") for x in isread):
            raise ConfigurationError(f"{settings.env_name('inbox_isread')}: 0, 1 or 0,1")
        self.inbox_isread = tuple(dict.fromkeys(int(x) for x in isread))
        seconds = {
            k: settings.option(k, d) for k, d in (("inbox_overlap", "300"), ("inbox_lookback", "2592000"))
        }
        for key, value in seconds.items():
            if not value.isdigit():
                raise ConfigurationError(f"{settings.env_name(key)}: give whole seconds, like 300")
        self.inbox_overlap, self.inbox_lookback = (
            int(seconds["inbox_overlap"]),
            int(seconds["inbox_lookback"]),
        )

    def send(self, batch: SendBatch) -> list[SendResult]:
        if not batch.messages or len(batch) > self.settings.batch:
            raise self.error(RequestError, f"batch of {len(batch)}; allowed 1..{self.settings.batch}")
        sender = batch.sender or self.settings.sender
        if batch.single_text:
            return self._send_call("sms/send/pair", build_pair_form(batch.messages, sender), batch.messages)
        if self.bulk_mode == "bulk" and sender:
            return self._send_call("sms/send/bulk", build_bulk_form(batch.messages, sender), batch.messages)
        return self._send_simple(batch.messages, sender)

    def status(self, message_ids: Sequence[str]) -> list[StatusResult]:
        out: list[StatusResult] = []
        for part in chunks(list(message_ids), self.capabilities.max_status_batch):
            items = self._post("sms/status", {"id": ",".join(part), "type": "1"})
            out += parse_status_items(items, part)
        return out

    def reconcile(self, batch: SendBatch, since: datetime) -> list[SendResult]:
        since = since if since.tzinfo else since.replace(tzinfo=UTC)
        grace_over = (datetime.now(UTC) - since).total_seconds() >= self.reconcile_grace
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
        until, seen = parse_inbox_cursor(cursor)
        now = int(time.time())
        start = now - self.inbox_lookback if until is None else min(until - self.inbox_overlap, now)
        out: list[InboundMessage] = []
        ids: set[str] = set()
        complete = True
        for isread in self.inbox_isread:
            for page in range(INBOX_MAX_PAGES):
                form = build_inbox_form(line, isread, start, now, page)
                reply = self.call(
                    "POST", INBOX_PATH, data=form, headers={"apikey": self.settings.secret("apikey")}
                )
                rows = parse_inbox_items(self.unwrap(reply, sending=False, what=INBOX_PATH))
                out += [
                    m
                    for m in rows
                    if not m.message_id or (m.message_id not in seen and m.message_id not in ids)
                ]
                ids.update(m.message_id for m in rows)
                total = inbox_total(reply.body)
                if len(rows) < INBOX_PAGE or (total is not None and (page + 1) * INBOX_PAGE >= total):
                    break
            else:
                complete = False
        if not complete:  # keep the old window: the next pass reads it again (re-adding is harmless)
            log.warning(
                "ghasedak: over %d replies in one inbox window; cursor kept", INBOX_MAX_PAGES * INBOX_PAGE
            )
            return out, cursor or ""
        return out, format_inbox_cursor(now, ids)

    # ---- wire ---------------------------------------------------------------------------------
    def _post(self, path: str, form: Mapping[str, str], *, sending: bool = False) -> Any:
        headers = {"apikey": self.settings.secret("apikey")}
        reply = self.call("POST", path, sending=sending, data=form, headers=headers)
        return self.unwrap(reply, sending=sending, what=path)

    def unwrap(self, reply: Reply, *, sending: bool, what: str) -> Any:
        """The envelope's items on code 200; otherwise the error its code means (see CALL_CODES)."""
        envelope = parse_envelope(reply.body)
        if envelope is None:
            if 200 <= reply.status < 300:  # a 2xx we cannot read may still mean the send went out
                cls = AmbiguousSendError if sending else TransientError
                raise self.error(cls, f"unreadable reply on {what}", code=f"HTTP {reply.status}", reply=reply)
            raise self.http_error(reply, sending=sending, what=what)
        code, message, items = envelope
        cls = error_class(code, sending=sending)
        if cls is None:
            return items
        if to_int(code) not in CALL_CODES:
            log.warning("ghasedak: unknown result code %r on %s (HTTP %s)", code, what, reply.status)
        raise self.error(cls, f"{what}: {message or 'no message'}", code=code, reply=reply)

    def _send_call(self, path: str, form: Mapping[str, str], messages: Sequence[Message]) -> list[SendResult]:
        try:
            items = self._post(path, form, sending=True)
        except RecipientRefusedError as exc:
            if len(messages) > 1:  # the reply does not say which number: the send operation splits the chunk
                raise
            status = REFUSED_STATUS.get(to_int(exc.code) or 0, DeliveryStatus.FAILED)
            first = messages[0]
            return [SendResult(first.recipient_id, SendOutcome.REFUSED, None, exc.code, status, exc.message)]
        results = parse_send_items(items, messages)
        if results is None:
            detail = f"{path}: {len(messages)} receptors but items {items!r}"[:200]
            raise self.error(AmbiguousSendError, detail, code=OK)  # never guess which id is whose
        return results

    def _send_simple(self, messages: Sequence[Message], sender: str) -> list[SendResult]:
        results: list[SendResult] = []
        for index, message in enumerate(messages):
            try:
                results += self._send_call("sms/send/simple", build_pair_form((message,), sender), (message,))
            except ProviderError as exc:
                if not results:  # nothing went out yet: the whole batch takes the error
                    raise
                # Earlier ones were accepted, so report them: this one is UNKNOWN only if its call was
                # ambiguous, and the ones never tried are NOT_SENT (the send operation queues them again).
                log.warning("ghasedak: simple send stopped after %d of %d: %s", index, len(messages), exc)
                ambiguous = isinstance(exc, AmbiguousSendError)
                for n, m in enumerate(messages[index:]):
                    outcome = SendOutcome.UNKNOWN if ambiguous and n == 0 else SendOutcome.NOT_SENT
                    results.append(SendResult(m.recipient_id, outcome, error=exc.describe()))
                break
        return results
