"""Media Payamak (Niazpardaz platform) REST v2 client.

Wire protocol: shared/providers.md, "Decisions" (Media Payamak) and §3B; seed 002 (method set, codes).
POST JSON to `{base}/{Method}`; auth is the `X-API-Key` header when an API key is set, else `userName`
and `password` in the body (seed 002's form). Envelope `{"success","errorMessage","result":{"resultCode",...}}`.

Settings (SMSDISPATCH_MEDIAPAYAMAK_*): APIKEY, or USERNAME and PASSWORD; URL, SENDER, BATCH (max 100, the
Decisions' cap: seed 002 says 100, the SDK 1000), and options for facts the docs leave open:
  DATE_FORMAT      strftime format of `GetMessagesByDateRange` fromDate/toDate, Tehran time (UTC+03:30); default
                   ISO-8601 "%Y-%m-%dT%H:%M:%S" (no source shows the format the server expects).
  RECONCILE_GRACE  seconds after `since` before a message missing from the sent box is NOT_SENT (default 60).
  INDEX            "row" (default) or "page": what `index` counts in paged calls. Seed 002 calls it the row
                   index, from 1 (page 2 of 100 starts at 101); the official SDK names it pageIndex.
  INBOX_ORDER      "any" (default) or "newest": how `GetMessages` lists the inbox, which no source says. "any"
                   reads every page each pass; "newest" stops at the first page reaching a message already read.
  DELIVERY_FIELD   the key of `GetDelivery`'s result that holds the delivery code (default "deliveryStatus", the
                   name GetBatchDelivery gives the same codes): seed 002 gives the method a bare int return value,
                   and no source shows its REST v2 result.
Inbox: `GetMessages {messageType: 1, fromNumbers: our line, index, count <= 1000}` (seed 002; rows MessageInfo:
messageId, sender, content, actionDateTime), cursor = highest messageId handled (assumes ids grow; undocumented).
Numbers go out as 09XXXXXXXXX (SDK samples); a recipient's id is "{batchSmsId}:{number}", polled with
`GetBatchDelivery`; one `SendBatchSms` per distinct text. Reconciliation matches number and text in the sent box
(`GetMessagesByDateRange`, type 2). Its rows are read as the official PHP SDK's `MessageInfo`
(NiazpardazSms/niazpardaz-sms-php, src/Models/MessageInfo.php: messageId, content, actionDateTime, sender,
receiver, ...; no batchSmsId), which seed 002 names without giving its fields: a recipient found there gets the
row's `messageId` as its id, polled one by one with seed 002's `GetDelivery {recId}` (the SDK has no GetDelivery;
we take messageId to be the recId seed 002 means by "the id of the sent SMS", the only per-message id a row has).
Rows we cannot read (no single receiver, no content) are no evidence of "not sent" (workers/providers/sentbox.py).
"""

from __future__ import annotations

import logging
from collections.abc import Collection, Mapping, Sequence
from dataclasses import replace
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

from workers.errors import (
    AccountError,
    AmbiguousSendError,
    ConfigurationError,
    MissingCredential,
    RecipientRefusedError,
    RequestError,
    TransientError,
)
from workers.providers import phones
from workers.providers.base import Capabilities, Envelope, ErrorTable, ProviderClient, Reply, Request
from workers.providers.inbox import inbound_rows, newer_than, read_newer  # noqa: F401 (newer_than)
from workers.providers.mediapayamak_delivery import (  # noqa: F401 (the tables, read by provider_codes)
    DELIVERY,
    DELIVERY_CALL_CODES,
    MAX_PAGES,
    WHOLE_BATCH,
    DeliveryReports,
    delivery_status,
    parse_delivery,
    rec_id,
    split_id,
)
from workers.providers.sentbox import loose_text, match_sent_box, read_sent_box
from workers.providers.values import settled, to_int
from workers.status import (
    Balance,
    DeliveryStatus,
    InboundMessage,
    Message,
    SendBatch,
    SendOutcome,
    SendResult,
)

log = logging.getLogger("workers.providers.mediapayamak")

Keep = Collection[int]

