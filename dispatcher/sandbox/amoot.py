"""Sandbox twin of Amoot's REST API (shared/providers.md Decisions + §4) under /amoot/rest/<Method>.

As Amoot documents: every answer of the API is HTTP 200 and `Status` carries the title; the token comes
bare in `Authorization` (or, as in the legacy samples, as a `Token` field). Served: SendSimple (form or
JSON), SendPeerToPeer (JSON), GetDeliveries, GetMessages (the sent box), AccountStatus.

Choices where the docs are silent (say so if a live account shows otherwise):
  * at most `MAX_NUMBERS` (100) numbers per call, else `Count_Invalid` (a request-class title; the docs give
    no maximum); tests may set `state.amoot_max_numbers`;
  * a list with some invalid numbers is sent to the valid ones, the others get a `Mobile_Invalid` row; a list
    with none valid is refused whole with `Mobiles_Invalid`;
  * a line is accepted when it is `public` or all digits, else `LineNumber_NotExist`;
  * GetDeliveries answers an unknown id with a row whose Status is `MessageID_Invalid` (not by omission);
  * delivery: operator -> DeliveryType 8, delivered 1, undelivered 2, failed 16, blacklisted 35;
  * a path that is no Amoot method is HTTP 404, as a web server would answer it.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from werkzeug.wrappers import Request, Response

from dispatcher.sandbox.core import DEFAULT_SENDERS, SandboxState, digits
from dispatcher.sandbox.phonebook import amoot_handlers
from dispatcher.sandbox.twin import (
    admit_send,
    after_accept,
    before_accept,
    json_body,
    json_response,
    params,
    plain,
)
from workers.providers.amoot import TITLE_BY_CODE

PROVIDER = "amoot"
TRANSIENT_CODE = "Failed"  # Status 0: Amoot's generic failure, classed transient (§4)
MAX_NUMBERS = 100
PRICE_PER_PART = 1_000  # rial; the twin's own tariff for Price and RemaindCredit
OPEN_CREDIT = 50_000_000  # rial reported when the test set no credit limit
TEHRAN = ZoneInfo("Asia/Tehran")
DELIVERY_TYPES = {"operator": 8, "delivered": 1, "undelivered": 2, "failed": 16, "blacklisted": 35}
_MOBILE = re.compile(r"^989\d{9}$")


def render_code(code: int | str) -> Response:
    """An error answer: HTTP 200 with the title in Status (a numeric code is turned into its title)."""
    if isinstance(code, str) and code.lstrip("-").isdigit():
        code = int(code)
    title = TITLE_BY_CODE.get(code, str(code)) if isinstance(code, int) else code
    return json_response(
        {"MessageText": None, "SMSPagesCount": 0, "CampaignID": 0, "Price": 0, "Status": title, "Data": []}
    )


def handle(request: Request, path: str, state: SandboxState) -> Response:
    handler = HANDLERS.get(path.strip("/"))
    if handler is None:
        return plain(404, "no such method")
    fields: dict[str, Any] = params(request)
    if request.mimetype == "application/json":
        fields.update(json_body(request) or {})
    token = request.headers.get("Authorization") or fields.get("Token")
    if not state.authorised(PROVIDER, token=token):
        return render_code("Token_NotExists")
    return handler(fields, state)


# ---- helpers ------------------------------------------------------------------------------------
def _numbers(value: Any) -> list[str]:
    items = value if isinstance(value, list) else str(value or "").split(",")
    return [str(x).strip() for x in items if str(x).strip()]


def _valid(number: str) -> bool:
    return bool(_MOBILE.match(digits(number)))


def _as_number(number: str) -> int | str:
    """Amoot answers Mobile as a number without the leading 0 or 98 (9120000000)."""
    d = digits(number)[-10:]
    return int(d) if d else number


def _pages(text: str) -> int:
    unicode = any(ord(ch) > 127 for ch in text)
    single, multi = (70, 67) if unicode else (160, 153)
    return 1 if len(text) <= single else -(-len(text) // multi)


def _line_ok(line: str) -> bool:
    return line.lower() == "public" or line.isdigit()


def _stamp(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, TEHRAN).strftime("%Y-%m-%dT%H:%M:%S")


def _moment(text: Any) -> float | None:
    """yyyy-MM-dd HH:mm:ss (Tehran), ISO 8601 with or without an offset, or a bare date."""
    try:
        moment = datetime.fromisoformat(str(text).strip())
    except ValueError:
        return None
    return (moment if moment.tzinfo else moment.replace(tzinfo=TEHRAN)).timestamp()


def _check_send(line: str, numbers: list[str], state: SandboxState) -> Response | None:
    if not line:
        return render_code("LineNumber_Empty")
    if not numbers:
        return render_code("Mobiles_Empty")
    if len(numbers) > state.amoot_max_numbers:
        return render_code("Count_Invalid")
    if not _line_ok(line):
        return render_code("LineNumber_NotExist")
    if not any(_valid(n) for n in numbers):
        return render_code("Mobiles_Invalid")
    return None


# ---- methods ------------------------------------------------------------------------------------
def send_simple(fields: dict[str, Any], state: SandboxState) -> Response:
    text, line = str(fields.get("SMSMessageText") or ""), str(fields.get("LineNumber") or "")
    numbers = _numbers(fields.get("Mobiles"))
    if not text.strip():
        return render_code("SMSMessageText_Empty")
    refused = _check_send(line, numbers, state)
    if refused:
        return refused
    valid = [n for n in numbers if _valid(n)]
    fault, refused = admit_send(state, PROVIDER, len(valid), render_code, TRANSIENT_CODE, "CreditNotEnough")
    if refused:
        return refused
    campaign = state.new_batch_id()
    rows = []
    for number in numbers:
        if _valid(number):
            msg = state.accept(PROVIDER, number, text, line, batch_id=campaign)
            rows.append({"Mobile": _as_number(number), "MessageID": int(msg.message_id), "Status": "Success"})
        else:
            rows.append({"Mobile": _as_number(number), "MessageID": 0, "Status": "Mobile_Invalid"})
    pages = _pages(text)
    reply = {
        "MessageText": text,
        "SMSPagesCount": pages,
        "CampaignID": int(campaign),
        "Price": pages * len(valid) * PRICE_PER_PART,
        "Status": "Success",
        "Data": rows,
    }
    return after_accept(fault, json_response(reply))


def send_peer_to_peer(fields: dict[str, Any], state: SandboxState) -> Response:
    line = str(fields.get("LineNumber") or "")
    items = [i for i in fields.get("Input") or [] if isinstance(i, dict)]
    if any(not str(i.get("MessageText") or "").strip() for i in items):
        return render_code("SMSMessageText_Empty")
    refused = _check_send(line, [str(i.get("Number") or "") for i in items], state)
    if refused:
        return refused
    valid = [i for i in items if _valid(str(i.get("Number")))]
    fault, refused = admit_send(state, PROVIDER, len(valid), render_code, TRANSIENT_CODE, "CreditNotEnough")
    if refused:
        return refused
    campaigns: dict[str, dict[str, Any]] = {}
    for item in valid:  # one campaign per distinct text, in order of first appearance
        text = str(item["MessageText"])
        campaign = campaigns.get(text)
        if campaign is None:
            campaign_id = int(state.new_batch_id())
            campaign = campaigns[text] = {
                "Numbers": [],
                "Status": "Success",
                "MessageText": text,
                "ID": campaign_id,
                "SMSPagesCount": _pages(text),
            }
        msg = state.accept(PROVIDER, str(item["Number"]), text, line, batch_id=str(campaign["ID"]))
        campaign["Numbers"].append({"ID": int(msg.message_id), "Number": "0" + digits(item["Number"])[-10:]})
    data = {
        "CampaignsCreated": len(campaigns),
        "TotalCampaignNumbersCreated": len(valid),
        "FailedCount": len(items) - len(valid),
        "Campaigns": list(campaigns.values()),
    }
    return after_accept(fault, json_response({"Data": data, "Status": "Success"}))


def get_deliveries(fields: dict[str, Any], state: SandboxState) -> Response:
    ids = _numbers(fields.get("ListMessageID"))
    if not ids:
        return render_code("MessageID_Invalid")
    if len(ids) > state.amoot_max_numbers:
        return render_code("Count_Invalid")
    early = before_accept(state.take_fault(PROVIDER, "status"), render_code, TRANSIENT_CODE)
    if early:
        return early
    rows = []
    for mid in ids:
        msg = state.find(PROVIDER, mid)
        if msg is None:
            row = {
                "MessageID": mid,
                "DeliveryType": None,
                "Cost": 0,
                "RegDateTime": None,
                "SendDateTime": None,
            }
            rows.append(row | {"Status": "MessageID_Invalid"})
            continue
        rows.append(
            {
                "MessageID": int(msg.message_id),
                "DeliveryType": DELIVERY_TYPES[state.delivery(msg)],
                "Cost": _pages(msg.text) * PRICE_PER_PART,
                "RegDateTime": _stamp(msg.accepted_at),
                "SendDateTime": _stamp(msg.accepted_at),
                "Status": "Success",
            }
        )
    return json_response({"Status": "Success", "Data": rows})


def get_messages(fields: dict[str, Any], state: SandboxState) -> Response:
    start, end = _moment(fields.get("FromDateTime")), _moment(fields.get("ToDateTime"))
    if start is None:
        return render_code("FromDateTime_Invalid")
    if end is None:
        return render_code("ToDateTime_Invalid")
    if start > end:
        return render_code("FromDateTimeIsAfterThanToDateTime")
    early = before_accept(state.take_fault(PROVIDER, "reconcile"), render_code, TRANSIENT_CODE)
    if early:
        return early
    rows = [
        {
            "MessageID": int(m.message_id),
            "Mobile": _as_number(m.phone),
            "LineNumber": m.sender,
            "SMSMessageText": m.text,
            "RegDateTime": _stamp(m.accepted_at),
        }
        for m in state.sent_between(PROVIDER, start, end)
    ]
    return json_response({"Status": "Success", "Data": rows})


def account_status(fields: dict[str, Any], state: SandboxState) -> Response:
    early = before_accept(state.take_fault(PROVIDER, "balance"), render_code, TRANSIENT_CODE)
    if early:
        return early
    left = state.credit.get(PROVIDER)
    reply = {
        "Status": "Success",
        "AccountName": "sandbox",
        "RemaindCredit": OPEN_CREDIT if left is None else left * PRICE_PER_PART,
        "BaseSMS_PersianPrice": PRICE_PER_PART,
        "BaseSMS_EnglishPrice": PRICE_PER_PART,
        "ServiceSMS_PersianPrice": PRICE_PER_PART,
        "ServiceSMS_EnglishPrice": PRICE_PER_PART,
        "AdsSMS_PersianPrice": PRICE_PER_PART,
        "AdsSMS_EnglishPrice": PRICE_PER_PART,
        "Avanak_SecondPrice": 0,
        "ListLineNumbers": ["public", DEFAULT_SENDERS[PROVIDER]],
    }
    return json_response(reply)


HANDLERS: dict[str, Callable[[dict[str, Any], SandboxState], Response]] = {
    "SendSimple": send_simple,
    "SendPeerToPeer": send_peer_to_peer,
    "GetDeliveries": get_deliveries,
    "GetMessages": get_messages,
    "AccountStatus": account_status,
    **amoot_handlers(
        render_code, TRANSIENT_CODE
    ),  # ContactCreate (seed 001): dispatcher/sandbox/phonebook.py
}
