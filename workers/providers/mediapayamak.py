"""Media Payamak (Niazpardaz platform) REST v2 client.

Wire protocol: shared/providers.md, "Decisions" (Media Payamak) and §3B; seed 002 (method set, codes).
POST JSON to `{base}/{Method}`; auth is the `X-API-Key` header when an API key is set, else `userName`
and `password` in the body (seed 002's form). Envelope `{"success","errorMessage","result":{"resultCode",...}}`.

Settings (SMSDISPATCH_MEDIAPAYAMAK_*): APIKEY, or USERNAME and PASSWORD; URL, SENDER, BATCH (max 100:
seed 002 says 100 per call, the REST SDK comment says 1000; the Decisions cap at 100), and these options,
each set because the docs leave the fact open:
  DATE_FORMAT      strftime format of `GetMessagesByDateRange` fromDate/toDate, Tehran time (UTC+03:30).
                   Default ISO-8601 "%Y-%m-%dT%H:%M:%S"; no source shows the format the server expects.
  RECONCILE_GRACE  seconds after `since` before a message missing from the sent box counts as NOT_SENT
                   (default 60); earlier it stays UNKNOWN, as the sent box may lag the send.
  INDEX            "row" (default) or "page": what `index` counts in paged calls. Seed 002 calls it the row
                   index, from 1 (so page 2 of 100 starts at 101); the official SDK names it pageIndex.
  INBOX_ORDER      "any" (default) or "newest": how `GetMessages` (messageType 1) lists the inbox, which no
                   source says. "any" reads every page on each pass; "newest" stops at the first page
                   that reaches a message already read, which is right only if the newest come first.
Inbox (opt-out replies): `GetMessages {messageType: 1, fromNumbers: our line, index, count <= 1000}` (seed 002),
paged like the other calls (INDEX). Rows are the official SDK's MessageInfo (messageId, sender, content,
actionDateTime). The cursor is the highest `messageId` already handled; a pass keeps only rows above it. That
assumes ids grow with arrival (no source says so; they are the panel's row ids). Whether reading marks
messages read is not documented and does not matter here: `GetMessages` is not filtered by read state.
Numbers go out as 09XXXXXXXXX (the official SDK's samples); a recipient's id is "{batchSmsId}:{number}".
Personalised batches are sent as one `SendBatchSms` per distinct text, in order (see `send`).
Reconciliation reads the sent box (`GetMessagesByDateRange`, messageType 2) and matches number and text;
the row field names (receiver, content, messageId) are the official SDK's MessageInfo, and `batchSmsId`
in a row is an assumption: without it the id is the row's messageId, which `status` cannot poll.
"""

from __future__ import annotations

import logging
from collections.abc import Collection, Sequence
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

from workers.errors import (
    AccountError,
    AmbiguousSendError,
    ConfigurationError,
    ProviderError,
    RecipientRefusedError,
    RequestError,
    TransientError,
)
from workers.providers.base import Capabilities, ProviderClient, Reply, inbound_messages
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

log = logging.getLogger("workers.providers.mediapayamak")

ErrorTable = dict[int, type[ProviderError] | None]
Keep = Collection[int]

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

# DeliveryResultCode of GetBatchDelivery (§3B, N1). -3 and -4 are answers about the whole batch, not errors.
DELIVERY_CALL_CODES: ErrorTable = {
    0: None,
    -1: TransientError,  # provider connection error (seed 002 also lists -1 as bad user/password)
    -2: RequestError,  # no batch with this batchSmsId
    -5: TransientError,  # asked less than a minute after sending
    -6: TransientError,  # IP temporarily blocked
    -7: AccountError,  # bad ApiKey
}
WHOLE_BATCH: dict[int, DeliveryStatus] = {-3: DeliveryStatus.EXPIRED, -4: DeliveryStatus.PENDING}
# Seconds to wait, for any method (send codes are positive, read codes negative, so they never collide):
# 22/-6 IP blocked (long backoff), 23 enqueue failed ("retry in minutes"), -5 "ask a minute after sending".
RETRY_AFTER: dict[int, float] = {22: 300.0, -6: 300.0, 23: 120.0, -5: 60.0}

# GetCredit result codes (N1 CreditResultCode.php; -1/-2 also seed 002), used for GetMessages* too (assumed:
# the SDK gives those no table). 21 "invalid parameters" is borrowed from SendResultCode (assumption).
READ_CODES: ErrorTable = {
    0: None,
    **dict.fromkeys((-1, -2, -7), AccountError),
    -6: TransientError,
    21: RequestError,
}

