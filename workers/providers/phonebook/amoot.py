"""Amoot's phonebook: `ContactCreate` (seed 001; providers.md Decisions, Amoot).

`POST {base}/ContactCreate`, form-urlencoded, the bare token in `Authorization` (as the send client).
Every parameter of seed 001 is sent, in its order, empty when nothing is mapped to it (as the seed's
PHP sample sends them): `ContactGroupID` 0 (the seed: "disabled, put 0; use Labels"), `Active` true,
`Mobile` (09XXXXXXXXX, the seed's sample), `FName`, `LName`, `GenderType` (`True` = Mr, `False` = Ms,
as C#'s bool.ToString() in the seed's sample; empty when the column says neither), `CompanyTitle`,
`JobTitle`, `Email`, `CityName`, `AddressText`, `BornDate`, `AnniversaryDate`, `CustomText1`..`6`,
`CustomDate1`..`3`, `Labels` (the labels joined with ",", as the seed's samples join them).
The reply is the envelope of every Amoot method: `Status` "Success" (with `Data` = the contact, `ID`
first), or a title of the seed's Status table, classified by the send client's table: a request-class
title (`Mobile_Invalid`, `FirstNameOrLastName_Empty`, ...) is this number's refusal, an account-class
title stops the push, an unknown title after the request left is ambiguous.

Open in the seed, so settings (SMSDISPATCH_AMOOT_<OPTION>):
  CONTACT_DUPLICATE  the Status title ContactCreate answers for a mobile already in the phonebook. The
                     seed does not say (it may create a second contact). Unset (default): an ambiguous
                     ContactCreate (timeout, crash) is held `unknown`, since Amoot has no listing to
                     look in (seed 001 documents none) and a second call could add the number twice.
                     Set: that title counts as added, so ambiguous numbers are simply pushed again.
  The date fields' format: the seed types them `DateTime?` and shows only null; the mapped cell is sent
  as written (write them as the panel expects, e.g. 1990-01-31).
One contact per call: the seed's `Mobile` is one number.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from typing import ClassVar

import requests

from workers.errors import ConfigurationError, RequestError
from workers.providers import phones
from workers.providers.amoot import AmootClient
from workers.providers.base import Request
from workers.providers.phonebook import AddOutcome, AddResult, Book, Contact, Group, Listed, Listing, one_line
from workers.settings import ProviderSettings

METHOD = "ContactCreate"
# Seed 001's parameters after Token (sent as the Authorization header), in the seed's order, with the
# column names a file's header is mapped from by default (compared case-insensitively, `_`/`-`/space
# ignored). ContactGroupID, Active, Mobile and Labels are ours to fill, not mapped.
# fmt: off
FIELDS: dict[str, tuple[str, ...]] = {
    "FName": ("fname", "firstname", "first", "name", "نام"),
    "LName": ("lname", "lastname", "last", "surname", "family", "نامخانوادگی"),
    "GenderType": ("gendertype", "gender", "sex", "جنسیت"),
    "CompanyTitle": ("companytitle", "company", "شرکت"),
    "JobTitle": ("jobtitle", "job", "title", "شغل", "سمت"),
    "Email": ("email", "mail", "ایمیل"),
    "CityName": ("cityname", "city", "شهر"),
    "AddressText": ("addresstext", "address", "آدرس", "نشانی"),
    "BornDate": ("borndate", "birthday", "birthdate", "تاریختولد"),
    "AnniversaryDate": ("anniversarydate", "anniversary", "سالگرد"),
    **{f"CustomText{i}": (f"customtext{i}",) for i in range(1, 7)},
    **{f"CustomDate{i}": (f"customdate{i}",) for i in range(1, 4)},
}
# fmt: on
ORDER = ("ContactGroupID", "Active", "Mobile", *FIELDS, "Labels")
MR = {"true", "1", "m", "male", "man", "mr", "آقا", "مرد"}
MS = {"false", "0", "f", "female", "woman", "ms", "mrs", "خانم", "زن"}


def gender(value: str) -> str:
    """`True` for Mr, `False` for Ms (seed 001: False = خانم, True = آقا); "" when the cell says neither."""
    text = one_line(value).lower()
    return "True" if text in MR else "False" if text in MS else ""


def build_form(contact: Contact, labels: Sequence[str]) -> dict[str, str]:
    """Seed 001's full parameter set for one contact (see the module docstring)."""
    values = {k: one_line(contact.fields.get(k, "")) for k in FIELDS}
    values["GenderType"] = gender(values["GenderType"])
    form = {"ContactGroupID": "0", "Active": "true", "Mobile": phones.national(contact.phone), **values}
    form["Labels"] = ",".join(labels)
    return {k: form[k] for k in ORDER}


class AmootPhonebook(AmootClient):
    """Amoot's phonebook (see the module docstring). No groups (`ContactGroupID` is disabled), labels."""

    fields: ClassVar[Mapping[str, tuple[str, ...]]] = FIELDS
    has_groups: ClassVar[bool] = False
    has_labels: ClassVar[bool] = True
    can_list: ClassVar[bool] = False
    list_grace: ClassVar[float] = 0.0
    option_names = (*AmootClient.option_names, "contact_duplicate")
    batch = 1

    def __init__(self, settings: ProviderSettings, session: requests.Session | None = None) -> None:
        super().__init__(settings, session)
        self.duplicate_title = settings.option("contact_duplicate", "").strip()
        if self.duplicate_title == "Success":
            raise ConfigurationError(f"{settings.env_name('contact_duplicate')}: a title other than Success")

    @property
    def retries_ambiguous(self) -> bool:
        """Whether an ambiguous add may be made again (only when a duplicate is recognised)."""
        return bool(self.duplicate_title)

    def add(self, contacts: Sequence[Contact], book: Book) -> list[AddResult]:
        """One ContactCreate per contact. Raises RequestError for anything but one contact, and the
        ProviderError of the call (a refusal of the number is a RequestError: the caller records it)."""
        if len(contacts) != 1:
            raise self.error(RequestError, f"{METHOD} takes one contact, not {len(contacts)}")
        contact = contacts[0]
        reply = self.request(Request(METHOD, data=build_form(contact, book.labels)), sending=True)
        keep = (self.duplicate_title,) if self.duplicate_title else ()
        envelope = self.read_reply(reply, sending=True, what=METHOD, keep=keep)
        why = "already in the phonebook" if envelope.code == self.duplicate_title else ""
        return [AddResult(contact.key, AddOutcome.ADDED, why)]

    # Seed 001: ContactGroupID is disabled, and no listing call is documented.
    def groups(self) -> list[Group]:
        raise ConfigurationError("Amoot's phonebook has no groups (ContactGroupID is disabled); use labels")

    def create_group(self, name: str) -> Group:
        raise ConfigurationError("Amoot's phonebook has no groups (ContactGroupID is disabled); use labels")

    def listing(self, group: str) -> Iterator[Listed]:
        raise ConfigurationError("Amoot documents no way to list its phonebook")

    def read_listing(self, group: str) -> Listing:
        raise ConfigurationError("Amoot documents no way to list its phonebook")
