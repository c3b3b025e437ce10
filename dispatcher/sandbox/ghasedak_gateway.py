"""Sandbox twin of Ghasedak's gateway REST v1 (shared/providers.md §2B), served under
/ghasedak-gateway/rest/api/v1/WebService.

As §2B describes it: header `ApiKey`; POST JSON for sends, GET query strings for CheckSmsStatus,
GetAccountInformation and GetReceivedSmses*; envelope `{isSuccess, statusCode, message, data}`, camelCase on
sends and PascalCase on the status and account replies (the doc samples' inconsistency, kept on purpose);
errors as HTTP 400 with `isSuccess: false` and `data: null` (§2B), their statusCode in the body.
A missing or wrong key -> 401; missing params -> 429 MissedParams; more than 100 receptors or ids -> 413;
a number that is not an Iranian mobile -> 400; not enough credit -> 418; a clientReferenceId already
accepted -> 451 DuplicateRequest (nothing accepted again). Delivery `status` uses the docs' enum (a).
Assumptions of this twin where §2B is silent: CheckSmsStatus reads `Ids` as a comma list or repeated keys;
an unknown id or clientReferenceId is left out of `data`; `SendBulkSMS` answers the docs' shape, or the C#
SDK's when a test sets `state.gateway_bulk_shape = "sdk"`; inbox rows are
{messageId, sender, message, lineNumber, receiveDate}, PageIndex counts from 1; `cost` is 1 per part.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from werkzeug.wrappers import Request, Response

from dispatcher.sandbox.core import DEFAULT_SENDERS, SandboxState, digits
from dispatcher.sandbox.twin import admit_send, after_accept, before_accept, json_body, json_response

PROVIDER = "ghasedak-gateway"
TRANSIENT_CODE, CREDIT_CODE, MAX_LIST = 402, 418, 100
COST = 1732  # per message, the doc's bulk sample
UNLIMITED_CREDIT = 9_135_538  # the doc's GetAccountInformation sample
# smsit's labels (§2B)
LABELS = {
    400: "InvalidInput", 401: "NotAuthorized", 402: "OperationFailed", 406: "LineOwnershipError",
    412: "InactiveLine", 413: "ReceiversMaxLimit", 416: "ForbiddenIp", 418: "NotEnoughCredit",
    419: "BadTariff", 429: "MissedParams", 451: "DuplicateRequest", 500: "UnknownError",
}  # fmt: skip
# Sandbox outcome -> the docs' delivery enum (a)
DELIVERY_CODES = {"operator": 3, "delivered": 5, "undelivered": 4, "failed": 6, "blacklisted": 2}
_MOBILE = re.compile(r"^989\d{9}$")


def ok(data: Any, pascal: bool = False) -> Response:
    if pascal:
        return json_response({"Data": data, "IsSuccess": True, "StatusCode": 200, "Message": "success"})
    return json_response({"isSuccess": True, "statusCode": 200, "message": "", "data": data})


def render_code(code: int | str) -> Response:
    number = int(code) if str(code).lstrip("-").isdigit() else 500
    body = {"isSuccess": False, "statusCode": number, "message": LABELS.get(number, "error"), "data": None}
    return json_response(body, status=400)


def local(phone: str) -> str:
    d = digits(phone)
    return "0" + d[2:] if d.startswith("98") else d


def accept_all(state: SandboxState, rows: list[tuple[str, str, str, str]], shape: str) -> Response:
    """rows: (receptor, text, line, clientReferenceId). Everything is accepted or nothing is."""
    if not rows or any(not r or not t for r, t, _, _ in rows):
        return render_code(429)
    if len(rows) > MAX_LIST:
        return render_code(413)
    if any(not _MOBILE.match(digits(r)) for r, _, _, _ in rows):
        return render_code(400)
    if any(ref and state.find_ref(PROVIDER, ref) for _, _, _, ref in rows):
        return render_code(451)
    fault, refused = admit_send(state, PROVIDER, len(rows), render_code, TRANSIENT_CODE, CREDIT_CODE)
    if refused is not None:
        return refused
    batch = state.new_batch_id()
    accepted = [
        state.accept(PROVIDER, r, t, ln, client_ref=ref or None, batch_id=batch) for r, t, ln, ref in rows
    ]
    when = datetime.now(UTC).isoformat()
    if shape == "sdk":  # the C# SDK's model of the bulk reply
        receptors = [{"receptor": local(m.phone), "messageId": m.message_id} for m in accepted]
        data: Any = {
            "cost": COST * len(rows),
            "lineNumber": rows[0][2],
            "receptors": receptors,
            "sendDate": when,
        }
    else:
        items = [
            {"lineNumber": m.sender, "receptor": local(m.phone), "messageId": m.message_id, "cost": COST,
             "clientReferenceId": m.client_ref or "", "sendDate": when, "message": m.text}
            for m in accepted
        ]  # fmt: skip
        data = {"items": items}
    return after_accept(fault, ok(data))


def send_single(body: dict[str, Any], state: SandboxState, shape: str) -> Response:
    row = (str(body.get("receptor") or ""), str(body.get("message") or ""), str(body.get("lineNumber") or ""),
           str(body.get("clientReferenceId") or ""))  # fmt: skip
    return accept_all(state, [row], shape)


def send_bulk(body: dict[str, Any], state: SandboxState, shape: str) -> Response:
    receptors = body.get("receptors") if isinstance(body.get("receptors"), list) else []
    line, ref = (
        str(body.get("lineNumber") or DEFAULT_SENDERS[PROVIDER]),
        str(body.get("clientReferenceId") or ""),
    )
    rows = [
        (str(r), str(body.get("message") or ""), line, ref if i == 0 else "") for i, r in enumerate(receptors)
    ]
    response = accept_all(state, rows, shape)
    if ref and response.status_code == 200:  # the one reference names every message of the call
        for m in state.accepted(PROVIDER)[-len(rows) :]:
            m.client_ref = ref
    return response


def send_pair(body: dict[str, Any], state: SandboxState, shape: str) -> Response:
    items = body.get("items") if isinstance(body.get("items"), list) else []
    rows = [
        (str(i.get("receptor") or ""), str(i.get("message") or ""), str(i.get("lineNumber") or ""),
         str(i.get("clientReferenceId") or ""))
        for i in items if isinstance(i, dict)
    ]  # fmt: skip
    refs = [r[3] for r in rows if r[3]]
    if len(refs) != len(set(refs)):
        return render_code(400)
    return accept_all(state, rows, "docs")


def ids_of(request: Request) -> list[str]:
    values = request.args.getlist("Ids") or request.args.getlist("ids")
    return [part.strip() for v in values for part in v.split(",") if part.strip()]


def status_row(state: SandboxState, m: Any) -> dict[str, Any]:
    return {
        "MessageId": m.message_id, "ClientReferenceId": m.client_ref or "", "Message": m.text,
        "LineNumber": m.sender, "Receptor": local(m.phone), "Status": DELIVERY_CODES[state.delivery(m)],
        "Price": COST, "SendDate": datetime.fromtimestamp(m.accepted_at, UTC).isoformat(),
    }  # fmt: skip


def check_status(request: Request, state: SandboxState) -> Response:
    ids, kind = ids_of(request), (request.args.get("Type") or request.args.get("type") or "").strip()
    if not ids or kind not in ("1", "2"):
        return render_code(429)
    if len(ids) > MAX_LIST:
        return render_code(413)
    fault = state.take_fault(PROVIDER, "status")
    early = before_accept(fault, render_code, TRANSIENT_CODE)
    if early is not None:
        return early
    if kind == "1":
        found = [state.find(PROVIDER, i) for i in ids]
    else:
        found = [m for m in state.accepted(PROVIDER) if m.client_ref in set(ids)]
    return after_accept(fault, ok([status_row(state, m) for m in found if m is not None], pascal=True))


def account(request: Request, state: SandboxState) -> Response:
    early = before_accept(state.take_fault(PROVIDER, "balance"), render_code, TRANSIENT_CODE)
    if early is not None:
        return early
    credit = state.credit.get(PROVIDER)
    data = {"Credit": UNLIMITED_CREDIT if credit is None else credit * COST,
            "ExpireDate": "2024-07-16T10:48:21+03:30", "Plan": "نقره ای"}  # fmt: skip
    return ok(data, pascal=True)


def received(request: Request, state: SandboxState) -> Response:
    args = {k.lower(): v for k, v in request.args.items()}
    line, is_read = args.get("linenumber", ""), args.get("isread", "").lower()
    if not line or is_read not in ("true", "false"):
        return render_code(429)
    early = before_accept(state.take_fault(PROVIDER, "inbox"), render_code, TRANSIENT_CODE)
    if early is not None:
        return early
    page, size = int(args.get("pageindex") or 1), int(args.get("pagesize") or 100)
    with state.lock:
        rows = [
            i for i in state.inbox.get(PROVIDER, [])
            if bool(i["read"]) == (is_read == "true") and (not i["line"] or digits(i["line"]) == digits(line))
        ]  # fmt: skip
    chosen = rows[(page - 1) * size : page * size]
    items = [
        {"messageId": i["id"], "sender": i["sender"], "message": i["text"], "lineNumber": i["line"] or line,
         "receiveDate": datetime.fromtimestamp(i["at"], UTC).isoformat()}
        for i in chosen
    ]  # fmt: skip
    return ok(items)


SENDS: dict[str, Callable[[dict[str, Any], SandboxState, str], Response]] = {
    "sendsinglesms": send_single,
    "sendbulksms": send_bulk,
    "sendpairtopairsms": send_pair,
}
READS: dict[str, Callable[[Request, SandboxState], Response]] = {
    "checksmsstatus": check_status,
    "getaccountinformation": account,
    "getreceivedsmsespaging": received,
}


def handle(request: Request, path: str, state: SandboxState) -> Response:
    name = path.strip("/").lower()  # §2B: path case varies
    if name not in SENDS and name not in READS:
        return json_response(
            {"isSuccess": False, "statusCode": 404, "message": "not found", "data": None}, 404
        )
    key = request.headers.get("ApiKey", "").strip()
    if not key or not state.authorised(PROVIDER, apikey=key):
        return render_code(401)
    if name in READS:
        return READS[name](request, state)
    if request.method != "POST":
        return render_code(400)
    return SENDS[name](json_body(request) or {}, state, getattr(state, "gateway_bulk_shape", "docs"))