# Per-number deliveryStatus (§3B table, N1 SmsDeliveryStatus.php; 0..11 also seed 002).
DELIVERY: dict[int, DeliveryStatus] = {
    **dict.fromkeys((-10, 8), DeliveryStatus.UNKNOWN),  # "none", "unknown"
    **dict.fromkeys((0, 5), DeliveryStatus.SENT_TO_OPERATOR),  # sent to / received by telecom
    1: DeliveryStatus.DELIVERED,
    2: DeliveryStatus.UNDELIVERED,
    # telecom failure, unknown error, not received by telecom, rejected, cancelled, not sent, no Telegram
    **dict.fromkeys((3, 4, 6, 9, 10, 11, 12), DeliveryStatus.FAILED),
    7: DeliveryStatus.BLACKLISTED,
    13: DeliveryStatus.PENDING,  # in queue
}

TEHRAN = timezone(timedelta(hours=3, minutes=30), "Asia/Tehran")  # fixed: Iran dropped DST in 2022
DEFAULT_DATE_FORMAT = "%Y-%m-%dT%H:%M:%S"
CLOCK_SLACK = timedelta(seconds=60)  # widen the sent-box window for clock skew between us and the provider
PAGE_STATUS, PAGE_MESSAGES, MAX_PAGES = 100, 1000, 100
ARABIC_TO_PERSIAN = str.maketrans({"\u064a": "\u06cc", "\u0643": "\u06a9"})  # ي -> ی, ك -> ک


def provider_number(e164: str) -> str:
    """+989121234567 -> 09121234567: the national form the official SDK's samples use."""
    return "0" + number_key(e164)


def number_key(number: str) -> str:
    """The last ten digits (9XXXXXXXXX), so 0912..., 98912... and +98912... compare equal."""
    return "".join(ch for ch in str(number) if ch.isdigit())[-10:]


def as_int(value: Any) -> int | None:
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


def parse_envelope(body: Any) -> tuple[int | None, dict[str, Any]] | None:
    """(resultCode, result) of a provider envelope; None when the body is not one. A code that is not
    a number comes back as None inside the tuple: an unrecognised code."""
    result = body.get("result") if isinstance(body, dict) else None
    if not isinstance(result, dict) or "resultCode" not in result:
        return None
    return as_int(result["resultCode"]), result


def build_send_body(numbers: Sequence[str], text: str, sender: str) -> dict[str, Any]:
    numbers_csv = ",".join(numbers)  # a comma list, as the official SDK joins them
    return {
        "fromNumber": sender,
        "toNumbers": numbers_csv,
        "messageContent": text,
        "isFlash": False,
        "sendDelay": 0,
    }


def build_date_range_body(sender: str, start: datetime, end: datetime, fmt: str) -> dict[str, Any]:
    return {
        "messageType": 2,  # sent messages (seed 002: 1 = received, 2 = sent)
        "fromNumbers": sender,
        "fromDate": start.astimezone(TEHRAN).strftime(fmt),
        "toDate": end.astimezone(TEHRAN).strftime(fmt),
    }


def split_id(message_id: str) -> tuple[str, str] | None:
    """'{batchSmsId}:{number}' -> (batchSmsId, number); None for anything else."""
    batch_id, sep, number = str(message_id).partition(":")
    return (batch_id, number) if sep and batch_id and number else None


def parse_delivery(result: dict[str, Any]) -> dict[str, Any]:
    """numbers[] and deliveryStatus[] (parallel arrays) -> {number key: raw code}."""
    numbers, codes = result.get("numbers") or [], result.get("deliveryStatus") or []
    return {number_key(n): c for n, c in zip(numbers, codes, strict=False)}


def delivery_status(message_id: str, raw: Any) -> StatusResult:
    """Unified state of one number's code; an unknown code is UNKNOWN, kept raw and logged."""
    code = as_int(raw)
    status = DELIVERY.get(code) if code is not None else None
    if status is None:
        log.warning("mediapayamak: unknown deliveryStatus %r for %s", raw, message_id)
    return StatusResult(message_id, status or DeliveryStatus.UNKNOWN, raw_code=str(raw))


def comparable(text: Any) -> str:
    """Text as the panel may store it: Arabic yeh/kaf as Persian, runs of whitespace as one space.
    A false "not sent" means a duplicate SMS, so compare loosely on what a panel may rewrite."""
    return " ".join(str(text).translate(ARABIC_TO_PERSIAN).split())


