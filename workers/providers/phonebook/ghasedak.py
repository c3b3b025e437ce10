"""Ghasedak v2 contact groups (seed 004, "contact group" methods; providers.md Decisions, Ghasedak, §2A).

Header `apikey`, the v2 envelope {"result": {"code", "message"}, "items"} and its code table, as the
send client. The seed's methods, each with the seed's parameters:
  contact/group/new        POST  name, parent (omitted: the root)           -> items {"groupid"}
  contact/group/addnumber  POST  groupid, number (comma list), firstname, lastname, email (parallel comma
                                 lists; optional)                             -> items null
  contact/group/list       GET   parent (0: the root)                        -> items [{id, name, parent}]
  contact/group/listnumber GET   groupid, offset (rows per page), page       -> items [{firstName, lastName,
                                                                                 number, email}]
  contact/group/edit       POST  groupid, name;   contact/group/remove  POST groupid
The seed's samples send `list` and `listnumber` as GET with query parameters, the others as POST forms.
Numbers go as 09XXXXXXXXX (the seed's samples). A comma inside a name or e-mail would shift the parallel
lists (the seed shows no escaping), so it is sent as a space.

Open in the seed, so settings (SMSDISPATCH_GHASEDAK_<OPTION>):
  CONTACT_BATCH      numbers per addnumber call (default 100: the seed gives no maximum for addnumber;
                     100 is its limit for every other list, code 3)
  CONTACT_PAGE       listnumber `offset`, rows per page (default 100, the seed's default)
  CONTACT_FIRST_PAGE listnumber's first `page` (default 1: the parameter table says page=1 when none is
                     given, while its samples ask page=0)
  CONTACT_MAX_PAGES  pages read at most per listing (default 1000)
  CONTACT_LIST_GRACE seconds to wait after an interrupted addnumber before its listing is trusted
                     (default 5; the seed says nothing of how soon an added number is listed)
What addnumber answers for a number already in the group is not documented either: the push never
sends a number its ledger has as added, and reads the group's listing (which the seed documents) to
settle a call that may have been acted on, and before pushing into a group that already existed.
A refused list (code 8 invalid number, or any request-class code) does not say which number: the push
halves the call until the number is alone, and records the refusal against it.
A listnumber row without a readable `number` (a renamed key, an empty value) is logged once and counted
(`read_listing`): the push then never takes a number's absence from the listing as "not in the group".
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from typing import Any, ClassVar

import requests

from workers.errors import ConfigurationError, RequestError
from workers.providers import phones
from workers.providers.base import Request
from workers.providers.evidence import Unreadable, one_number
from workers.providers.ghasedak import GhasedakClient
from workers.providers.phonebook import (
    AddOutcome,
    AddResult,
    Book,
    Contact,
    Group,
    Listed,
    Listing,
    one_line,
)
from workers.providers.values import field
from workers.providers.values import rows as dict_rows
from workers.settings import ProviderSettings

NEW, ADD, EDIT, REMOVE = (
    "contact/group/new",
    "contact/group/addnumber",
    "contact/group/edit",
    "contact/group/remove",
)
LIST, LIST_NUMBERS = "contact/group/list", "contact/group/listnumber"
# addnumber's optional parallel lists (seed 004) and the column names mapped to them by default.
FIELDS: dict[str, tuple[str, ...]] = {
    "firstname": ("firstname", "fname", "first", "name", "نام"),
    "lastname": ("lastname", "lname", "last", "surname", "family", "نامخانوادگی"),
    "email": ("email", "mail", "ایمیل"),
}
LISTED = {"firstName": "firstname", "lastName": "lastname", "email": "email"}  # listnumber keys


def build_add_form(group: str, contacts: Sequence[Contact]) -> dict[str, str]:
    """addnumber's form: the numbers, and each optional list only when some contact has a value."""
    form = {"groupid": group, "number": ",".join(phones.national(c.phone) for c in contacts)}
    for name in FIELDS:
        values = [one_line(c.fields.get(name, "")).replace(",", " ") for c in contacts]
        if any(values):
            form[name] = ",".join(values)
    return form


def parse_groups(items: Any) -> list[Group]:
    out = []
    for row in dict_rows(items):
        gid, name, parent = field(row, "id"), field(row, "name"), field(row, "parent")
        if gid is not None:
            out.append(Group(str(gid), str(name or ""), "0" if parent is None else str(parent)))
    return out


