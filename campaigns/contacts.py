"""The contact push ledger's states and records (`smsdispatch contacts push`; README, "Phonebooks").

One row per number per (provider account, book): the book is a provider group id, or "" for a
phonebook without groups (Amoot). A number moves like a chunk:

    pending ──claim──▶ pushing ──added──▶ added
                          │ ──fail───▶ failed (the provider's reason)
                          │ ──release─▶ pending   (nothing was added: a refusal before the call, a transient error)
                          │ ──hold────▶ unknown   (the call may have been acted on and cannot be looked up)
    unknown ──retry──▶ pending        (only where a repeated add is harmless)
    pending | pushing | unknown ──found──▶ added  (the provider's listing has the number)

`pushing` is written (committed) before the call, so a crash or Ctrl-C leaves the numbers in flight
`pushing`, and the next run settles them (listing, or hold) before it pushes anything.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class ContactState(StrEnum):
    PENDING = "pending"
    PUSHING = "pushing"
    ADDED = "added"
    FAILED = "failed"
    UNKNOWN = "unknown"


class ContactTransition(StrEnum):
    CLAIM = "claim"
    ADDED = "added"
    FAIL = "fail"
    RELEASE = "release"
    HOLD = "hold"
    RETRY = "retry"
    FOUND = "found"


S = ContactState
CONTACT_TRANSITIONS: dict[ContactTransition, tuple[frozenset[ContactState], ContactState]] = {
    ContactTransition.CLAIM: (frozenset({S.PENDING}), S.PUSHING),
    ContactTransition.ADDED: (frozenset({S.PUSHING}), S.ADDED),
    ContactTransition.FAIL: (frozenset({S.PUSHING}), S.FAILED),
    ContactTransition.RELEASE: (frozenset({S.PUSHING}), S.PENDING),
    ContactTransition.HOLD: (frozenset({S.PUSHING}), S.UNKNOWN),
    ContactTransition.RETRY: (frozenset({S.UNKNOWN}), S.PENDING),
    ContactTransition.FOUND: (frozenset({S.PENDING, S.PUSHING, S.UNKNOWN}), S.ADDED),
}


@dataclass(frozen=True)
class ContactRow:
    """A ledger row: `phone` E.164, `fields` wire field -> text, `row` the file's row number."""

    id: int
    phone: str
    fields: dict[str, str]
    row: int
    state: ContactState
    reason: str = ""


@dataclass(frozen=True)
class NewContact:
    """A number to enqueue: E.164 phone, its mapped fields, the row it came from."""

    phone: str
    fields: dict[str, str]
    row: int
