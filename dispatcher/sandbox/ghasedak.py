"""Sandbox twin of Ghasedak v2 (shared/providers.md "Decisions" + §2A; seed 004), served under /ghasedak/v2.

As strict as the seed describes: header `apikey` (missing -> 400 '["apikey is required"]', wrong -> HTTP 401 with
code 401 "apikey is invalid"), missing fields -> HTTP 400 with code 400 and the seed's '["x is required"]' message,
empty lists -> 2, more than 100 numbers or ids -> 3, parallel lists of different lengths -> 4, a number that is not an
Iranian mobile -> 8, not enough credit -> 9, an unknown path -> HTTP 404 with code 404 and items "".
The seed gives no HTTP status for codes below 400, so those come with HTTP 200 (clients read the body either way).

Inbox (seed 004): `sms/receive/last` (`linenumber`, `isread`; at most 100 rows) and `sms/receive/paging`
(`linenumber`, `isread`, `fromdate`/`todate` Unix seconds, `page` from 0, `offset` rows per page, at most 200;
`totalcount` beside `items`, as in the seed's sample). Rows: messageid, message, sender, linenumber, receivedate.
Assumptions of this twin where the seed is silent: `sms/receive/last` with isread=0 marks what it returns read,
`sms/receive/paging` marks nothing; `receivedate` is Tehran time; an `offset` above 200 is served as 200; rows
come oldest first; `todate` covers all of its second.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from datetime import datetime, timedelta, timezone
from typing import Any
from urllib.parse import unquote_plus

from werkzeug.wrappers import Request, Response

from dispatcher.sandbox.core import DEFAULT_SENDERS, SandboxState, digits
from dispatcher.sandbox.phonebook import ghasedak_routes
from dispatcher.sandbox.twin import admit_send, after_accept, before_accept, json_response, params

PROVIDER = "ghasedak"
TRANSIENT_CODE = 10
CREDIT_CODE = 9
MAX_LIST = 100
PRICE_RIAL = 155  # per message, the price in the seed's status sample
UNLIMITED_RIAL = 10_000_000
EXPIRE = "2524608000"  # the seed's account/info sample
# Seed 004 error table, in the provider's words.
MEANINGS: dict[int, str] = {
    1: "نام کاربری یا رمز عبور معتبر نمی باشد .",
    2: "آرایه ها خالی می باشد.",
    3: "طول آرایه بیشتر از 100 می باشد .",
    4: "طول آرایه ی فرستنده و گیرنده و متن پیام با یکدیگر تطابق ندارد .",
    5: "امکان گرفتن پیام جدید وجود ندارد .",
    6: "حساب کاربری غیر فعال می باشد.",
    7: "امکان دسترسی به خط مورد نظر وجود ندارد .",
    8: "شماره گیرنده نامعتبر است .",
    9: "حساب اعتبار ریالی مورد نیاز را دارا نمی باشد.",
    10: "خطایی در سیستم رخ داده است . دوباره سعی کنید .",
    11: "IP نامعتبر می باشد .",
    20: "شماره مخاطب فیلتر شده می باشد.",
    21: "ارتباط با سرویس دهنده قطع می باشد.",
    24: "امکان استفاده از این سرویس در پلن رایگان وجود ندارد.",
    401: "apikey is invalid",
    404: "the requested resource does not exist",
    419: "error! Exception",
}
# Sandbox outcome -> sms/status code (seed 004 status table).
DELIVERY_CODES: dict[str, int] = {
    "operator": 8,
    "delivered": 1,
    "undelivered": 2,
    "failed": 16,
    "blacklisted": 27,
}
UNKNOWN_ID = -1
_MOBILE = re.compile(r"^989\d{9}$")
MAX_RECEIVE_LAST, MAX_RECEIVE_PAGE = 100, 200
TEHRAN = timezone(timedelta(hours=3, minutes=30))


def envelope(code: int | str, message: str, items: Any = None, status: int = 200) -> Response:
    return json_response({"result": {"code": code, "message": message}, "items": items}, status=status)


def render_code(code: int | str) -> Response:
    number = int(code) if str(code).lstrip("-").isdigit() else None
    if number == 404:
        return envelope(404, MEANINGS[404], "", status=404)
    if number == 419:
        return envelope(419, MEANINGS[419], [10], status=419)
    http = number if number is not None and 400 <= number < 600 else 200
    return envelope(code if number is None else number, MEANINGS.get(number or 0, "error"), None, status=http)


def required(form: dict[str, str], *names: str) -> Response | None:
    missing = [n for n in names if not form.get(n, "").strip()]
    if not missing:
        return None
    return envelope(400, json.dumps([f"{n} is required" for n in missing]), None, status=400)


def split(value: str | None) -> list[str]:
    return [part.strip() for part in (value or "").split(",")]


def local(phone: str) -> str:
    d = digits(phone)
    return "0" + d[2:] if d.startswith("98") else d


def list_error(*lists: list[str]) -> Response | None:
    """The seed's list codes, in the order a server would check them: empty, too long, lengths differ."""
    if any(all(not x for x in values) for values in lists):
        return render_code(2)
    if any(len(values) > MAX_LIST for values in lists):
        return render_code(3)
    if len({len(values) for values in lists}) > 1:
        return render_code(4)
    return None


