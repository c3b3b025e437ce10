"""Recipient lists pushed into provider phonebooks: `push_contacts`, `contact_groups`,
`contact_list`.

The file is loaded exactly as `send` loads it (`campaigns.load.RecipientLoader`: normalised,
deduplicated, suppressed numbers left out, the rejects file beside it); each number's provider fields
come from columns (`--map field=column`, else by column name: `fields` of the provider's phonebook
client); the numbers go into the push ledger (`Store.contacts`) and `workers.operations.contacts.push`
adds them. Numbers the provider refused are appended to the rejects file with its reason.
"""

from __future__ import annotations

import csv
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from campaigns.contacts import ContactState, ContactTransition, NewContact
from campaigns.load import RecipientLoader
from campaigns.store.contacts import PushBusy
from campaigns.text import fold_arabic_series
from dispatcher.app.common import BadInput, open_store, resolve_provider
from dispatcher.config import AppSettings
from workers.operations.contacts import push, settle
from workers.providers import phones
from workers.providers.phonebook import NAMES, Book, Group, Listed, Phonebook, phonebook_class
from workers.ratelimit import LocalLimiter

# For people (the sources: seed 001, Amoot's ContactCreate; seed 004, Ghasedak's contact groups).
PHONEBOOKS = {"amoot": "a phonebook with labels", "ghasedak": "contact groups"}


@dataclass(frozen=True)
class PushRequest:
    """`mapping`: "field=column" texts as typed; `labels`: Amoot's labels; `group`: Ghasedak's group name."""

    file: Path
    provider: str
    group: str | None = None
    labels: tuple[str, ...] = ()
    mapping: tuple[str, ...] = ()
    column: str | None = None
    sheet: str | None = None
    rejects: Path | None = None
    retry_unknown: bool = False
    header_row: int | None = None


@dataclass(frozen=True)
class PushSummary:
    """One push run: the file's counts, the ledger's counts after the run (the whole book, earlier
    runs included), what this run did, and the fields mapped (wire field -> column)."""

    provider: str
    book: str  # "group NAME (id N)" or "phonebook"
    loaded: int
    rejected: int
    new: int
    counts: dict[str, int]
    found: int
    held: int
    mapped: dict[str, str] = field(default_factory=dict)
    rejects_file: str = ""
    added_now: int = 0  # added by this run (`counts` holds every run's)
    failed_now: int = 0  # refused in this run
    notices: tuple[str, ...] = ()  # the loader's (which sheet, which row is the header)

    @property
    def complete(self) -> bool:
        """Every number of the book added or failed: nothing pending, in flight or unknown."""
        return all(self.counts.get(s, 0) == 0 for s in ("pending", "pushing", "unknown"))

    def as_json(self) -> dict[str, Any]:
        keys = ("provider", "book", "loaded", "rejected", "new", "counts", "found", "held", "mapped")
        return {k: getattr(self, k) for k in keys} | {
            "rejects_file": self.rejects_file,
            "this_run": {"added": self.added_now, "failed": self.failed_now},
        }


def phonebook(settings: AppSettings, provider: str) -> Phonebook:
    """The phonebook client of a provider with one; BadInput naming the ones there are otherwise."""
    name = resolve_provider(provider)
    if name not in NAMES:
        offer = "; ".join(f"{n} ({why})" for n, why in PHONEBOOKS.items())
        raise BadInput(f"--provider {name}: no phonebook documented for it; choose {offer}")
    cls = phonebook_class(name)
    return cls(cls.load_settings(settings.env))


def _key(text: str) -> str:
    return "".join(ch for ch in text.lower() if ch not in " _-.\u200c")


def resolve_mapping(
    columns: Sequence[str], fields: Mapping[str, Sequence[str]], typed: Sequence[str]
) -> dict[str, str]:
    """Wire field -> column: each `field=column` typed (field matched case-insensitively, the column as
    the header spells it), then, for fields left, the first column whose name is one of the field's
    defaults. BadInput naming the bad pair and the choices."""
    by_field = {f.lower(): f for f in fields}
    out: dict[str, str] = {}
    for pair in typed:
        name, sep, column = (part.strip() for part in pair.partition("="))
        if not sep or not name or not column:
            raise BadInput(f"--map {pair!r}: write it field=column, e.g. --map {next(iter(fields))}=name")
        wire = by_field.get(name.lower())
        if wire is None:
            raise BadInput(f"--map {pair!r}: no field {name!r} here; fields: {', '.join(fields)}")
        if column not in columns:
            raise BadInput(f"--map {pair!r}: no column {column!r} in the file; columns: {', '.join(columns)}")
        out[wire] = column
    taken = set(out.values())
    for wire, names in fields.items():
        if wire in out:
            continue
        wanted = {_key(n) for n in names}
        column = next((c for c in columns if _key(c) in wanted and c not in taken), None)
        if column is not None:
            out[wire] = column
            taken.add(column)
    return out