def match_sent(messages: Sequence[dict[str, Any]], phone: str, text: str) -> dict[str, Any] | None:
    """The first sent-box row (MessageInfo: receiver, content) to this number with this text."""
    key, want = number_key(phone), comparable(text)
    hits = (
        m
        for m in messages
        if number_key(m.get("receiver", "")) == key and comparable(m.get("content", "")) == want
    )
    return next(hits, None)


def parse_sent_box(sent: list[dict[str, Any]], batch: SendBatch, grace_over: bool) -> list[SendResult]:
    """Sent-box rows -> one result per message: ACCEPTED with an id when found (built from the row's
    batchSmsId, else its messageId), NOT_SENT when missing after the grace period, else UNKNOWN."""
    out, sent = [], list(sent)  # a copy: rows are crossed off as they are matched
    for m in batch.messages:
        hit = match_sent(sent, m.phone, m.text)
        if hit is None:
            outcome = SendOutcome.NOT_SENT if grace_over else SendOutcome.UNKNOWN
            out.append(SendResult(m.recipient_id, outcome, error="not in the sent box"))
            continue
        sent.remove(hit)  # one sent-box row proves one message, never two
        bid, own = hit.get("batchSmsId"), hit.get("messageId")
        mid = f"{bid}:{provider_number(m.phone)}" if bid else (str(own) if own else None)
        outcome = SendOutcome.ACCEPTED if mid else SendOutcome.UNKNOWN  # ACCEPTED only with an id
        out.append(SendResult(m.recipient_id, outcome, mid, error=None if mid else "found, without an id"))
    return out


def e164_or_raw(number: Any) -> str:
    key = number_key(number)
    return "+98" + key if len(key) == 10 and key.startswith("9") else str(number)


def build_inbox_body(sender: str, index: int) -> dict[str, Any]:
    return {"messageType": 1, "fromNumbers": sender, "index": index, "count": PAGE_MESSAGES}  # 1 = received


def parse_inbox(messages: Sequence[dict[str, Any]]) -> list[InboundMessage]:
    """MessageInfo rows (messageId, sender, content, actionDateTime) -> InboundMessage."""
    rows = [
        (
            str(m.get("messageId", "")),
            str(m.get("sender", "")),
            str(m.get("content", "")),
            None if m.get("actionDateTime") is None else str(m.get("actionDateTime")),
        )
        for m in messages
        if isinstance(m, dict)
    ]
    return inbound_messages("mediapayamak", rows)


def newer_than(messages: Sequence[InboundMessage], last: int) -> list[InboundMessage]:
    """Messages above the cursor; one without a numeric id cannot be placed, so it is kept (re-adding is harmless)."""
    return [m for m in messages if as_int(m.message_id) is None or as_int(m.message_id) > last]  # type: ignore[operator]


