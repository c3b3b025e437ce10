"""Negin twin under /negin/api: wsSend.ashx and wsStates.ashx (shared/providers.md Decisions + §5; seed 003).

Envelope `{"data":..,"status":<int>,"msg":..}`; `status` -1 is success, a positive value is an error
code from §5. Choices where the docs are silent (ASSUMPTIONS, not the provider's documented behaviour):
  * errors come with HTTP 200 (only 409 is known to come as an HTTP status too);
  * `mobile` may hold a comma list of up to 100 numbers (more -> 107); the reply for several numbers is
    `data: [{message_id, line, mobile}, ...]`; one number gets the seed's single-object `data`;
  * an opted-out number ("blacklisted" outcome) is refused with 27 and nothing of the call is accepted,
    unless `line2` is given: then it goes out on line2 (the seed's fallback) and is delivered;
  * wsStates answers -1 for an id it does not know (Magfa's "no such id"); empty ids -> 24, > 100 -> 107;
  * `state.negin_min_interval_s` spaces sends only: a send sooner than that gets HTTP 409 + code 409.
No balance call is documented for REST, so none is served.
"""

from __future__ import annotations

from werkzeug.wrappers import Request, Response

from dispatcher.sandbox.core import SandboxState, digits
from dispatcher.sandbox.twin import after_accept, before_accept, json_response, params, plain

PROVIDER = "negin"
TRANSIENT_CODE = 15
MAX_NUMBERS = 100
MESSAGES = {
    1: "invalid recipient",
    2: "invalid line",
    13: "message is empty",
    14: "credit is not enough",
    15: "internal server error, resend",
    18: "invalid username or password",
    24: "invalid message id",
    25: "invalid service type",
    27: "recipient has opted out",
    106: "recipient list is empty",
    107: "too many recipients",
    409: "at least 5 seconds between requests",
}
# state.delivery() -> wsStates code (seed 003). "blacklisted" only reaches here via the line2 fallback.
DELIVERY_CODES = {"operator": 8, "delivered": 1, "undelivered": 2, "failed": 16, "blacklisted": 1}


def render_code(code: int | str) -> Response:
    code = int(code)
    body = {"data": None, "status": code, "msg": MESSAGES.get(code, "error")}
    return json_response(body, status=409 if code == 409 else 200)


def handle(request: Request, path: str, state: SandboxState) -> Response:
    form = params(request)
    if path not in ("wsSend.ashx", "wsStates.ashx"):
        return plain(404, "<html><body>The resource cannot be found.</body></html>")
    if path == "wsSend.ashx" and state.too_soon(PROVIDER, state.negin_min_interval_s):
        return render_code(409)
    if not state.authorised(PROVIDER, username=form.get("username"), password=form.get("password")):
        return render_code(18)
    if path == "wsSend.ashx":
        return send(form, state)
    return states(form, state)


def _valid_mobile(number: str) -> bool:
    return len(number) == 12 and number.startswith("989")


def send(form: dict[str, str], state: SandboxState) -> Response:
    fault = state.take_fault(PROVIDER, "send")
    early = before_accept(fault, render_code, TRANSIENT_CODE)
    if early is not None:
        return early
    text = form.get("message", "")
    numbers = [digits(n) for n in form.get("mobile", "").split(",") if n.strip()]
    line, line2 = form.get("line", "").strip(), form.get("line2", "").strip()
    if form.get("type", "0").strip() not in ("0", "1", "2"):
        return render_code(25)
    if not text.strip():
        return render_code(13)
    if not numbers:
        return render_code(106)
    if len(numbers) > MAX_NUMBERS:
        return render_code(107)
    if not line.isdigit() or (line2 and not line2.isdigit()):
        return render_code(2)
    if not all(_valid_mobile(n) for n in numbers):
        return render_code(1)
    opted_out = {n for n in numbers if state.outcome(n) == "blacklisted"}
    if opted_out and not line2:
        return render_code(27)
    if not state.charge(PROVIDER, len(numbers)):
        return render_code(14)
    batch_id = state.new_batch_id()
    rows = []
    for number in numbers:
        used = line2 if number in opted_out else line
        msg = state.accept(PROVIDER, number, text, used, batch_id=batch_id)
        rows.append({"message_id": int(msg.message_id), "line": int(used), "mobile": number})
    data = rows[0] if len(rows) == 1 else rows
    return after_accept(fault, json_response({"data": data, "status": -1, "msg": "success"}))


def states(form: dict[str, str], state: SandboxState) -> Response:
    fault = state.take_fault(PROVIDER, "status")
    early = before_accept(fault, render_code, TRANSIENT_CODE)
    if early is not None:
        return early
    ids = [i.strip() for i in form.get("message_ids", "").strip().strip('"').split(",") if i.strip()]
    if not ids:
        return render_code(24)
    if len(ids) > MAX_NUMBERS:
        return render_code(107)
    codes = []
    for msg_id in ids:
        msg = state.find(PROVIDER, msg_id)
        codes.append(str(DELIVERY_CODES[state.delivery(msg)]) if msg else "-1")
    reply = {"data": {"msgIds": ",".join(ids), "states": ",".join(codes)}, "status": -1, "msg": "success"}
    return after_accept(fault, json_response(reply))
