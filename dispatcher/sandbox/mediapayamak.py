"""Sandbox twin of Media Payamak (Niazpardaz REST v2): shared/providers.md Decisions + §3B, seed 002.

POST JSON to /mediapayamak/{Method}. Auth: the `X-API-Key` header when present, else `userName` and
`password` in the body. Every answer is HTTP 200 with the provider envelope
`{"success","errorMessage","result":{"resultCode",...}}`, errors included: the docs show no other HTTP
status, so that is this sandbox's assumption. Codes are the provider's own (§3B):
  SendBatchSms   bad key 25, bad user/password 1, missing field 21, bad sender 3, empty text 17, no or
                 invalid recipient 16, more than 100 numbers 5 (seed 002), no credit 8.
  GetBatchDelivery, GetDelivery, GetCredit, GetMessages*  bad key -7, bad user/password -1 (seed 002);
                 unknown batchSmsId or recId -2; reports older than a week -3; unparseable parameters 21
                 (assumption).
The rows of `GetMessages`/`GetMessagesByDateRange` are the official PHP SDK's MessageInfo, every field of
src/Models/MessageInfo.php and no other (no batchSmsId): one row per accepted message, its `messageId` the
message's own id. `GetDelivery {recId}` (seed 002: the delivery of one message) takes that id and answers
`{"resultCode": 0, "deliveryStatus": code}`: seed 002 gives the method a bare int return value, so the
result's key is this sandbox's assumption (the client's MEDIAPAYAMAK_DELIVERY_FIELD default). Dates are
ISO-8601 in Tehran time.
`GetMessages` with messageType 1 lists the inbox oldest first and marks nothing read (the order and the
read marking are not documented: assumptions of this sandbox).
"""

from __future__ import annotations

import time
from datetime import datetime, timedelta, timezone
from typing import Any

from werkzeug.wrappers import Request, Response

from dispatcher.sandbox.core import DEFAULT_SENDERS, AcceptedMessage, SandboxState, digits
from dispatcher.sandbox.twin import admit_send, after_accept, before_accept, json_body, json_response, plain

PROVIDER = "mediapayamak"
SEND_TRANSIENT = 9  # system updating
READ_TRANSIENT = -6  # IP temporarily blocked: the read methods' only transient code common to all
MAX_NUMBERS, MAX_DELIVERY_PAGE, MAX_MESSAGES_PAGE = 100, 100, 1000
WEEK = 7 * 24 * 3600
TEHRAN = timezone(timedelta(hours=3, minutes=30))

MESSAGES = {
    0: "",
    1: "نام کاربر یا کلمه عبور نامعتبر می باشد",
    3: "شماره فرستنده نامعتبر است",
    5: "تعداد گیرندگان حداکثر 100 شماره می باشد",
    8: "اعتبار کافی نیست",
    9: "سامانه در حال بروز رسانی می باشد",
    16: "شماره موبایل گیرنده یافت نشد",
    17: "متن وارد نشده است",
    21: "مقدار یکی یا بیشتر از پارامترهای ورودی معتبر نیست",
    25: "ApiKey نامعتبر",
    -1: "نام کاربری و رمز عبور صحیح نمی باشد",
    -2: "پیام با این کد وجود ندارد",
    -3: "مهلت یک هفته ای گرفتن گزارش پایان یافته است",
    -7: "ApiKey نامعتبر",
}

# The sandbox's outcome -> per-number deliveryStatus (§3B): 0 sent to telecom, 1 delivered,
# 2 not delivered, 7 blacklisted, 9 rejected by telecom.
DELIVERY_CODES = {"operator": 0, "delivered": 1, "undelivered": 2, "blacklisted": 7, "failed": 9}


def envelope(code: int | str, **result: Any) -> Response:
    """The provider envelope; a fault may script a code that is no number (kept as given)."""
    value: int | str = int(code) if str(code).lstrip("-").isdigit() else str(code)
    message = MESSAGES.get(value, "") if isinstance(value, int) else ""
    return json_response(
        {"success": value == 0, "errorMessage": message, "result": {"resultCode": value, **result}}
    )


def national(phone: str) -> str:
    return "0" + phone[2:] if phone.startswith("98") else phone


