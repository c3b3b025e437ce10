"""The twins' phonebooks: Amoot `ContactCreate` (seed 001) and Ghasedak's contact groups (seed 004).

`book(state)` is the sandbox's record of them, the witness tests read: `adds` holds every number a
twin added, in order, one entry per add (a number added twice appears twice), and `calls` the
parameter names each phonebook call carried (to check the seed's names on the wire).
The twins route their phonebook paths here (`amoot_handlers`, `ghasedak_routes`, given the twin's codes). Faults: op
"contacts" for the add calls (accept_then_* make an ambiguous add), "contacts-list" for listings.

Twin choices where the seeds are silent (say so if a live account shows otherwise):
  * Amoot: a mobile already in the phonebook gets a second contact, unless `amoot_duplicate` is set
    (then that Status title is answered and nothing is added); no FName and no LName is
    `FirstNameOrLastName_Empty` (a title of seed 001's table); a number in `refused` is `Mobile_Invalid`.
  * Ghasedak: addnumber adds a number already in the group again; more than 100 numbers is code 3,
    parallel lists of another length code 4, and a number that is no mobile or is in `refused` code 8,
    nothing of the call added; an unknown group is HTTP 400 '["groupid is invalid"]'; listnumber pages
    count from 1 and a page below 1 is the first; rows come in the order they were added.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial
from typing import Any

from werkzeug.wrappers import Response

from dispatcher.sandbox.core import SandboxState, digits
from dispatcher.sandbox.twin import after_accept, before_accept, json_response

Handler = Callable[[dict[str, Any], SandboxState], Response]

_MOBILE = re.compile(r"^989\d{9}$")
MAX_LIST = 100
FIRST_GROUP_ID = 209530  # the seed's sample ids are of this size


@dataclass
class Added:
    provider: str
    group: str  # Ghasedak group id; "" for Amoot's phonebook
    phone: str  # 98XXXXXXXXXX
    fields: dict[str, str]
    at: float = field(default_factory=time.time)


@dataclass
class ContactBook:
    adds: list[Added] = field(default_factory=list)
    calls: list[tuple[str, str, tuple[str, ...]]] = field(default_factory=list)  # provider, path, names
    groups: dict[str, dict[str, Any]] = field(default_factory=dict)  # id -> {id, name, parent}
    refused: set[str] = field(default_factory=set)  # numbers (any spelling) every add refuses
    amoot_duplicate: str | None = None
    next_id: int = FIRST_GROUP_ID

    def members(self, provider: str, group: str = "") -> list[Added]:
        return [a for a in self.adds if a.provider == provider and a.group == group]

    def count(self, provider: str, group: str = "") -> dict[str, int]:
        """phone (98XXXXXXXXXX) -> how many times it was added: the witness of "exactly once"."""
        out: dict[str, int] = {}
        for a in self.members(provider, group):
            out[a.phone] = out.get(a.phone, 0) + 1
        return out

    def group_id(self, name: str) -> str | None:
        return next((g for g, row in self.groups.items() if row["name"] == name), None)

    def is_refused(self, number: str) -> bool:
        return digits(number) in {digits(n) for n in self.refused}


def book(state: SandboxState) -> ContactBook:
    """The state's phonebooks (made on first use; `SandboxState.reset` drops them)."""
    with state.lock:
        found = getattr(state, "phonebook", None)
        if found is None:
            found = state.phonebook = ContactBook()
        return found


def _log(state: SandboxState, provider: str, path: str, fields: dict[str, Any]) -> ContactBook:
    contacts = book(state)
    with state.lock:
        contacts.calls.append((provider, path, tuple(fields)))
    return contacts


# ---- Amoot (seed 001) ----------------------------------------------------------------------------
def amoot_contact_create(
    fields: dict[str, Any], state: SandboxState, render_code: Callable[..., Response], TRANSIENT_CODE: Any
) -> Response:  # noqa: N803 - the twin's own constant, passed in (amoot_handlers)

    contacts = _log(state, "amoot", "ContactCreate", fields)
    fault = state.take_fault("amoot", "contacts")
    early = before_accept(fault, render_code, TRANSIENT_CODE)
    if early is not None:
        return early
    mobile = str(fields.get("Mobile") or "").strip()
    if not mobile:
        return render_code("Mobile_Empty")
    if not _MOBILE.match(digits(mobile)) or contacts.is_refused(mobile):
        return render_code("Mobile_Invalid")
    if not str(fields.get("FName") or "").strip() and not str(fields.get("LName") or "").strip():
        return render_code("FirstNameOrLastName_Empty")
    with state.lock:
        if contacts.amoot_duplicate and contacts.count("amoot").get(digits(mobile)):
            return render_code(contacts.amoot_duplicate)
        kept = {k: str(v) for k, v in fields.items() if k != "Token"}
        contacts.adds.append(Added("amoot", "", digits(mobile), kept))
        contact_id = len(contacts.adds)
    data = {"ID": contact_id, **{k: v for k, v in kept.items() if k != "Labels"}}
    return after_accept(fault, json_response({"Status": "Success", "Data": data}))


def amoot_handlers(render_code: Callable[..., Response], transient_code: Any) -> dict[str, Handler]:
    """Amoot's phonebook paths, answering with the Amoot twin's own codes (passed in: no import back)."""
    return {
        "ContactCreate": partial(amoot_contact_create, render_code=render_code, TRANSIENT_CODE=transient_code)
    }


