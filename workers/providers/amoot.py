"""Amoot SMS REST client. Wire protocol: shared/providers.md, Decisions (Amoot) and §4; seeds 000, 001.

Every method is `POST {base}/{Method}` with the bare token in `Authorization`. HTTP is always 200; the
body's `Status` is a title string ("Success", "CreditNotEnough", ...), classified by `STATUS` below.
One text to many: `SendSimple` (form); different texts: `SendPeerToPeer` (JSON); status: `GetDeliveries`;
ambiguous sends: `GetMessages` (the sent box, matched on mobile and text; its MessageID is the per-recipient
id GetDeliveries takes, §4); balance: `AccountStatus`. Rows we cannot read prove nothing (evidence.py).

Options (SMSDISPATCH_AMOOT_<OPTION>), each for a fact the docs leave open:
  RECONCILE_GRACE  seconds after reconcile's `since` before "not in the sent box" means NOT_SENT (default 60)
  DISABLED_RETRY   retry_after seconds for System_Disabled (-300); the docs give none (default 900)
  STATUS_BATCH     ids per GetDeliveries call; the docs give no maximum (default 100, at most 100)
  TIMEZONE         zone of SendDateTime, FromDateTime, ToDateTime; samples use Iran time (default Asia/Tehran)
The line is the batch's sender, else SMSDISPATCH_AMOOT_SENDER, else "public" (the shared line, §4).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

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
from workers.providers import phones, values
from workers.providers.base import Capabilities, Envelope, ProviderClient, Reply, Request
from workers.providers.evidence import ASKED_AGAIN, Unreadable
from workers.providers.sentbox import loose_text, match_sent_box, read_sent_box
from workers.providers.transport import chunks
from workers.settings import ProviderSettings
from workers.status import Balance, DeliveryStatus, Message, SendBatch, SendOutcome, SendResult, StatusResult

log = logging.getLogger("workers.providers.amoot")

# Status title -> numeric code (kept for reference; the REST API answers the title). Source: the Status
# table of seeds 000/001; classes from providers.md §4. RecipientRefusedError marks the per-recipient titles
# (a one-number send turns them into a REFUSED result); AmbiguousSendError is TransientError off a send.
# fmt: off
_BY_CLASS: dict[type[ProviderError] | None, dict[str, int]] = {
    None: {"Success": 1},
    TransientError: {"Failed": 0, "Avanak_NotAvailable": 7, "System_Disabled": -300},
    AmbiguousSendError: {"ServerError": 500},
    RecipientRefusedError: {"Mobile_Invalid": 101, "Mobiles_Invalid": 102},
    AccountError: {
        "AccountIsDemo": 2, "CreditNotEnough": 4, "LineNumber_NotExist": 5, "BackupLineNumber_NotExist": 6,
        "UserNameOrPassword_Invalid": 100, "Token_NotAllowMethod": -208, "Token_NotAllowIP": -207,
        "Token_Expired": -204, "Token_Disabled": -203, "Token_Invalid": -202, "Token_NotExists": -201,
        "User_NotAllowMethod": -108, "User_NotAllowIP": -107, "User_NotAllowWebService": -106,
        "User_WebServiceBanned": -105, "User_Expired": -104, "User_Disabled": -103,
        "User_MobileNotVerified": -102, "User_NotExists": -1,
    },
    RequestError: {
        "UserName_Empty": 10, "Password_Empty": 11, "LineNumber_Empty": 12, "BackupLineNumber_Empty": 13,
        "SMSMessageText_Empty": 14, "AvanakMessageText_Empty": 15, "Mobile_Empty": 16, "Mobiles_Empty": 17,
        "Title_Empty": 18, "FirstNameOrLastName_Empty": 19, "URLAddress_Empty": 20, "Count_Invalid": 103,
        "FromRow_Invalid": 104, "FromDate_Invalid": 105, "FromDateTime_Invalid": 106, "ToDate_Invalid": 107,
        "ToDateTime_Invalid": 108, "FromDateIsAfterThanToDate": 109, "FromDateTimeIsAfterThanToDateTime": 110,
        "MessageID_Invalid": 111, "BulkID_Invalid": 112, "ContactID_Invalid": 113,
        "ContactGroupID_Invalid": 114, "CourseID_Invalid": 115, "CourseGroupID_Invalid": 116,
        "URLAddress_Duplicate": 117,  # harmless (a relay URL already registered); never on our calls
        "RelayMessageDeliveryID_Invalid": 118, "RelayRecieveMessageID_Invalid": 119, "Length_Invalid": 120,
        "Length_Exceeded": 121,
    },
}
# fmt: on
STATUS: dict[str, tuple[int, type[ProviderError] | None]] = {
    title: (code, cls) for cls, titles in _BY_CLASS.items() for title, code in titles.items()
}
TITLE_BY_CODE: dict[int, str] = {code: title for title, (code, _) in STATUS.items()}

# DeliveryType -> unified state. Source: providers.md §4 (sms-rocket enum; 1, 2, 35 in Amoot's own examples).
_S = DeliveryStatus
# fmt: off
DELIVERY: dict[int, DeliveryStatus] = {
    0: _S.SENT_TO_OPERATOR, 1: _S.DELIVERED, 2: _S.UNDELIVERED, 3: _S.FAILED, 5: _S.FAILED,
    8: _S.SENT_TO_OPERATOR, 16: _S.FAILED, 35: _S.BLACKLISTED, 100: _S.UNKNOWN, 200: _S.SENT_TO_OPERATOR,
    300: _S.FAILED, 400: _S.PENDING, 500: _S.FAILED, 501: _S.SENT_TO_OPERATOR, 502: _S.SENT_TO_OPERATOR,
    900: _S.PENDING, 950: _S.FAILED, 951: _S.FAILED, 952: _S.FAILED,
}
# fmt: on

# Widen the sent-box window on both sides: clock skew, and ToDateTime in whole seconds.
_WINDOW_MARGIN = timedelta(minutes=2)
CALL_CODES: dict[str, type[ProviderError] | None] = {title: cls for title, (_, cls) in STATUS.items()}
to_local = phones.national  # seed 001's form ("09120000000"), as in the SendPeerToPeer samples
mobile_key = phones.key  # Amoot answers Mobile as a number (9120000000): compare the last ten digits


def error_class(title: str, *, sending: bool) -> type[ProviderError] | None:
    """The error class of a call-level title (None: success). Unknown: ambiguous on a send, else transient."""
    if title not in STATUS:
        log.warning("amoot: unknown Status title %r", title)
    return AmootClient.call_class(title, sending=sending)


def local_time(moment: datetime, zone: ZoneInfo) -> str:
    return moment.astimezone(zone).strftime("%Y-%m-%d %H:%M:%S")


def build_simple_form(batch: SendBatch, line: str, when: str) -> dict[str, str]:
    mobiles, text = ",".join(to_local(m.phone) for m in batch.messages), batch.messages[0].text
    return {"SendDateTime": when, "SMSMessageText": text, "LineNumber": line, "Mobiles": mobiles}


def build_p2p_body(batch: SendBatch, line: str, when: str) -> dict[str, Any]:
    items = [{"Number": to_local(m.phone), "MessageText": m.text} for m in batch.messages]
    return {"SendDateTime": when, "LineNumber": line, "Input": items}


def refused(msg: Message, title: str, state: DeliveryStatus = DeliveryStatus.FAILED) -> SendResult:
    return SendResult(msg.recipient_id, SendOutcome.REFUSED, raw_code=title, status=state, error=title)


def row_result(msg: Message, title: str, message_id: object) -> SendResult:
    """One recipient's row: ACCEPTED only with Success and an id; a known failure title is a refusal."""
    if title == "Success" and message_id not in (None, "", 0, "0"):
        return SendResult(msg.recipient_id, SendOutcome.ACCEPTED, message_id=str(message_id), raw_code=title)
    black = "black" in title.lower()  # no blacklist title is documented: recognise one by its name
    if title != "Success" and (black or title in STATUS):
        return refused(msg, title, DeliveryStatus.BLACKLISTED if black else DeliveryStatus.FAILED)
    log.warning("amoot: recipient %s row Status %r, MessageID %r", msg.recipient_id, title, message_id)
    return SendResult(msg.recipient_id, SendOutcome.UNKNOWN, raw_code=title, error=f"unclear row: {title}")