def tehran_time(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, TEHRAN).strftime("%Y-%m-%dT%H:%M:%S")


def auth_failure(request: Request, body: dict[str, Any], state: SandboxState) -> str | None:
    """None when authorised; else "key" (bad or missing X-API-Key) or "user" (bad userName/password)."""
    key = request.headers.get("X-API-Key")
    if key is not None:
        return None if state.authorised(PROVIDER, apikey=key) else "key"
    if "userName" in body or "password" in body:
        ok = state.authorised(PROVIDER, username=body.get("userName"), password=body.get("password"))
        return None if ok else "user"
    return "key"  # REST v2 without any credential: the key is what is missing


def int_field(body: dict[str, Any], name: str, default: int) -> int | None:
    try:
        return int(body.get(name, default))
    except (TypeError, ValueError):
        return None


def handle(request: Request, path: str, state: SandboxState) -> Response:
    if request.method != "POST":
        return plain(405, "Method Not Allowed")
    routes = {
        "SendBatchSms": send,
        "GetBatchDelivery": batch_delivery,
        "GetDelivery": one_delivery,
        "GetCredit": credit,
        "GetMessages": messages,
        "GetMessagesByDateRange": messages_by_date,
    }
    route = routes.get(path)
    if route is None:
        return plain(404, "Not Found")
    body = json_body(request)
    if body is None:
        return envelope(21)
    failed = auth_failure(request, body, state)
    if failed:
        if path == "SendBatchSms":
            return envelope(25 if failed == "key" else 1)
        return envelope(-7 if failed == "key" else -1)
    return route(body, state)


def send(body: dict[str, Any], state: SandboxState) -> Response:
    sender, to, text = body.get("fromNumber"), body.get("toNumbers"), body.get("messageContent")
    if sender is None or to is None or text is None or not isinstance(text, str):
        return envelope(21)
    if str(sender) != DEFAULT_SENDERS[PROVIDER]:
        return envelope(3)
    if not text.strip():
        return envelope(17)
    items = to if isinstance(to, list) else str(to).split(",")  # seed 002: an array; REST SDK: a comma list
    numbers = [str(n).strip() for n in items if str(n).strip()]
    if not numbers:
        return envelope(16)
    if len(numbers) > MAX_NUMBERS:
        return envelope(5)
    if any(not (len(digits(n)) == 12 and digits(n).startswith("989")) for n in numbers):
        return envelope(16)
    fault, refused = admit_send(state, PROVIDER, len(numbers), envelope, SEND_TRANSIENT, 8)
    if refused is not None:
        return refused
    batch_id = state.new_batch_id()
    for number in numbers:
        state.accept(PROVIDER, number, text, str(sender), batch_id=batch_id)
    return after_accept(fault, envelope(0, batchSmsId=int(batch_id)))


def batch_delivery(body: dict[str, Any], state: SandboxState) -> Response:
    early = before_accept(state.take_fault(PROVIDER, "status"), envelope, READ_TRANSIENT)
    if early is not None:
        return early
    index, count = int_field(body, "index", 1), int_field(body, "count", MAX_DELIVERY_PAGE)
    sent = state.batches.get((PROVIDER, str(body.get("batchSmsId"))))
    if index is None or count is None:
        return envelope(21)
    if not sent:
        return envelope(-2)
    now = time.time()
    if all(now - m.accepted_at > WEEK for m in sent):
        return envelope(-3)
    rows = sent[max(index, 1) - 1 : max(index, 1) - 1 + min(max(count, 0), MAX_DELIVERY_PAGE)]
    codes = [DELIVERY_CODES[state.delivery(m, now)] for m in rows]
    return envelope(0, numbers=[national(m.phone) for m in rows], deliveryStatus=codes)


def one_delivery(body: dict[str, Any], state: SandboxState) -> Response:
    """Seed 002 GetDelivery: the delivery code of the message whose id is `recId`."""
    early = before_accept(state.take_fault(PROVIDER, "status"), envelope, READ_TRANSIENT)
    if early is not None:
        return early
    rec = int_field(body, "recId", 0)
    if rec is None:
        return envelope(21)
    found = state.find(PROVIDER, str(rec))
    if found is None:
        return envelope(-2)
    now = time.time()
    if now - found.accepted_at > WEEK:
        return envelope(-3)
    return envelope(0, deliveryStatus=DELIVERY_CODES[state.delivery(found, now)])