# fmt: off
# SendResultCode of SendBatchSms (§3B table, N1 SendResultCode.php; 0..10 also in seed 002).
SEND_CODES: ErrorTable = {
    0: None,
    **dict.fromkeys((1, 2, 3, 4, 6, 8, 10, 14, 19, 20, 25), AccountError),
    **dict.fromkeys((5, 7, 11, 12, 13, 17, 18, 21), RequestError),
    **dict.fromkeys((9, 22, 23, 26), TransientError),
    15: AmbiguousSendError,  # same text to the same number within a window: it may already have gone out
    16: RecipientRefusedError,  # recipient empty, wrong or blacklisted (PER-RCPT)
    24: AmbiguousSendError,  # identical request within seconds: an earlier copy may have been taken
}
# Seconds to wait, for any method (send codes are positive, read codes negative, so they never collide):
# 22/-6 IP blocked (long backoff), 23 enqueue failed ("retry in minutes"), -5 "ask a minute after sending".
RETRY_AFTER: dict[int, float] = {22: 300.0, -6: 300.0, 23: 120.0, -5: 60.0}
# GetCredit result codes (N1 CreditResultCode.php; -1/-2 also seed 002), used for GetMessages* too (assumed:
# the SDK gives those no table). 21 "invalid parameters" is borrowed from SendResultCode (assumption).
READ_CODES: ErrorTable = {0: None, **dict.fromkeys((-1, -2, -7), AccountError), -6: TransientError, 21: RequestError}
# fmt: on
TEHRAN = timezone(timedelta(hours=3, minutes=30), "Asia/Tehran")  # fixed: Iran dropped DST in 2022
DEFAULT_DATE_FORMAT = "%Y-%m-%dT%H:%M:%S"
CLOCK_SLACK = timedelta(seconds=60)  # widen the sent-box window for clock skew between us and the provider
PAGE_MESSAGES = 1000
# The sent box: MessagesResult.messages, rows MessageInfo (official PHP SDK, src/Models/MessageInfo.php).
SENT_BOX = ("messages", "receiver", "content", "messageId")
INDEX, ORDER = ("row", "page"), ("any", "newest")  # INDEX and INBOX_ORDER options, default first


provider_number = phones.national  # the national form the official SDK's samples use
number_key = phones.key  # the last ten digits, so 0912..., 98912... and +98912... compare equal


def parse_envelope(body: Any) -> tuple[int | None, dict[str, Any]] | None:
    """(resultCode, result) of an envelope, the code None when not a number; None when the body is not one."""
    result = body.get("result") if isinstance(body, dict) else None
    if not isinstance(result, dict) or "resultCode" not in result:
        return None
    return to_int(result["resultCode"]), result


def build_send_body(numbers: Sequence[str], text: str, sender: str) -> dict[str, Any]:
    # toNumbers is a comma list, as the official SDK joins them
    return dict(
        fromNumber=sender, toNumbers=",".join(numbers), messageContent=text, isFlash=False, sendDelay=0
    )


def build_date_range_body(sender: str, start: datetime, end: datetime, fmt: str) -> dict[str, Any]:
    """messageType 2 = sent messages (seed 002: 1 = received); dates in Tehran time, `fmt` (DATE_FORMAT)."""
    tehran = (start.astimezone(TEHRAN).strftime(fmt), end.astimezone(TEHRAN).strftime(fmt))
    return {"messageType": 2, "fromNumbers": sender, "fromDate": tehran[0], "toDate": tehran[1]}


comparable = loose_text


def parse_sent_box(result: Any, batch: SendBatch, grace_over: bool) -> list[SendResult]:
    """`GetMessagesByDateRange`'s result (`messages`: MessageInfo rows) -> one result per message
    (workers/providers/sentbox.py); a found message's id is its row's messageId, a GetDelivery recId."""
    box = read_sent_box(
        "mediapayamak", "GetMessagesByDateRange", result, SENT_BOX, message_id=lambda v: _text(rec_id(v))
    )
    return match_sent_box(batch.messages, box, settled=grace_over, text_key=comparable)


def _text(value: int | None) -> str | None:
    return None if value is None else str(value)


def build_inbox_body(sender: str, index: int) -> dict[str, Any]:
    return {"messageType": 1, "fromNumbers": sender, "index": index, "count": PAGE_MESSAGES}  # 1 = received


def parse_inbox(messages: Sequence[dict[str, Any]]) -> list[InboundMessage]:
    """MessageInfo rows (messageId, sender, content, actionDateTime) -> InboundMessage."""
    return inbound_rows("mediapayamak", messages, ("messageId", "sender", "content", "actionDateTime"))