def _match(batch: SendBatch, rows: Mapping[str, list[tuple[str, object]]]) -> list[SendResult]:
    out = []
    for msg in batch.messages:
        found = rows.get(mobile_key(msg.phone))
        if found:
            out.append(row_result(msg, *found.pop(0)))
        else:  # a number missing from the reply: nothing we can trust about it
            out.append(SendResult(msg.recipient_id, SendOutcome.UNKNOWN, error="not in Amoot's reply"))
    return out


def parse_simple_reply(body: Mapping[str, Any], batch: SendBatch) -> list[SendResult]:
    """SendSimple rows matched by normalised mobile, never by position."""
    rows: dict[str, list[tuple[str, object]]] = {}
    for row in body.get("Data") or []:
        pair = (str(row.get("Status")), row.get("MessageID"))
        rows.setdefault(mobile_key(row.get("Mobile")), []).append(pair)
    return _match(batch, rows)


def parse_p2p_reply(body: Mapping[str, Any], batch: SendBatch) -> list[SendResult]:
    """SendPeerToPeer: Numbers[].ID is the recipient's MessageID (providers.md §4: MessageID is per number)"""
    rows: dict[str, list[tuple[str, object]]] = {}
    data = body.get("Data") or {}
    for campaign in data.get("Campaigns") or []:
        title = str(campaign.get("Status") or "Success")
        for number in campaign.get("Numbers") or []:
            rows.setdefault(mobile_key(number.get("Number")), []).append((title, number.get("ID")))
    if data.get("FailedCount"):
        log.info("amoot: SendPeerToPeer FailedCount=%s", data.get("FailedCount"))
    return _match(batch, rows)