def accept_all(state: SandboxState, rows: list[tuple[str, str, str, str | None]]) -> Response:
    """rows: (receptor, text, line, checkid). Everything is accepted or nothing is."""
    if any(not _MOBILE.match(digits(receptor)) for receptor, _, _, _ in rows):
        return render_code(8)
    fault, refused = admit_send(state, PROVIDER, len(rows), render_code, TRANSIENT_CODE, CREDIT_CODE)
    if refused is not None:
        return refused
    batch_id = state.new_batch_id()
    accepted = [
        state.accept(PROVIDER, r, text, line, client_ref=ref or None, batch_id=batch_id)
        for r, text, line, ref in rows
    ]
    ids = [int(m.message_id) for m in accepted]  # the seed shows ids as JSON numbers
    return after_accept(fault, envelope(200, "success", ids))


def send_pair(form: dict[str, str], state: SandboxState) -> Response:
    """One text to many (also sms/send/simple, whose receptor may be a comma list per the PHP README)."""
    missing = required(form, "message", "receptor")
    if missing:
        return missing
    receptors = split(form["receptor"])
    refs = split(form["checkid"]) if form.get("checkid", "").strip() else [""] * len(receptors)
    bad = list_error(receptors, refs) if form.get("checkid", "").strip() else list_error(receptors)
    if bad:
        return bad
    # The seed: without a linenumber the account's highest-priority line is used.
    line = form.get("linenumber", "").strip() or DEFAULT_SENDERS[PROVIDER]
    return accept_all(
        state, [(r, form["message"], line, ref) for r, ref in zip(receptors, refs, strict=True)]
    )


def send_bulk(form: dict[str, str], state: SandboxState) -> Response:
    """Parallel lists; each text was percent-encoded before joining (official C# SDK), so decode after splitting."""
    missing = required(form, "message", "receptor", "linenumber")
    if missing:
        return missing
    texts, receptors, lines = split(form["message"]), split(form["receptor"]), split(form["linenumber"])
    refs = split(form["checkid"]) if form.get("checkid", "").strip() else None
    bad = list_error(texts, receptors, lines, *([refs] if refs is not None else []))
    if bad:
        return bad
    refs = refs or [""] * len(receptors)
    rows = [
        (r, unquote_plus(t), ln, ref) for r, t, ln, ref in zip(receptors, texts, lines, refs, strict=True)
    ]
    return accept_all(state, rows)


def status(form: dict[str, str], state: SandboxState) -> Response:
    missing = required(form, "id", "type")
    if missing:
        return missing
    kind = form["type"].strip()
    if kind not in ("1", "2"):
        return envelope(400, json.dumps(["type is invalid"]), None, status=400)
    ids = split(form["id"])
    bad = list_error(ids)
    if bad:
        return bad
    fault = state.take_fault(PROVIDER, "status")
    early = before_accept(fault, render_code, TRANSIENT_CODE)
    if early is not None:
        return early
    items = []
    for given in ids:
        msg = state.find(PROVIDER, given) if kind == "1" else state.find_ref(PROVIDER, given)
        if msg is None:
            items.append(
                {"messageid": int(given) if kind == "1" and given.isdigit() else None, "status": UNKNOWN_ID}
            )
            continue
        items.append(
            {
                "messageid": int(msg.message_id),
                "message": msg.text,
                "status": DELIVERY_CODES[state.delivery(msg)],
                "price": PRICE_RIAL,
                "sender": msg.sender,
                "receptor": local(msg.phone),
                "senddate": str(int(msg.accepted_at)),
            }
        )
    return after_accept(fault, envelope(200, "success", items))