class MediaPayamakClient(ProviderClient):
    name = "mediapayamak"
    # personalised=False: one call carries one text; send() splits a personalised batch by text.
    capabilities = Capabilities(max_batch=100, max_status_batch=100, reconcile="sent-box", inbox=True)
    default_url = "https://login.niazpardaz.ir/api/v2/RestWebApi"
    credential_names = ("apikey", "username", "password")
    option_names = ("date_format", "reconcile_grace", "index", "inbox_order")

    def check_credentials(self) -> None:
        s = self.settings
        if not s.secret("apikey") and not (s.secret("username") and s.secret("password")):
            names = [s.env_name(k) for k in self.credential_names]
            raise ConfigurationError(f"{self.name}: set {names[0]}, or both {names[1]} and {names[2]}")
        if s.option("index", "row") not in ("row", "page"):
            raise ConfigurationError(f"{s.env_name('index')} must be 'row' or 'page'")
        if s.option("inbox_order", "any") not in ("any", "newest"):
            raise ConfigurationError(f"{s.env_name('inbox_order')} must be 'any' or 'newest'")
        if as_int(s.option("reconcile_grace", "60")) is None:
            raise ConfigurationError(f"{s.env_name('reconcile_grace')} must be whole seconds")

    # ---- send -----------------------------------------------------------------------------------
    def send(self, batch: SendBatch) -> list[SendResult]:
        """One SendBatchSms per distinct text, in order. If a later call fails after an earlier one was
        accepted, the accepted ids are kept: the failed call's messages are UNKNOWN when the error is
        ambiguous, else NOT_SENT, and the calls not yet made are NOT_SENT. A failing first call raises."""
        if not batch.messages or len(batch) > self.settings.batch:
            raise self.error(RequestError, f"batch of {len(batch)} is outside 1..{self.settings.batch}")
        groups: dict[str, list[Message]] = {}
        for m in batch.messages:
            groups.setdefault(m.text, []).append(m)
        results: dict[int, SendResult] = {}
        failure: ProviderError | None = None
        for n, (text, group) in enumerate(groups.items()):
            if failure is not None:
                why = f"not attempted after: {failure}"
                done = [SendResult(m.recipient_id, SendOutcome.NOT_SENT, error=why) for m in group]
            else:
                try:
                    done = self._send_one_text(group, text, batch.sender)
                except ProviderError as exc:
                    if n == 0:
                        raise
                    failure = exc
                    ambiguous = isinstance(exc, AmbiguousSendError)
                    outcome = SendOutcome.UNKNOWN if ambiguous else SendOutcome.NOT_SENT
                    done = [
                        SendResult(m.recipient_id, outcome, None, exc.code, error=str(exc)) for m in group
                    ]
            results.update((r.recipient_id, r) for r in done)
        return [results[m.recipient_id] for m in batch.messages]

    def _send_one_text(self, group: Sequence[Message], text: str, sender: str) -> list[SendResult]:
        numbers = [provider_number(m.phone) for m in group]
        body = build_send_body(numbers, text, sender or self.settings.sender)
        # 16 (PER-RCPT) on a one-number call is a value; on more numbers RecipientRefusedError (table).
        keep = (16,) if len(group) == 1 else ()
        code, result, reply = self._post("SendBatchSms", body, SEND_CODES, sending=True, keep=keep)
        if code == 16:
            why = str(reply.body.get("errorMessage") or "recipient empty, wrong or blacklisted")
            refused = SendOutcome.REFUSED
            return [SendResult(group[0].recipient_id, refused, None, "16", DeliveryStatus.FAILED, why)]
        batch_id = str(result.get("batchSmsId") or "")
        if batch_id in ("", "0"):  # "ok" without an id: it may have gone out, and we could not track it
            raise self.error(AmbiguousSendError, "ok reply without a batchSmsId", code=code, reply=reply)
        pairs = zip(group, numbers, strict=True)
        return [SendResult(m.recipient_id, SendOutcome.ACCEPTED, f"{batch_id}:{n}", "0") for m, n in pairs]

    # ---- status ---------------------------------------------------------------------------------
    def status(self, message_ids: Sequence[str]) -> list[StatusResult]:
        """Groups ids by batchSmsId; GetBatchDelivery page after page until all of a batch are found.
        One batch's call-level error (e.g. -5 too early, -2 unknown id) leaves that batch's ids UNKNOWN
        with the code, so it cannot hide the other batches' reports; it is raised when every batch
        failed, and an AccountError is raised at once."""
        found: dict[str, StatusResult] = {}
        by_batch: dict[str, dict[str, str]] = {}
        for mid in message_ids:
            parts = split_id(mid)
            if parts is None:
                log.warning("mediapayamak: %r is not a {batchSmsId}:{number} id", mid)
            else:
                by_batch.setdefault(parts[0], {})[number_key(parts[1])] = mid
        errors: list[ProviderError] = []
        for batch_id, wanted in by_batch.items():
            try:
                found.update(self._batch_status(batch_id, wanted))
            except AccountError:
                raise
            except ProviderError as exc:
                errors.append(exc)
                found.update(
                    (mid, StatusResult(mid, DeliveryStatus.UNKNOWN, exc.code)) for mid in wanted.values()
                )
        if errors and len(errors) == len(by_batch):
            raise errors[0]
        return [found.get(mid) or StatusResult(mid, DeliveryStatus.UNKNOWN) for mid in message_ids]

    def _batch_status(self, batch_id: str, wanted: dict[str, str]) -> dict[str, StatusResult]:
        out: dict[str, StatusResult] = {}
        for page in range(MAX_PAGES):
            index = self._index(page, PAGE_STATUS)
            body = {"batchSmsId": as_int(batch_id) or batch_id, "index": index, "count": PAGE_STATUS}
            code, result, _ = self._post("GetBatchDelivery", body, DELIVERY_CALL_CODES, keep=WHOLE_BATCH)
            if code in WHOLE_BATCH:  # an answer about every number of the batch
                state = WHOLE_BATCH[code]
                return {mid: StatusResult(mid, state, str(code)) for mid in wanted.values()}
            rows = parse_delivery(result)
            out.update((wanted[k], delivery_status(wanted[k], raw)) for k, raw in rows.items() if k in wanted)
            if len(out) == len(wanted) or len(rows) < PAGE_STATUS:
                break
        return out

    # ---- reconcile, balance, inbox --------------------------------------------------------------
    def reconcile(self, batch: SendBatch, since: datetime) -> list[SendResult]:
        now, since = datetime.now(UTC), since if since.tzinfo else since.replace(tzinfo=UTC)
        fmt = self.settings.option("date_format", DEFAULT_DATE_FORMAT)
        sender = batch.sender or self.settings.sender
        body = build_date_range_body(sender, since - CLOCK_SLACK, now + CLOCK_SLACK, fmt)
        _, result, _ = self._post("GetMessagesByDateRange", body, READ_CODES)
        grace_over = (now - since).total_seconds() >= int(self.settings.option("reconcile_grace", "60"))
        return parse_sent_box(list(result.get("messages") or []), batch, grace_over)

    def balance(self) -> Balance:
        _, result, _ = self._post("GetCredit", {}, READ_CODES)
        return Balance(float(result.get("credit") or 0), unit="sms")  # seed 002: credit counted in SMS

    def inbox(self, cursor: str | None) -> tuple[list[InboundMessage], str]:
        """Received messages above the cursor (the highest messageId handled), page after page."""
        if not self.settings.sender:
            raise ConfigurationError(f"set {self.settings.env_name('sender')}: the inbox is read per line")
        last = as_int(cursor) or 0
        newest_first = self.settings.option("inbox_order", "any") == "newest"
        out: list[InboundMessage] = []
        top = last
        for page in range(MAX_PAGES):
            body = build_inbox_body(self.settings.sender, self._index(page, PAGE_MESSAGES))
            rows = list(self._post("GetMessages", body, READ_CODES)[1].get("messages") or [])
            messages = parse_inbox(rows)
            fresh = newer_than(messages, last)
            out += fresh
            top = max([top, *(as_int(m.message_id) or 0 for m in fresh)])
            if len(rows) < PAGE_MESSAGES or (newest_first and len(fresh) < len(messages)):
                break
        else:  # more pages than we read: keep the cursor, so nothing past them is skipped
            log.warning("mediapayamak: inbox longer than %d rows; cursor kept", MAX_PAGES * PAGE_MESSAGES)
            return out, str(last) if last else (cursor or "")
        return out, str(top) if top else (cursor or "")

    # ---- transport ------------------------------------------------------------------------------
    def _index(self, page: int, size: int) -> int:
        return page + 1 if self.settings.option("index", "row") == "page" else page * size + 1

    def _post(
        self, method: str, body: dict[str, Any], table: ErrorTable, *, sending: bool = False, keep: Keep = ()
    ) -> tuple[int | None, dict[str, Any], Reply]:
        """POST one method; raise by `table` unless the code means success or is in `keep` (the caller's)."""
        s, key = self.settings, self.settings.secret("apikey")
        if not key:  # seed 002's form: credentials in the body
            body = {"userName": s.secret("username"), "password": s.secret("password"), **body}
        headers = {"X-API-Key": key} if key else None
        reply = self.call("POST", method, sending=sending, json_body=body, headers=headers)
        parsed = parse_envelope(reply.body)
        if parsed is None and reply.status >= 400:
            raise self.http_error(reply, sending=sending, what=method)
        if parsed is None:  # a 2xx without the envelope: a send may still have been acted on
            cls = AmbiguousSendError if sending else TransientError
            raise self.error(cls, f"{method}: no envelope", code=f"HTTP {reply.status}", reply=reply)
        code, result = parsed
        if code in keep or (code in table and table[code] is None):
            return code, result, reply
        raw, message = result.get("resultCode"), str(reply.body.get("errorMessage") or f"{method} failed")
        found = table.get(code) if code is not None else None
        if found is None:  # unknown: a send may have gone out (reconcile); a read can be asked again
            log.warning("mediapayamak: unknown %s result code %r", method, raw)
        cls = found or (AmbiguousSendError if sending else TransientError)
        retry = RETRY_AFTER.get(code) if code is not None else None
        kw: dict[str, Any] = {"retry_after": retry} if issubclass(cls, TransientError) else {}
        raise self.error(cls, message, code=raw, reply=reply, **kw)