class MediaPayamakClient(DeliveryReports, ProviderClient):
    name = "mediapayamak"
    capabilities = Capabilities(max_batch=100, max_status_batch=100, reconcile="sent-box", inbox=True)
    call_codes = SEND_CODES
    refused_status = {16: DeliveryStatus.FAILED}
    retry_codes = RETRY_AFTER
    default_url = "https://login.niazpardaz.ir/api/v2/RestWebApi"
    credential_names = ("apikey", "username", "password")
    option_names = ("date_format", "reconcile_grace", "index", "inbox_order", "delivery_field")

    def check_credentials(self) -> None:
        s = self.settings
        if not s.secret("apikey") and not (s.secret("username") and s.secret("password")):
            names = [s.env_name(k) for k in self.credential_names]
            raise MissingCredential(self.name, tuple(names), f"{names[0]}, or both {names[1]} and {names[2]}")
        self.index = self.choice_option("index", INDEX)
        self.inbox_order = self.choice_option("inbox_order", ORDER)
        self.grace = self.number_option("reconcile_grace", "60", whole=True)
        self.delivery_field = (
            self.settings.option("delivery_field", "deliveryStatus").strip() or "deliveryStatus"
        )

    def send_checked(self, batch: SendBatch) -> list[SendResult]:
        """One SendBatchSms per distinct text, in order (the base's `send_in_turn`)."""
        groups: dict[str, list[Message]] = {}
        for m in batch.messages:
            groups.setdefault(m.text, []).append(m)
        sender = batch.sender or self.settings.sender
        numbers = {text: [provider_number(m.phone) for m in group] for text, group in groups.items()}
        calls = [
            (Request("SendBatchSms", json_body=build_send_body(numbers[t], t, sender)), groups[t])
            for t in groups
        ]
        return self.send_in_turn(batch.messages, calls)

    def parse_send(self, payload: Any, messages: Sequence[Message], reply: Reply) -> list[SendResult]:
        batch_id = str(payload.get("batchSmsId") or "")
        if batch_id in ("", "0"):  # "ok" without an id: it may have gone out, and we could not track it
            raise self.error(AmbiguousSendError, "ok reply without a batchSmsId", code=0, reply=reply)
        return [
            SendResult(m.recipient_id, SendOutcome.ACCEPTED, f"{batch_id}:{provider_number(m.phone)}", "0")
            for m in messages
        ]

    def envelope(self, reply: Reply) -> Envelope | None:
        parsed = parse_envelope(reply.body)
        if parsed is None:
            return None
        code, result = parsed  # a code that is not a number stays raw: an unknown code
        return Envelope(
            result["resultCode"] if code is None else code, str(reply.body.get("errorMessage") or ""), result
        )

    def describe(self, envelope: Envelope, what: str) -> str:
        return envelope.message or f"{what} failed"

    def auth_headers(self) -> Mapping[str, str] | None:
        key = self.settings.secret("apikey")
        return {"X-API-Key": key} if key else None

    def request(self, request: Request, *, sending: bool = False) -> Reply:
        if not self.settings.secret("apikey"):  # seed 002's form: credentials in the body
            creds = dict(userName=self.settings.secret("username"), password=self.settings.secret("password"))
            request = replace(request, json_body={**creds, **(request.json_body or {})})
        return super().request(request, sending=sending)

    def reconcile(self, batch: SendBatch, since: datetime) -> list[SendResult]:
        now, since = datetime.now(UTC), since if since.tzinfo else since.replace(tzinfo=UTC)
        fmt = self.settings.option("date_format", DEFAULT_DATE_FORMAT)
        sender = batch.sender or self.settings.sender
        body = build_date_range_body(sender, since - CLOCK_SLACK, now + CLOCK_SLACK, fmt)
        _, result = self._post("GetMessagesByDateRange", body, READ_CODES)
        return parse_sent_box(result, batch, settled(since, self.grace))

    def balance(self) -> Balance:
        _, result = self._post("GetCredit", {}, READ_CODES)
        return Balance(float(result.get("credit") or 0), unit="sms")  # seed 002: credit counted in SMS

    def inbox(self, cursor: str | None) -> tuple[list[InboundMessage], str]:
        if not self.settings.sender:
            raise ConfigurationError(f"set {self.settings.env_name('sender')}: the inbox is read per line")
        limits = dict(page_size=PAGE_MESSAGES, max_pages=MAX_PAGES, provider=self.name)
        return read_newer(cursor, [self._inbox_page], newest_first=self.inbox_order == "newest", **limits)

    def _inbox_page(self, page: int) -> tuple[list[InboundMessage], int]:
        body = build_inbox_body(self.settings.sender, self._index(page, PAGE_MESSAGES))
        rows = list(self._post("GetMessages", body, READ_CODES)[1].get("messages") or [])
        return parse_inbox(rows), len(rows)

    def _index(self, page: int, size: int) -> int:  # INDEX: rows from 1, or pages from 1
        return page + 1 if self.index == "page" else page * size + 1

    def _post(
        self, method: str, body: dict[str, Any], table: ErrorTable, *, keep: Keep = ()
    ) -> tuple[Any, Any]:
        """POST one read method: (code, result); raises by `table` unless the code is success or in `keep`."""
        envelope = self.read(Request(method, json_body=body), keep=keep, table=table)
        return envelope.code, envelope.payload
