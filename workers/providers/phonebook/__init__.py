"""Provider phonebooks: adding recipients to an account's contacts (`contacts push`; README, "Phonebooks").

Beside the send clients, not inside them (each provider module stays under 300 lines): a phonebook
client subclasses its provider's `ProviderClient`, so credentials, the envelope, the call-code
table, the redaction of secrets and the error tree are the send client's own.

    amoot.py      Amoot `ContactCreate` (seed 001): one contact per call, labels, no groups, no listing
    ghasedak.py   Ghasedak v2 contact groups (seed 004): `contact/group/new|addnumber|list|listnumber|edit|remove`

What a phonebook client offers (`Phonebook`): `fields` (the wire names a column can be mapped to, each
with the column names taken by default), `batch` (numbers per add call), `add(contacts, book)` (one
`AddResult` per contact, or a `ProviderError` for the whole call: `AmbiguousSendError` when the call
may have been acted on), and, where the provider has them, `groups`, `create_group`, `listing` (the readable
numbers, for people) and `read_listing` (the numbers and how many rows could not be read, for a push:
a listing with unreadable rows is no proof that a number is absent).
"""

from __future__ import annotations

import importlib
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import ClassVar, Protocol

from workers.errors import ConfigurationError
from workers.settings import ProviderSettings

REGISTRY: dict[str, str] = {
    "amoot": "workers.providers.phonebook.amoot:AmootPhonebook",
    "ghasedak": "workers.providers.phonebook.ghasedak:GhasedakPhonebook",
}
NAMES = tuple(REGISTRY)


class AddOutcome(StrEnum):
    """What became of one contact of an add call."""

    ADDED = "added"
    FAILED = "failed"  # the provider refused this number; `reason` says why, in its words


@dataclass(frozen=True)
class Contact:
    """One number to add: `key` is the caller's (the push ledger's row id), `phone` E.164, `fields`
    wire field name -> text (only the fields the provider takes; see `Phonebook.fields`)."""

    key: int
    phone: str
    fields: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class AddResult:
    key: int
    outcome: AddOutcome
    reason: str = ""


@dataclass(frozen=True)
class Group:
    """A contact group as the provider lists it (ids as text)."""

    id: str
    name: str
    parent: str = "0"


@dataclass(frozen=True)
class Listed:
    """One number of a group's listing: E.164 phone, and the fields the provider returned."""

    phone: str
    fields: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Listing:
    """A group's listing as read: the E.164 numbers it shows, and how many of its rows could not be read
    (no number): while there are any, a number absent from `phones` may still be in the group."""

    phones: frozenset[str]
    unreadable: int = 0


@dataclass(frozen=True)
class Book:
    """Where a push goes: `group` (a provider group id, "" for a phonebook without groups) and the
    labels every contact gets (Amoot's `Labels`)."""

    group: str = ""
    labels: tuple[str, ...] = ()


class Phonebook(Protocol):
    name: ClassVar[str]
    fields: ClassVar[Mapping[str, tuple[str, ...]]]  # wire field -> column names mapped by default
    has_groups: ClassVar[bool]
    has_labels: ClassVar[bool]
    can_list: ClassVar[bool]
    settings: ProviderSettings
    batch: int  # numbers per add call
    retries_ambiguous: bool  # whether an add that may have been acted on can simply be made again
    list_grace: float  # seconds before an interrupted add is looked up in the listing

    def add(self, contacts: Sequence[Contact], book: Book) -> list[AddResult]: ...
    def groups(self) -> list[Group]: ...
    def create_group(self, name: str) -> Group: ...
    def listing(self, group: str) -> Iterator[Listed]: ...
    def read_listing(self, group: str) -> Listing: ...


def phonebook_class(name: str) -> type:
    """The phonebook client class of a registered provider; ConfigurationError for one without."""
    target = REGISTRY.get(name)
    if target is None:
        raise ConfigurationError(f"{name} has no phonebook here; choose {' or '.join(NAMES)}")
    module, _, cls = target.partition(":")
    return getattr(importlib.import_module(module), cls)


def build_phonebook(name: str, env: Mapping[str, str] | None = None) -> Phonebook:
    """A phonebook client for the account `env` (os.environ by default) configures."""
    cls = phonebook_class(name)
    return cls(cls.load_settings(env))


def one_line(value: object) -> str:
    """A cell as one line of text (no newlines or surrounding blanks)."""
    return " ".join(str(value or "").split())
