"""Use cases about accounts rather than one campaign: the providers' credentials and balance, and the
suppression list (opt-outs). Plain functions with explicit settings, as in `dispatcher.app`."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any

from campaigns.identity import Permission
from campaigns.store import SuppressionView
from dispatcher.app.actors import Actor, acting, require
from dispatcher.app.common import BadInput, open_store
from dispatcher.config import AppSettings
from workers.deps import ProviderPool, WorkerDeps
from workers.errors import ConfigurationError, ProviderError
from workers.providers import NAMES, client_class


@dataclass(frozen=True)
class ProviderCheck:
    """One provider account: configured (credentials present), ok (balance call answered, or none exists)."""

    provider: str
    configured: bool
    ok: bool
    detail: str = ""
    balance: float | None = None
    unit: str | None = None
    circuit: str | None = None  # the account's circuit as the workers last left it (None: never seen)
    circuit_reason: str | None = None
    checked: bool = True  # False: the provider documents no balance call, so the key was not tried

    def as_json(self) -> dict[str, Any]:
        data: dict[str, Any] = {
            "provider": self.provider,
            "configured": self.configured,
            "ok": self.ok,
            "checked": self.checked,
        }
        if self.balance is not None:
            data |= {"balance": self.balance, "unit": self.unit}
        return data | {"detail": self.detail, "circuit": self.circuit, "circuit_reason": self.circuit_reason}


def check_providers(settings: AppSettings) -> list[ProviderCheck]:
    """Credentials and balance of every provider, in registry order (one balance call each where documented)."""
    rows = []
    for name in NAMES:
        try:
            client = settings.client(name)
        except ConfigurationError as exc:
            rows.append(ProviderCheck(name, configured=False, ok=False, detail=str(exc)))
            continue
        if not client.capabilities.balance:
            detail = "no balance call documented; credentials not checked"
            rows.append(ProviderCheck(name, configured=True, ok=True, detail=detail, checked=False))
            continue
        try:
            bal = client.balance()
        except (ProviderError, NotImplementedError) as exc:
            rows.append(ProviderCheck(name, configured=True, ok=False, detail=str(exc) or type(exc).__name__))
            continue
        rows.append(ProviderCheck(name, configured=True, ok=True, balance=bal.amount, unit=bal.unit))
    return with_circuits(settings, rows)


def price_settings(settings: AppSettings) -> dict[str, dict[str, Any]]:
    """The prices set by the user for each provider (`SMSDISPATCH_<P>_PRICE` or smsdispatch.toml), as
    `PriceTable.as_json()` (`{"source", "prices": {"part" | "gsm7" | "MCI.ucs2": rial}}`), or
    `{"error": line}` for one that cannot be read; providers with none are left out (their own list, where
    they have one, is read at the check). No network call."""
    from pathlib import Path

    from dispatcher.app.prices import configured_prices

    found: dict[str, dict[str, Any]] = {}
    for name in NAMES:
        try:
            table = configured_prices(name, settings.env, Path.cwd())
        except ConfigurationError as exc:
            found[name] = {"error": str(exc)}
            continue
        if table:
            found[name] = table.as_json()
    return found


def send_choices(settings: AppSettings) -> list[tuple[str, str]]:
    """What a campaign can be sent with, for a form: `(value, label)` for each configured provider (its
    credentials set), then each route named in the settings (`SMSDISPATCH_ROUTE_NAME`). No network call."""
    choices: list[tuple[str, str]] = []
    for name in NAMES:
        try:
            settings.client(name)
        except ConfigurationError:
            continue
        choices.append((name, name))
    prefix = "SMSDISPATCH_ROUTE_"
    for key, value in sorted(settings.env.items()):
        if key.startswith(prefix) and value.strip():
            choices.append((key[len(prefix) :].lower(), f"{key[len(prefix) :].lower()}: {value.strip()}"))
    return choices


def with_circuits(settings: AppSettings, rows: list[ProviderCheck]) -> list[ProviderCheck]:
    """Each row with its account's circuit from the store (failover), when a store exists."""
    store = open_store(settings, read_only=True)
    if store is None:
        return rows
    circuits: dict[str, tuple[str, str | None]] = {}
    for h in store.all_health():
        if h.provider not in circuits or h.state != "closed":
            circuits[h.provider] = (h.state, h.reason)
    return [
        replace(
            r,
            circuit=circuits.get(r.provider, (None, None))[0],
            circuit_reason=circuits.get(r.provider, (None, None))[1],
        )
        for r in rows
    ]


# ---- the suppression list ----------------------------------------------------------------------------
def phones_or_fail(values: Sequence[str]) -> list[str]:
    """Every value as E.164, or BadInput naming the first that is not an Iranian mobile."""
    from campaigns.normalise import normalise_one

    phones = []
    for value in values:
        phone, why = normalise_one(value)
        if phone is None:
            raise BadInput(f"{value!r} is {why}; give Iranian mobile numbers such as 09121234567")
        phones.append(phone)
    return phones


@dataclass(frozen=True)
class Suppressions:
    """The suppression list; `added` is how many opt-outs a collection found (None: none was asked for),
    `inboxes` the providers with an inbox call (for a message when none is configured)."""

    rows: list[SuppressionView]
    added: int | None = None
    collected_from: int = 0
    inboxes: tuple[str, ...] = ()


def suppressions(settings: AppSettings, *, collect: bool = False) -> Suppressions:
    """The suppression list; `collect` first reads the configured providers' inboxes for opt-out replies."""
    from workers.operations.optout import collect_optouts, inbox_clients

    store = open_store(settings)
    assert store is not None
    added, collected_from = None, 0
    if collect:
        deps = WorkerDeps(store=store, providers=ProviderPool(settings.env), settings=settings.dispatch)
        collected_from = len(inbox_clients(deps))
        added = collect_optouts(deps)
    inboxes = tuple(n for n in NAMES if client_class(n).capabilities.inbox)
    return Suppressions(store.suppressions(), added, collected_from, inboxes)


@dataclass(frozen=True)
class SuppressionChange:
    changed: int  # numbers added (or removed)
    unchanged: int  # numbers that were already suppressed (or were not)


def suppress(
    settings: AppSettings, values: Sequence[str], reason: str = "", *, actor: Actor | None = None
) -> SuppressionChange:
    """Suppress numbers by hand; every value is checked before anything is written (BadInput). `actor`
    (None: the command line) needs OPTOUT_ADD (Forbidden); the audit records the numbers and who."""
    who = acting(actor)
    require(who, Permission.OPTOUT_ADD)
    numbers = phones_or_fail(values)
    store = open_store(settings)
    assert store is not None
    text = reason.strip() or "added by hand"
    added = store.suppress_by(
        numbers, text if text.startswith("opted out") else f"opted out: {text}", who.who
    )
    return SuppressionChange(added, len(set(numbers)) - added)


def unsuppress(
    settings: AppSettings, values: Sequence[str], *, actor: Actor | None = None
) -> SuppressionChange:
    """Take numbers off the suppression list; BadInput for a value that is not a mobile number. `actor`
    (None: the command line) needs OPTOUT_REMOVE, an admin's (Forbidden); the audit records it."""
    who = acting(actor)
    require(who, Permission.OPTOUT_REMOVE)
    numbers = phones_or_fail(values)
    store = open_store(settings)
    assert store is not None
    removed = store.unsuppress_by(numbers, who.who)
    return SuppressionChange(removed, len(set(numbers)) - removed)
