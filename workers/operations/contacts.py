"""Pushing a ledger's numbers into a provider phonebook (`smsdispatch contacts push`; README, "Phonebooks").

The ledger (`campaigns.store.contacts.ContactLedger`) holds each number's state for one provider
account and book; the phonebook client (`workers.providers.phonebook`) makes the calls. The rules:
  * a number is claimed (`pushing`, committed) before the call that adds it, so a crash, a SIGKILL or
    Ctrl-C leaves the numbers in flight `pushing`, never `pending`: nothing is added twice by a rerun;
  * `settle` first, at every run's start and after a call that may have been acted on (a timeout after
    the request left, a 5xx, an unreadable reply): where the provider lists its contacts (Ghasedak's
    `listnumber`), numbers the listing shows become `added` and the others `pending` again; where it
    cannot be asked (Amoot, seed 001 documents no listing) they are held `unknown` with the reason,
    unless the client recognises a duplicate (then a second add is harmless and they go `pending`);
  * a listing with rows that could not be read (no number) proves no number absent: the numbers in
    flight are held `unknown` instead of going `pending`, and a push into a group that existed before
    stops before adding any pending number (`TransientError`, nothing added): it may already be there;
  * a refusal of a one-number call is that number's failure (`failed`, the provider's reason); a
    refusal of several numbers (which does not say whose) halves the call until the number is alone;
  * a transient error puts the numbers back `pending` and waits (the provider's Retry-After, else
    1, 2, 4 … 30 s), at most `max_transient` times in a row; an account error puts them back and stops;
  * calls go at the account's rate (`SMSDISPATCH_<PROVIDER>_RATE`, each phonebook call costing 1), from
    one thread: one push per (account, book) at a time.
"""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from campaigns.contacts import ContactRow, ContactState, ContactTransition
from campaigns.store.contacts import ContactLedger as Ledger
from workers.errors import AccountError, AmbiguousSendError, RequestError, TransientError
from workers.operations.backoff import status_retry_delay
from workers.providers.phonebook import AddOutcome, Book, Contact, Phonebook
from workers.ratelimit import Limiter

log = logging.getLogger("workers.operations.contacts")
T = ContactTransition
FOUND = "found in the provider's listing"
NOT_LISTED = "not in the provider's listing after an interrupted add: pushed again"
UNREADABLE = (
    "the add may have been acted on and {n} rows of {name}'s listing could not be read: held, not added "
    "again (contacts push --retry-unknown adds it again)"
)
NO_LISTING = (
    "the add may have been acted on and {name} has no contact listing to look in: held, not added again "
    "(contacts push --retry-unknown adds it again)"
)


@dataclass
class PushOutcome:
    """What one run did: numbers `found` in the listing, `held` unknown, `ambiguous` calls, and the
    numbers it settled per outcome (`added`, `failed`)."""

    added: int = 0
    failed: int = 0
    found: int = 0
    held: int = 0
    ambiguous: int = 0


def settle(ledger: Ledger, client: Phonebook, book: Book, *, list_all: bool = False) -> PushOutcome:
    """Resolve the numbers left `pushing` (see the module docstring). `list_all`: read the listing even
    when nothing is in flight (a group that existed before: numbers already there are not added again)."""
    out = PushOutcome()
    flying = ledger.in_state(ContactState.PUSHING)
    if client.can_list:
        if not flying and not list_all:
            return out
        listing = client.read_listing(book.group)
        out.found = ledger.found(listing.phones, FOUND)
        rest = [r.id for r in ledger.in_state(ContactState.PUSHING)]
        if not listing.unreadable:
            ledger.move(rest, T.RELEASE, NOT_LISTED)
            return out
        out.held = ledger.move(rest, T.HOLD, UNREADABLE.format(n=listing.unreadable, name=client.name))
        pending = len(ledger.in_state(ContactState.PENDING))
        if list_all and pending:
            raise TransientError(
                f"{listing.unreadable} rows of the group's listing could not be read, so {pending} numbers "
                "may already be in it: nothing was added; run the push again once the listing reads",
                provider=client.name,
            )
    elif client.retries_ambiguous:  # a second add is recognised as a duplicate
        ledger.move([r.id for r in flying], T.RELEASE, "")
        ledger.move([r.id for r in ledger.in_state(ContactState.UNKNOWN)], T.RETRY, "")
    else:
        out.held = ledger.move([r.id for r in flying], T.HOLD, NO_LISTING.format(name=client.name))
    return out


