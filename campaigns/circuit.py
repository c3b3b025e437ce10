"""Per-account circuit breaker of a failover route (docs/architecture.md, "Failover through a route"): pure decisions over one account's row.

closed     sends go; transient failures in a row are counted
open       an account-level error (credit, credentials, a blocked line) or `threshold` transient
           failures in a row; no send before `probe_at` (opened + cooldown)
half_open  `probe_at` passed and one worker took the probe (a compare-and-set in
           `campaigns.store.health.take_probe`); its send closes the circuit or opens it again

The rows live in the database (`account_health`), written by conditional UPDATEs, so every worker
process of both modes sees one circuit per account without another service.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum


class CircuitState(StrEnum):
    CLOSED = "closed"
    OPEN = "open"
    HALF_OPEN = "half_open"


class Usability(StrEnum):
    """What a send may do with an account right now."""

    USABLE = "usable"  # closed: send
    PROBE = "probe"  # open and its probe is due: one send may try (after taking the probe)
    WAIT = "wait"  # half-open: a probe is in flight; its outcome decides soon
    UNUSABLE = "unusable"  # open, or half-open with a probe in flight


@dataclass(frozen=True)
class Health:
    """One account's circuit as read (`campaigns.store.health.read_health`); a missing row is closed."""

    account: str
    provider: str
    state: CircuitState = CircuitState.CLOSED
    failures: int = 0
    reason: str | None = None
    opened_at: datetime | None = None
    probe_at: datetime | None = None

    def usability(self, now: datetime) -> Usability:
        if self.state == CircuitState.CLOSED:
            return Usability.USABLE
        if self.probe_at is not None and self.probe_at <= now:
            return Usability.PROBE  # open and due; or half-open whose probe outlived its lease
        return Usability.WAIT if self.state == CircuitState.HALF_OPEN else Usability.UNUSABLE


def choose_provider(
    route: tuple[str, ...], health: dict[str, Health], now: datetime, exclude: frozenset[str] = frozenset()
) -> tuple[str, Usability] | None:
    """The provider a chunk should go through: the first of the route (in order) whose account is
    closed; else the first whose probe is due or in flight (so `resume` tries again from the first;
    WAIT: hold the chunk until the probe's outcome); None when every provider not in `exclude` is
    unusable. `health`: provider name -> its account's circuit
    (a provider whose client cannot be built is left out of it, and so never chosen)."""
    candidates = [p for p in route if p not in exclude and p in health]
    for provider in candidates:
        if health[provider].usability(now) == Usability.USABLE:
            return provider, Usability.USABLE
    for provider in candidates:
        how = health[provider].usability(now)
        if how in (Usability.PROBE, Usability.WAIT):
            return provider, how
    return None


def every_reason(route: tuple[str, ...], health: dict[str, Health], problems: dict[str, str]) -> str:
    """`every provider of the route is unusable: ghasedak: <reason>; mediapayamak: <reason>`."""
    parts = []
    for provider in route:
        reason = problems.get(provider) or (health[provider].reason if provider in health else None)
        parts.append(f"{provider}: {reason or 'circuit open'}")
    return "every provider of the route is unusable: " + "; ".join(parts)