def _resolve_book(client: Phonebook, request: PushRequest) -> tuple[Book, str, bool]:
    """(book, its label for people, whether it existed before). Creates a missing Ghasedak group."""
    if client.has_groups:
        if request.labels:
            raise BadInput(f"--label is for Amoot's phonebook; {client.name} has groups: use --group NAME")
        name = (request.group or "").strip()
        if not name:
            raise BadInput(f"{client.name} adds numbers to a group: give --group NAME (see: contacts groups)")
        group = next((g for g in client.groups() if g.name == name), None)
        existed = group is not None
        group = group or client.create_group(name)
        return Book(group.id), f"group {name} (id {group.id})", existed
    if request.group:
        raise BadInput(f"{client.name}'s phonebook has no groups (ContactGroupID is disabled): use --label")
    bad = [label for label in request.labels if "," in label or not label.strip()]
    if bad:
        raise BadInput(f"--label {bad[0]!r}: a label is joined with commas on the wire, so none inside it")
    return Book("", tuple(label.strip() for label in request.labels)), "phonebook", False


def _contacts(loader: RecipientLoader, mapped: Mapping[str, str]) -> Iterator[NewContact]:
    """The loaded numbers with their fields, Arabic ي/ك folded to Persian ی/ک as in the messages (a name
    in the phonebook is then spelled as the campaign texts spell it)."""
    for frame in loader.blocks():
        rows = frame["row"].tolist()
        numbers = frame["phone"].tolist()
        values = {
            wire: fold_arabic_series(frame[column].fillna("").astype(str)).tolist()
            for wire, column in mapped.items()
        }
        for i, (row, phone) in enumerate(zip(rows, numbers, strict=True)):
            yield NewContact(phone, {wire: v[i] for wire, v in values.items() if v[i]}, int(row))


def push_contacts(
    settings: AppSettings,
    request: PushRequest,
    *,
    on_total: Callable[[int], None] | None = None,
    on_done: Callable[[int], None] | None = None,
    sleep: Callable[[float], None] | None = None,
) -> PushSummary:
    """Load, enqueue and push (see the module docstring). `on_total(n)`: numbers this run will settle,
    once known; `on_done(n)` after each call. Raises BadInput, LoadError, ConfigurationError (a missing
    credential), and the AccountError or TransientError that stopped the push (what was added stays)."""
    client = phonebook(settings, request.provider)
    if not request.file.exists():
        raise BadInput(f"{request.file}: no such file; check the path")
    store = open_store(settings)
    assert store is not None
    # Its own rejects file: a campaign sent from the same file keeps its own.
    rejects_path = request.rejects or request.file.with_name(request.file.stem + ".contacts.rejects.csv")
    loader = RecipientLoader(
        request.file,
        column=request.column,
        rejects_path=rejects_path,
        suppressed=store.suppressed(),
        sheet=request.sheet,
        header_row=request.header_row,
    )
    others = [c for c in loader.block_columns if c not in ("row", "phone")]
    mapped = resolve_mapping(others, client.fields, request.mapping)
    book, label, existed = _resolve_book(client, request)
    ledger = store.contacts(client.settings.account_key, book.group)
    try:
        with ledger.lock():
            new = ledger.enqueue(_contacts(loader, mapped))
            if request.retry_unknown:
                ledger.move(
                    [r.id for r in ledger.in_state(ContactState.UNKNOWN)], ContactTransition.RETRY, ""
                )
            first = settle(ledger, client, book, list_all=existed)
            if on_total is not None:
                on_total(ledger.counts()[ContactState.PENDING])
            kw: dict[str, Any] = {} if sleep is None else {"sleep": sleep}
            done = push(
                ledger, client, book, LocalLimiter(), on_done=on_done, list_grace=client.list_grace, **kw
            )
    except PushBusy:
        raise BadInput(
            f"another contacts push into {client.name} {label} is running; let it finish"
        ) from None
    counts = ledger.counts()
    failed = ledger.in_state(ContactState.FAILED)
    _append_rejects(rejects_path, len(others), failed)
    return PushSummary(
        provider=client.name,
        book=label,
        loaded=loader.stats.valid,
        rejected=loader.stats.rejected,
        new=new,
        counts={str(k): v for k, v in counts.items()},
        found=first.found + done.found,
        held=first.held + done.held,
        mapped=mapped,
        rejects_file=str(rejects_path),
        added_now=first.added + done.added,
        failed_now=first.failed + done.failed,
        notices=tuple(loader.notices),
    )


def _append_rejects(path: Path, others: int, failed: Sequence[Any]) -> None:
    """The book's refusals (earlier runs' too: the loader rewrote the file), in the loader's rejects
    layout: row, value (0912…), the reason (the provider's error, its name first), then the file's other
    columns left empty."""
    if not failed:
        return
    with path.open("a", encoding="utf-8", newline="") as fh:
        writer = csv.writer(fh)
        for r in failed:
            writer.writerow([r.row, phones.national(r.phone), r.reason, *[""] * others])


def contact_groups(settings: AppSettings, provider: str) -> list[Group]:
    """The provider's contact groups at the root (Ghasedak `contact/group/list`)."""
    client = phonebook(settings, provider)
    if not client.has_groups:
        raise BadInput(
            f"{client.name}'s phonebook has no groups (ContactGroupID is disabled); it uses labels"
        )
    return client.groups()


def contact_list(settings: AppSettings, provider: str, group: str) -> tuple[Group, list[Listed]]:
    """Every number of the group called `group` (Ghasedak `contact/group/listnumber`)."""
    client = phonebook(settings, provider)
    if not client.can_list:
        raise BadInput(f"{client.name} documents no way to list its phonebook; nothing to list")
    found = next((g for g in client.groups() if g.name == group), None)
    if found is None:
        raise BadInput(f"{client.name} has no group {group!r}; see: smsdispatch contacts groups")
    return found, list(client.listing(found.id))