# ---- Ghasedak (seed 004) ---------------------------------------------------------------------------
def _envelope(code: int, message: str, items: Any = None, status: int = 200) -> Response:
    return json_response({"result": {"code": code, "message": message}, "items": items}, status=status)


def _required(form: dict[str, str], *names: str) -> Response | None:
    missing = [n for n in names if not str(form.get(n, "")).strip()]
    if missing:
        return _envelope(400, json.dumps([f"{n} is required" for n in missing]), None, status=400)
    return None


def _whole(text: Any, default: int) -> int:
    try:
        return int(str(text).strip())
    except (TypeError, ValueError):
        return default


def group_new(form: dict[str, str], state: SandboxState) -> Response:
    contacts = _log(state, "ghasedak", "contact/group/new", form)
    if (missing := _required(form, "name")) is not None:
        return missing
    with state.lock:
        gid = str(contacts.next_id)
        contacts.next_id += 1
        contacts.groups[gid] = {"id": int(gid), "name": form["name"], "parent": _whole(form.get("parent"), 0)}
    return _envelope(200, "success", {"groupid": int(gid)})


def group_addnumber(
    form: dict[str, str], state: SandboxState, render_code: Callable[..., Response], TRANSIENT_CODE: Any
) -> Response:  # noqa: N803

    contacts = _log(state, "ghasedak", "contact/group/addnumber", form)
    if (missing := _required(form, "groupid", "number")) is not None:
        return missing
    group = str(_whole(form["groupid"], -1))
    if group not in contacts.groups:
        return _envelope(400, json.dumps(["groupid is invalid"]), None, status=400)
    numbers = [n.strip() for n in form["number"].split(",")]
    lists = {k: form[k].split(",") for k in ("firstname", "lastname", "email") if k in form}
    if not any(numbers):
        return render_code(2)
    if len(numbers) > MAX_LIST:
        return render_code(3)
    if any(len(v) != len(numbers) for v in lists.values()):
        return render_code(4)
    if any(not _MOBILE.match(digits(n)) or contacts.is_refused(n) for n in numbers):
        return render_code(8)
    fault = state.take_fault("ghasedak", "contacts")
    early = before_accept(fault, render_code, TRANSIENT_CODE)
    if early is not None:
        return early
    with state.lock:
        for i, number in enumerate(numbers):
            values = {k: v[i] for k, v in lists.items()}
            contacts.adds.append(Added("ghasedak", group, digits(number), values))
    return after_accept(fault, _envelope(200, "success", None))


def group_list(form: dict[str, str], state: SandboxState) -> Response:
    contacts = _log(state, "ghasedak", "contact/group/list", form)
    parent = _whole(form.get("parent"), 0)
    with state.lock:
        rows = [dict(g) for g in contacts.groups.values() if g["parent"] == parent]
    return _envelope(200, "success", rows)


def group_listnumber(
    form: dict[str, str],
    state: SandboxState,
    render_code: Callable[..., Response],
    TRANSIENT_CODE: Any,  # noqa: N803
    local: Callable[[str], str],
) -> Response:

    contacts = _log(state, "ghasedak", "contact/group/listnumber", form)
    if (missing := _required(form, "groupid")) is not None:
        return missing
    early = before_accept(state.take_fault("ghasedak", "contacts-list"), render_code, TRANSIENT_CODE)
    if early is not None:
        return early
    group = str(_whole(form["groupid"], -1))
    size, page = max(_whole(form.get("offset"), 100), 1), max(_whole(form.get("page"), 1), 1)
    with state.lock:
        rows = contacts.members("ghasedak", group)[(page - 1) * size : page * size]
        items = [
            {
                "firstName": r.fields.get("firstname", ""),
                "lastName": r.fields.get("lastname", ""),
                "number": local(r.phone),
                "email": r.fields.get("email", ""),
            }
            for r in rows
        ]
    return _envelope(200, "success", items)


def group_edit(form: dict[str, str], state: SandboxState) -> Response:
    contacts = _log(state, "ghasedak", "contact/group/edit", form)
    if (missing := _required(form, "groupid", "name")) is not None:
        return missing
    with state.lock:
        row = contacts.groups.get(str(_whole(form["groupid"], -1)))
        if row is None:
            return _envelope(400, json.dumps(["groupid is invalid"]), None, status=400)
        row["name"] = form["name"]
    return _envelope(200, "success", None)


def group_remove(form: dict[str, str], state: SandboxState) -> Response:
    contacts = _log(state, "ghasedak", "contact/group/remove", form)
    if (missing := _required(form, "groupid")) is not None:
        return missing
    group = str(_whole(form["groupid"], -1))
    with state.lock:
        if contacts.groups.pop(group, None) is None:
            return _envelope(400, json.dumps(["groupid is invalid"]), None, status=400)
        contacts.adds = [a for a in contacts.adds if not (a.provider == "ghasedak" and a.group == group)]
    return _envelope(200, "success", None)


def ghasedak_routes(
    render_code: Callable[..., Response], transient_code: Any, local: Callable[[str], str]
) -> dict[str, Handler]:
    """Ghasedak's contact-group paths, answering with the Ghasedak twin's own codes and spelling."""
    codes = {"render_code": render_code, "TRANSIENT_CODE": transient_code}
    return {
        "contact/group/new": group_new,
        "contact/group/addnumber": partial(group_addnumber, **codes),
        "contact/group/list": group_list,
        "contact/group/listnumber": partial(group_listnumber, **codes, local=local),
        "contact/group/edit": group_edit,
        "contact/group/remove": group_remove,
    }