def parse_deliveries(body: Mapping[str, Any], ids: Sequence[str]) -> list[StatusResult]:
    """One result per asked id. The row's Status is about the query; DeliveryType is the delivery. A row
    without MessageID or DeliveryType answers nothing (UNKNOWN, logged once)."""
    found: dict[str, StatusResult] = {}
    rows = values.rows(values.field(body, "Data"))
    unread = Unreadable("amoot", "GetDeliveries")
    for row in rows:
        mid, raw = str(values.field(row, "MessageID") or ""), values.field(row, "DeliveryType")
        title = str(values.field(row, "Status") or "Success")
        if not mid or (title == "Success" and raw is None):
            unread.row("no DeliveryType" if mid else "no MessageID", row)
            continue
        if title != "Success":
            found[mid] = StatusResult(mid, DeliveryStatus.UNKNOWN, raw_code=title)
            continue
        status = values.lookup(DELIVERY, raw, f"amoot DeliveryType for {mid}")
        cost = values.to_float(values.field(row, "Cost"))  # providers.md §4 `Cost` (unit not stated; rial)
        found[mid] = StatusResult(mid, status, raw_code=str(raw), cost=cost)
    unread.say(len(rows), ASKED_AGAIN)
    return [found.get(str(i), StatusResult(str(i), DeliveryStatus.UNKNOWN)) for i in ids]


SENT_BOX = ("Data", "Mobile", "SMSMessageText", "MessageID")  # seed 000 GetMessages: result.Data rows


def parse_sent_box(body: Mapping[str, Any], batch: SendBatch, settled: bool) -> list[SendResult]:
    """GetMessages rows (seed 000: Mobile, SMSMessageText, MessageID) matched on mobile and text (sentbox.py;
    a false 'not sent' is a duplicate, so texts compare loosely and unreadable rows keep verdicts open)."""
    box = read_sent_box("amoot", "GetMessages", body, SENT_BOX, raw_code="Success")
    return match_sent_box(batch.messages, box, settled=settled, text_key=loose_text)