def account_info(form: dict[str, str], state: SandboxState) -> Response:
    early = before_accept(state.take_fault(PROVIDER, "balance"), render_code, TRANSIENT_CODE)
    if early is not None:
        return early
    credit = state.credit.get(PROVIDER)
    balance = UNLIMITED_RIAL if credit is None else credit * PRICE_RIAL
    return envelope(200, "success", {"balance": balance, "expire": EXPIRE})


def inbox_rows(state: SandboxState, line: str, want_read: bool) -> list[dict[str, Any]]:
    """The inbox items on that line (an item without a line is everyone's) in that read state, oldest first."""
    return [
        item
        for item in state.inbox.get(PROVIDER, [])
        if bool(item["read"]) == want_read and (not item["line"] or digits(item["line"]) == digits(line))
    ]


def inbox_item(item: dict[str, Any], line: str) -> dict[str, Any]:
    return {
        "messageid": int(item["id"]),
        "message": item["text"],
        "sender": item["sender"],
        "linenumber": item["line"] or line,
        "receivedate": datetime.fromtimestamp(item["at"], TEHRAN).strftime("%Y-%m-%dT%H:%M:%S"),
    }


def receive_last(form: dict[str, str], state: SandboxState) -> Response:
    """Up to 100 messages on that line, unread (isread=0, then marked read: an assumption) or read (isread=1)."""
    missing = required(form, "linenumber", "isread")
    if missing:
        return missing
    early = before_accept(state.take_fault(PROVIDER, "inbox"), render_code, TRANSIENT_CODE)
    if early is not None:
        return early
    want_read, line = form["isread"].strip() == "1", form["linenumber"].strip()
    with state.lock:
        rows = inbox_rows(state, line, want_read)[:MAX_RECEIVE_LAST]
        for item in rows:
            item["read"] = True
    return envelope(200, "success", [inbox_item(item, line) for item in rows])


def receive_paging(form: dict[str, str], state: SandboxState) -> Response:
    """One page of the messages received between fromdate and todate (Unix seconds), in that read state."""
    missing = required(form, "linenumber", "isread", "fromdate", "todate", "page", "offset")
    if missing:
        return missing
    try:
        start, end = int(form["fromdate"]), int(form["todate"])
        page, size = int(form["page"]), min(int(form["offset"]), MAX_RECEIVE_PAGE)
    except ValueError:
        return envelope(400, json.dumps(["fromdate, todate, page and offset are numbers"]), None, status=400)
    early = before_accept(state.take_fault(PROVIDER, "inbox"), render_code, TRANSIENT_CODE)
    if early is not None:
        return early
    want_read, line = form["isread"].strip() == "1", form["linenumber"].strip()
    with state.lock:
        rows = [i for i in inbox_rows(state, line, want_read) if start <= i["at"] < end + 1]
    items = [inbox_item(item, line) for item in rows[max(page, 0) * size : (max(page, 0) + 1) * max(size, 0)]]
    return json_response(
        {"result": {"code": 200, "message": "success"}, "items": items, "totalcount": len(rows)}
    )


ROUTES: dict[str, Callable[[dict[str, str], SandboxState], Response]] = {
    "sms/send/simple": send_pair,
    "sms/send/pair": send_pair,
    "sms/send/bulk": send_bulk,
    "sms/status": status,
    "account/info": account_info,
    "sms/receive/last": receive_last,
    "sms/receive/paging": receive_paging,
    **ghasedak_routes(
        render_code, TRANSIENT_CODE, local
    ),  # contact groups (seed 004): dispatcher/sandbox/phonebook.py
}


def handle(request: Request, path: str, state: SandboxState) -> Response:
    route = ROUTES.get(path.strip("/").lower())
    if route is None:
        return render_code(404)
    key = request.headers.get("apikey", "").strip()
    if not key:
        return envelope(400, json.dumps(["apikey is required"]), None, status=400)
    if not state.authorised(PROVIDER, apikey=key):
        return render_code(401)
    return route(params(request), state)
