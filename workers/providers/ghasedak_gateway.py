"""Ghasedak gateway REST v1 client ("ghasedak-gateway"), the API new Ghasedak accounts get.

Wire protocol: shared/providers.md §2B (no seed). Base `https://gateway.ghasedak.me/rest/api/v1/WebService`,
header `ApiKey`, JSON bodies for POST, query strings for GET. Envelope `{isSuccess, statusCode, message, data}`
whose key case varies between endpoints (camelCase for sends, PascalCase in status and account samples), so
every key is read case-insensitively. Errors come as HTTP 400 with `isSuccess: false`; an envelope is a
success when `isSuccess` is true and `statusCode` is 200 (the PHP SDK also treats `data: null` as an error).
Numbers go out as 09XXXXXXXXX (doc samples). Each message's `client_ref` is its `clientReferenceId`, looked up by
`CheckSmsStatus Type=2` after an interrupted send, and after statusCode 451 (DuplicateRequest: "already
accepted"). A send reply's per-message `cost` is kept in `SendResult.cost` (unit: the account's credit).

Options (SMSDISPATCH_GHASEDAK_GATEWAY_<OPTION>), each for a fact §2B leaves open:
  SEND_MODE        "pair" (default): one `SendPairToPairSMS` a batch, a clientReferenceId per message. "bulk": one
                   `SendBulkSMS` a one-text batch, with ONE clientReferenceId (the first message's; the others are
                   matched by receptor in a Type=2 lookup, whose completeness is undocumented). Both bulk replies
                   are read: docs `{items: [{receptor, messageId, cost}]}`, C# SDK `{cost, receptors: [...]}`.
  STATUS_ENUM      "docs" (default) or "sdk": which of §2B's delivery enums `status` carries (UNRESOLVED);
                   raw codes are kept in `raw_code` and logged either way.
  IDS_FORMAT       "csv" (default; docs `Ids=a,b`) or "repeat" (Python SDK `Ids=a&Ids=b`).
  UDH              "" (default: not sent), "true" or "false"; meaningful on 9000 lines only.
  RECONCILE_GRACE  seconds (default 60) before an unlisted clientReferenceId counts as NOT_SENT.
  CREDIT_UNIT      unit of the account credit and of `cost` (default "rial"; §2B gives none).
  INBOX_ISREAD     `IsRead` values (default "false,true"); INBOX_PAGE_SIZE (100), INBOX_PAGE_BASE (first PageIndex,
                   1); INBOX_FIELDS: row keys of id, sender, text, time (default "messageId,sender,message,
                   receiveDate": §2B shows no row). The inbox cursor, the highest id handled, assumes ids grow.
statusCode: see CALL_CODES. No rate limit is documented.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from datetime import datetime
from functools import partial
from typing import Any

import requests

from workers.errors import (
    AccountError,
    AmbiguousSendError,
    ConfigurationError,
    ProviderError,
    RequestError,
    TransientError,
)
from workers.providers import phones
from workers.providers.base import Capabilities, Envelope, ProviderClient, Reply, Request
from workers.providers.ghasedak_gateway_reports import (  # noqa: F401 (tables: read by provider_codes)
    DOCS_DELIVERY,
    ENUMS,
    SDK_DELIVERY,
    delivery,
    parse_lookup_data,
    parse_status_data,
    status_rows,
)
from workers.providers.inbox import inbound_rows, read_newer
from workers.providers.transport import chunks
from workers.providers.values import field, settled, split, to_float, to_int
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

log = logging.getLogger("workers.providers.ghasedak_gateway")

OK, DUPLICATE = 200, 451
_S = DeliveryStatus
# fmt: off
# statusCode -> error class (§2B, smsit's map): 418 no credit, 429 MissedParams is a request error (not a rate
# limit); 402/500 transient (a resend carries the same clientReferenceId, refused as 451 if the first was taken).
CALL_CODES: dict[int | str, type[ProviderError] | None] = {
    OK: None,
    **dict.fromkeys((400, 413, 420, 422, 428, 429), RequestError),
    **dict.fromkeys((401, 406, 412, 416, 418, 419, 426), AccountError),
    **dict.fromkeys((402, 500), TransientError),
    DUPLICATE: AmbiguousSendError,  # "already accepted": looked up by clientReferenceId
}
# fmt: on
MAX_IDS, MAX_INBOX_PAGES = 100, 100
OPTIONS = ("send_mode", "status_enum", "ids_format", "udh", "reconcile_grace", "credit_unit", "inbox_isread")
OPTIONS += ("inbox_page_size", "inbox_page_base", "inbox_fields")
national = phones.national


def parse_envelope(body: Any) -> tuple[int | str, str, Any] | None:
    """(code, message, data) of an envelope, keys read case-insensitively; None when the body is not one.
    The code is `statusCode`, or "isSuccess=false" when a reply says 200 but not success."""
    if not isinstance(body, dict) or (field(body, "isSuccess") is None and field(body, "statusCode") is None):
        return None
    raw, success = field(body, "statusCode"), field(body, "isSuccess")
    code: int | str = to_int(raw) if to_int(raw) is not None else str(raw)
    if code == OK and success is False:
        code = "isSuccess=false"
    return code, str(field(body, "message") or ""), field(body, "data")


def build_pair_body(messages: Sequence[Message], line: str, udh: str) -> dict[str, Any]:
    items = [
        dict(lineNumber=line, receptor=national(m.phone), message=m.text, clientReferenceId=m.client_ref)
        for m in messages
    ]
    return {"items": items, **({"udh": udh == "true"} if udh else {})}


def build_bulk_body(messages: Sequence[Message], line: str, udh: str) -> dict[str, Any]:
    first, receptors = messages[0], [national(m.phone) for m in messages]
    body = dict(receptors=receptors, message=first.text, lineNumber=line, clientReferenceId=first.client_ref)
    return {**body, **({"udh": udh == "true"} if udh else {})}


def send_rows(data: Any) -> list[dict[str, Any]]:
    """The per-receptor rows of a send reply: `items` (docs, pair-to-pair) or `receptors` (C# SDK model)."""
    items = field(data, "items")
    return dict_rows(items if isinstance(items, list) else field(data, "receptors"))


def parse_send_data(data: Any, messages: Sequence[Message]) -> list[SendResult]:
    """Rows matched to messages by receptor (never by position): ACCEPTED with messageId and cost; a
    message without a row or without an id is UNKNOWN (reconciliation asks by clientReferenceId)."""
    by_key: dict[str, list[dict[str, Any]]] = {}
    for row in send_rows(data):
        by_key.setdefault(phones.key(field(row, "receptor")), []).append(row)
    out = []
    for m in messages:
        found = by_key.get(phones.key(m.phone))
        row = found.pop(0) if found else {}
        mid, cost = field(row, "messageId"), to_float(field(row, "cost"))
        if mid in (None, "", 0, "0"):
            out.append(SendResult(m.recipient_id, SendOutcome.UNKNOWN, raw_code="200", error="no messageId"))
        else:
            out.append(
                SendResult(m.recipient_id, SendOutcome.ACCEPTED, str(mid), "200", _S.PENDING, cost=cost)
            )
    return out


def parse_account(data: Any, unit: str) -> Balance | None:
    """`{credit, expireDate, plan}` (any key case) -> Balance; None without a numeric credit."""
    credit, expire = to_float(field(data, "credit")), field(data, "expireDate")
    return None if credit is None else Balance(credit, unit, None if expire in (None, "") else str(expire))


class GhasedakGatewayClient(ProviderClient):
    name = "ghasedak-gateway"
    capabilities = Capabilities(100, MAX_IDS, personalised=True, reconcile="checkid", inbox=True)
    call_codes = CALL_CODES
    default_url = "https://gateway.ghasedak.me/rest/api/v1/WebService"
    credential_names = ("apikey",)
    option_names = OPTIONS

    def __init__(self, settings: ProviderSettings, session: requests.Session | None = None) -> None:
        super().__init__(settings, session)
        self.send_mode = self.choice_option("send_mode", ("pair", "bulk"))
        self.enum = self.choice_option("status_enum", ("docs", "sdk"))
        self.ids_format = self.choice_option("ids_format", ("csv", "repeat"))
        self.udh = self.choice_option("udh", ("", "true", "false"))
        self.grace = self.number_option("reconcile_grace", "60")
        self.unit = settings.option("credit_unit", "rial")
        self.isread = [v for v in split(settings.option("inbox_isread", "false,true")) if v]
        self.page_size = int(self.number_option("inbox_page_size", "100", whole=True)) or 100
        self.page_base = int(self.choice_option("inbox_page_base", ("1", "0")))
        keys = split(settings.option("inbox_fields", "messageId,sender,message,receiveDate"))
        if len(keys) != 4 or not all(keys):
            raise ConfigurationError(f"{settings.env_name('inbox_fields')}: four keys, id,sender,text,time")
        self.inbox_keys = (keys[0], keys[1], keys[2], keys[3])  # id, sender, text, time

    def build_send(self, batch: SendBatch) -> Request:
        line = batch.sender or self.settings.sender
        if not line:
            raise ConfigurationError(
                f"set {self.settings.env_name('sender')}: a line, or fastest/cheapest/priority"
            )
        if self.send_mode == "bulk" and batch.single_text:
            return Request("SendBulkSMS", json_body=build_bulk_body(batch.messages, line, self.udh))
        return Request("SendPairToPairSMS", json_body=build_pair_body(batch.messages, line, self.udh))

    def parse_send(self, payload: Any, messages: Sequence[Message], reply: Reply) -> list[SendResult]:
        return parse_send_data(payload, messages)

    def send_call(self, request: Request, messages: Sequence[Message]) -> list[SendResult]:
        """A 451 DuplicateRequest means the gateway already has this clientReferenceId: look it up."""
        try:
            return super().send_call(request, messages)
        except AmbiguousSendError as exc:
            if exc.code != str(DUPLICATE):
                raise
            log.info("ghasedak-gateway: 451 duplicate request; looking the messages up by clientReferenceId")
            return self._lookup(messages, grace_over=False)

    def envelope(self, reply: Reply) -> Envelope | None:
        found = parse_envelope(reply.body)
        return None if found is None else Envelope(*found)

    def auth_headers(self) -> Mapping[str, str]:
        return {"ApiKey": self.settings.secret("apikey")}

    def status(self, message_ids: Sequence[str]) -> list[StatusResult]:
        out: list[StatusResult] = []
        for part in chunks([str(i) for i in message_ids], MAX_IDS):
            out += parse_status_data(self._check(part, "1"), part, self.enum)
        return out

    def reconcile(self, batch: SendBatch, since: datetime) -> list[SendResult]:
        return self._lookup(batch.messages, grace_over=settled(since, self.grace))

    def balance(self) -> Balance:
        data = self.read(Request("GetAccountInformation", method="GET")).payload
        balance = parse_account(data, self.unit)
        if balance is None:
            raise self.error(TransientError, f"GetAccountInformation without a credit: {data!r}"[:200])
        return balance

    def inbox(self, cursor: str | None) -> tuple[list[InboundMessage], str]:
        """Received messages above the cursor (highest id handled), for each INBOX_ISREAD value."""
        line = self.settings.sender
        if not line:
            raise ConfigurationError(f"set {self.settings.env_name('sender')}: the inbox is read per line")
        readers = [partial(self._inbox_page, line, isread) for isread in self.isread]
        limits = dict(page_size=self.page_size, max_pages=MAX_INBOX_PAGES, provider=self.name)
        return read_newer(cursor, readers, newest_first=False, **limits)

    def _inbox_page(self, line: str, isread: str, n: int) -> tuple[list[InboundMessage], int]:
        query = dict(LineNumber=line, IsRead=isread, PageIndex=n + self.page_base, PageSize=self.page_size)
        rows = status_rows(self.read(Request("GetReceivedSmsesPaging", params=query, method="GET")).payload)
        return inbound_rows(self.name, rows, self.inbox_keys), len(rows)

    def _check(self, ids: Sequence[str], kind: str) -> Any:
        query = {"Ids": ",".join(ids) if self.ids_format == "csv" else list(ids), "Type": kind}
        return self.read(Request("CheckSmsStatus", params=query, method="GET")).payload

    def _lookup(self, messages: Sequence[Message], *, grace_over: bool) -> list[SendResult]:
        out: list[SendResult] = []
        for part in chunks(list(messages), MAX_IDS):
            data = self._check([m.client_ref for m in part], "2")
            out += parse_lookup_data(data, part, grace_over, self.enum)
        return out