class AmootClient(ProviderClient):
    name = "amoot"
    # Mobiles <= 100 is providers.md's choice (docs give no maximum); no inbox here; ContactCreate exists.
    capabilities = Capabilities(100, 100, personalised=True, reconcile="sent-box", inbox=False, contacts=True)
    call_codes = CALL_CODES
    default_url = "https://portal.amootsms.com/rest"
    credential_names = ("token",)
    option_names = ("reconcile_grace", "disabled_retry", "status_batch", "timezone")

    def __init__(self, settings: ProviderSettings, session: requests.Session | None = None) -> None:
        super().__init__(settings, session)
        self.grace: float = self._option("reconcile_grace", 60.0, float)
        self.disabled_retry: float = self._option("disabled_retry", 900.0, float)
        self.status_batch: int = self._option("status_batch", 100, int)
        self.zone: ZoneInfo = self._option("timezone", ZoneInfo("Asia/Tehran"), ZoneInfo)
        if not 1 <= self.status_batch <= self.capabilities.max_status_batch:
            raise ConfigurationError(f"{settings.env_name('status_batch')} must be between 1 and 100")

    def _option(self, key: str, default: Any, parse: Callable[[str], Any]) -> Any:
        text = self.settings.option(key)
        try:
            return parse(text) if text else default
        except (ValueError, ZoneInfoNotFoundError):
            raise ConfigurationError(f"{self.settings.env_name(key)}={text!r} is not valid here") from None

    def build_send(self, batch: SendBatch) -> Request:
        line = batch.sender or self.settings.sender or "public"
        when = local_time(datetime.now(UTC), self.zone)
        if batch.single_text:
            return Request("SendSimple", data=build_simple_form(batch, line, when))
        return Request("SendPeerToPeer", json_body=build_p2p_body(batch, line, when))

    def parse_send(self, payload: Any, messages: Sequence[Message], reply: Reply) -> list[SendResult]:
        batch = SendBatch(tuple(messages), "")
        return parse_simple_reply(payload, batch) if batch.single_text else parse_p2p_reply(payload, batch)

    def refusal(self, message: Message, exc: RecipientRefusedError) -> SendResult:
        return refused(message, exc.code or "Mobiles_Invalid")

    def envelope(self, reply: Reply) -> Envelope | None:
        body = reply.body
        if not isinstance(body, dict) or "Status" not in body:
            return None
        raw = body["Status"]
        return Envelope(TITLE_BY_CODE.get(raw, str(raw)) if isinstance(raw, int) else str(raw), "", body)

    def describe(self, envelope: Envelope, what: str) -> str:
        return f"Amoot answered {envelope.code} ({STATUS.get(envelope.code, ('?',))[0]})"

    def retry_after(self, envelope: Envelope) -> float | None:
        return self.disabled_retry if envelope.code == "System_Disabled" else None

    def auth_headers(self) -> Mapping[str, str]:
        return {"Authorization": self.settings.secret("token")}  # bare token, no "Bearer" (§4)

    def status(self, message_ids: Sequence[str]) -> list[StatusResult]:
        out: list[StatusResult] = []
        for part in chunks([str(i) for i in message_ids], self.status_batch):
            out.extend(self._deliveries(list(part)))
        return out

    def _deliveries(self, ids: list[str]) -> list[StatusResult]:
        reply = self._post("GetDeliveries", data={"ListMessageID": ",".join(ids)})
        try:
            body = self._envelope(reply, sending=False)
        except RequestError as exc:
            # The docs do not say whether one bad id refuses the whole list: halve it to find the bad ones.
            if exc.code != "MessageID_Invalid":
                raise
            if len(ids) == 1:
                return [StatusResult(ids[0], DeliveryStatus.UNKNOWN, raw_code=exc.code)]
            half = len(ids) // 2
            return self._deliveries(ids[:half]) + self._deliveries(ids[half:])
        return parse_deliveries(body, ids)

    def reconcile(self, batch: SendBatch, since: datetime) -> list[SendResult]:
        since = since if since.tzinfo else since.replace(tzinfo=UTC)
        start, end = since - _WINDOW_MARGIN, datetime.now(UTC) + _WINDOW_MARGIN
        window = {"FromDateTime": local_time(start, self.zone), "ToDateTime": local_time(end, self.zone)}
        body = self._envelope(self._post("GetMessages", data=window), sending=False)
        return parse_sent_box(body, batch, values.settled(since, self.grace))

    def balance(self) -> Balance:
        reply = self._post("AccountStatus", data={})
        if (credit := values.to_float(self._envelope(reply, sending=False).get("RemaindCredit"))) is None:
            raise self.error(TransientError, "AccountStatus without a RemaindCredit", reply=reply)
        return Balance(credit, "rial")

    def prices(self) -> dict[str, float]:
        """AccountStatus' per-part rial prices, {Base,Service,Ads}SMS_{Persian,English}Price (providers.md §4)."""
        body = self._envelope(self._post("AccountStatus", data={}), sending=False)
        return {k: float(v) for k, v in body.items() if "SMS_" in k and k.endswith("Price") and v is not None}

    def _post(self, method: str, **body: Any) -> Reply:
        return self.request(Request(method, **body))

    def _envelope(self, reply: Reply, *, sending: bool) -> dict[str, Any]:  # the body when Status is Success
        return self.unwrap(reply, sending=sending)