def credit(body: dict[str, Any], state: SandboxState) -> Response:
    early = before_accept(state.take_fault(PROVIDER, "balance"), envelope, READ_TRANSIENT)
    if early is not None:
        return early
    left = state.credit.get(PROVIDER)
    return envelope(0, credit=float(10_000 if left is None else left))


def sent_row(m: AcceptedMessage) -> dict[str, Any]:
    """A sent message as the SDK's MessageInfo (every field, in its order; SmsStatusType 5 = sent,
    SmsSendStatusType 1 = sent, SmsSendMethodType 5 = web service, lang 1: values of this sandbox)."""
    return {
        "messageId": int(m.message_id),
        "userId": 1201,
        "tariff": 1.0,
        "content": m.text,
        "actionDateTime": tehran_time(m.accepted_at),
        "messageType": 2,
        "sender": m.sender,
        "receiver": national(m.phone),
        "flash": False,
        "pages": 1,
        "lang": 1,
        "status": 5,
        "sendStatus": 1,
        "sendMethod": 5,
        "cost": 1.0,
        "title": None,
        "count": 1,
        "sent": 1,
        "desc": None,
        "notSent": 0,
        "moneyIsRefunded": False,
        "isRead": False,
    }


def inbox_row(item: dict[str, Any]) -> dict[str, Any]:
    return {
        "messageId": int(item["id"]),
        "content": item["text"],
        "actionDateTime": tehran_time(item["at"]),
        "messageType": 1,
        "sender": item["sender"],
        "receiver": item["line"],
        "isRead": item["read"],
    }


def lines_of(body: dict[str, Any]) -> set[str]:
    given = body.get("fromNumbers") or ""
    return {
        str(n).strip()
        for n in (given if isinstance(given, list) else str(given).split(","))
        if str(n).strip()
    }


def messages(body: dict[str, Any], state: SandboxState) -> Response:
    early = before_accept(state.take_fault(PROVIDER, "inbox"), envelope, READ_TRANSIENT)
    if early is not None:
        return early
    kind, index, count = (
        int_field(body, "messageType", 0),
        int_field(body, "index", 1),
        int_field(body, "count", 100),
    )
    if kind not in (1, 2) or index is None or count is None:
        return envelope(21)
    lines = lines_of(body)
    if kind == 1:
        rows = [
            inbox_row(i)
            for i in state.inbox.get(PROVIDER, [])
            if not lines or not i["line"] or i["line"] in lines
        ]
    else:
        rows = [sent_row(m) for m in state.accepted(PROVIDER) if not lines or m.sender in lines]
    start = max(index, 1) - 1
    return envelope(0, messages=rows[start : start + min(max(count, 0), MAX_MESSAGES_PAGE)])


def messages_by_date(body: dict[str, Any], state: SandboxState) -> Response:
    early = before_accept(state.take_fault(PROVIDER, "reconcile"), envelope, READ_TRANSIENT)
    if early is not None:
        return early
    try:
        start, end = (datetime.fromisoformat(str(body[k])) for k in ("fromDate", "toDate"))
    except (KeyError, ValueError):
        return envelope(21)
    start, end = (d if d.tzinfo else d.replace(tzinfo=TEHRAN) for d in (start, end))
    lines, kind = lines_of(body), int_field(body, "messageType", 0)
    first, last = start.timestamp(), end.timestamp() + 1  # toDate has whole seconds: all of that second
    if kind == 1:
        box = [i for i in state.inbox.get(PROVIDER, []) if first <= i["at"] <= last]
        return envelope(
            0, messages=[inbox_row(i) for i in box if not lines or not i["line"] or i["line"] in lines]
        )
    if kind != 2:
        return envelope(21)
    sent = state.sent_between(PROVIDER, first, last)
    return envelope(0, messages=[sent_row(m) for m in sent if not lines or m.sender in lines])