def push(
    ledger: Ledger,
    client: Phonebook,
    book: Book,
    limiter: Limiter,
    *,
    on_done: Callable[[int], None] | None = None,
    sleep: Callable[[float], None] = time.sleep,
    max_transient: int = 5,
    rounds: int = 3,
    list_grace: float = 0.0,
) -> PushOutcome:
    """Push every `pending` number of the ledger (after `settle`); `on_done(n)` after each call with the
    numbers it settled. Raises AccountError (numbers back to pending) and the TransientError that came
    `max_transient` times in a row. `list_grace`: seconds to wait before an ambiguous call's listing."""
    total = PushOutcome()
    token = uuid.uuid4().hex[:16]
    for _ in range(rounds):
        done = _push_pending(ledger, client, book, limiter, token, on_done, sleep, max_transient)
        total.added, total.failed = total.added + done.added, total.failed + done.failed
        total.ambiguous += done.ambiguous
        if not done.ambiguous:
            break
        if client.can_list and list_grace:
            sleep(list_grace)
        again = settle(ledger, client, book)
        total.found += again.found
        total.held += again.held
        if on_done is not None:
            on_done(again.found + again.held)
    return total


def _push_pending(
    ledger: Ledger,
    client: Phonebook,
    book: Book,
    limiter: Limiter,
    token: str,
    on_done: Callable[[int], None] | None,
    sleep: Callable[[float], None],
    max_transient: int,
) -> PushOutcome:
    out = PushOutcome()
    in_a_row = 0
    while rows := ledger.claim(client.batch, token):
        stack: list[Sequence[ContactRow]] = [rows]
        while stack:
            part = stack.pop()
            _wait(limiter, client, sleep)
            try:
                results = client.add([Contact(r.id, r.phone, r.fields) for r in part], book)
            except AmbiguousSendError as exc:  # stays pushing: settled by the listing, or held
                log.warning("%s: add of %d numbers may have been acted on: %s", client.name, len(part), exc)
                out.ambiguous += len(part)
                continue
            except RequestError as exc:
                if len(part) > 1:  # the refusal does not say whose: halve the call
                    half = len(part) // 2
                    stack += [part[half:], part[:half]]
                    continue
                ledger.record([(part[0].id, T.FAIL, exc.describe())])
                out.failed += 1
                _tell(on_done, 1)
                continue
            except TransientError as exc:
                waiting = [r.id for p in (part, *stack) for r in p]
                ledger.move(waiting, T.RELEASE, exc.describe())
                in_a_row += 1
                if in_a_row > max_transient:
                    raise
                sleep(
                    exc.retry_after
                    if exc.retry_after is not None
                    else status_retry_delay(in_a_row, base=1.0, cap=30.0)
                )
                break
            except AccountError:
                ledger.move([r.id for p in (part, *stack) for r in p], T.RELEASE, "")
                raise
            in_a_row = 0
            moves = [(r.key, T.ADDED if r.outcome == AddOutcome.ADDED else T.FAIL, r.reason) for r in results]
            ledger.record(moves)
            out.added += sum(1 for r in results if r.outcome == AddOutcome.ADDED)
            out.failed += sum(1 for r in results if r.outcome != AddOutcome.ADDED)
            _tell(on_done, len(results))
    return out


def _wait(limiter: Limiter, client: Phonebook, sleep: Callable[[float], None]) -> None:
    wait = limiter.acquire(client.settings.account_key, 1, client.settings.rate, reserve_within=float("inf"))
    if wait > 0:
        sleep(wait)


def _tell(on_done: Callable[[int], None] | None, n: int) -> None:
    if on_done is not None and n:
        on_done(n)