def parse_listed(items: Any, unread: Unreadable | None = None) -> list[Listed]:
    """listnumber rows -> Listed; a row without a readable number is left out (and noted in `unread`)."""
    out = []
    for row in dict_rows(items):
        number = field(row, "number")
        if one_number(number) is None:
            if unread is not None:
                unread.row("no number", row)
            continue
        values = {ours: str(field(row, theirs) or "") for theirs, ours in LISTED.items()}
        out.append(Listed(phones.e164(phones.digits(number)), values))
    return out


class GhasedakPhonebook(GhasedakClient):
    """Ghasedak's contact groups (see the module docstring)."""

    fields: ClassVar[Mapping[str, tuple[str, ...]]] = FIELDS
    has_groups: ClassVar[bool] = True
    has_labels: ClassVar[bool] = False
    can_list: ClassVar[bool] = True
    retries_ambiguous: ClassVar[bool] = False
    option_names = (
        *GhasedakClient.option_names,
        "contact_batch",
        "contact_page",
        "contact_first_page",
        "contact_max_pages",
        "contact_list_grace",
    )

    def __init__(self, settings: ProviderSettings, session: requests.Session | None = None) -> None:
        super().__init__(settings, session)
        self.batch = int(self.number_option("contact_batch", "100", whole=True))
        self.page_size = int(self.number_option("contact_page", "100", whole=True))
        self.first_page = int(self.number_option("contact_first_page", "1", whole=True))
        self.max_pages = int(self.number_option("contact_max_pages", "1000", whole=True))
        self.list_grace = self.number_option("contact_list_grace", "5")
        if self.batch < 1 or self.page_size < 1 or self.max_pages < 1:
            raise ConfigurationError(
                "SMSDISPATCH_GHASEDAK_CONTACT_BATCH, _PAGE and _MAX_PAGES are at least 1"
            )

    def add(self, contacts: Sequence[Contact], book: Book) -> list[AddResult]:
        """One addnumber call for 1..CONTACT_BATCH contacts: all added, or the call's ProviderError (a
        request-class code refuses the whole list; the caller halves it to find the number)."""
        if not 1 <= len(contacts) <= self.batch or not book.group:
            raise self.error(RequestError, f"addnumber takes 1 to {self.batch} numbers and a group")
        reply = self.request(Request(ADD, build_add_form(book.group, contacts)), sending=True)
        self.read_reply(reply, sending=True, what=ADD)
        return [AddResult(c.key, AddOutcome.ADDED) for c in contacts]

    def groups(self, parent: str = "0") -> list[Group]:
        """The groups under `parent` (the root by default)."""
        return parse_groups(self.read(Request(LIST, params={"parent": parent}, method="GET")).payload)

    def create_group(self, name: str) -> Group:
        """A new group at the root; its id from `items.groupid`."""
        items = self.read(Request(NEW, {"name": name})).payload
        gid = field(items, "groupid") if isinstance(items, dict) else None
        if gid in (None, ""):
            raise self.error(RequestError, f"{NEW} answered no groupid: {items!r}"[:200])
        return Group(str(gid), name)

    def rename_group(self, group: str, name: str) -> None:
        self.read(Request(EDIT, {"groupid": group, "name": name}))

    def remove_group(self, group: str) -> None:
        self.read(Request(REMOVE, {"groupid": group}))

    def listing(self, group: str) -> Iterator[Listed]:
        """Every readable number of the group, page by page, until a short page (or CONTACT_MAX_PAGES);
        rows without a number are logged once and left out (`read_listing` counts them)."""
        yield from self._pages(group, Unreadable(self.name, LIST_NUMBERS))

    def read_listing(self, group: str) -> Listing:
        """The group's numbers, and how many of its rows could not be read."""
        unread = Unreadable(self.name, LIST_NUMBERS)
        return Listing(frozenset(item.phone for item in self._pages(group, unread)), unread.rows)

    def _pages(self, group: str, unread: Unreadable) -> Iterator[Listed]:
        rows = 0
        for page in range(self.first_page, self.first_page + self.max_pages):
            query = {"groupid": group, "offset": str(self.page_size), "page": str(page)}
            items = self.read(Request(LIST_NUMBERS, params=query, method="GET")).payload
            if not isinstance(items, list | None):
                unread.row("no list of rows", items if isinstance(items, dict) else None)
            yield from parse_listed(items, unread)
            rows += len(dict_rows(items))
            if len(dict_rows(items)) < self.page_size:  # the rows on the page, read or not
                break
        unread.say(rows, "numbers missing from it are not taken as absent from the group")
