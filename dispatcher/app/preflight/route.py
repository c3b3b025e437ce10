"""The preflight's provider calls for a route: each provider proven (its balance call), and the route judged
as a whole, after every local check has passed.

A provider that cannot be reached, or that refuses our credentials, is unusable. In a failover route
(`--provider ghasedak,mediapayamak`) an unusable provider is skipped: the campaign starts on the first
usable one, the skipped ones stay in the route after the usable ones (a last resort, if they come back),
and the preflight says so with a `route` warning (a refusal under SMSDISPATCH_STRICT). Only when no
provider of the route is usable does the send stop: `ProviderUnreachable` (exit 1) when one of them
could not be reached, `CredentialsRejected` (exit 2) when every one refused the account. The credit
checked is that of the usable providers together, when they report it in one unit (the route sends
until each runs out).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from campaigns.preflight import Check, Finding, Severity
from dispatcher.app.preflight.gather import CredentialsRejected, ProviderUnreachable, prove_credentials
from workers.providers.base import ProviderClient
from workers.status import Balance

__all__ = ["Proof", "RouteProof", "prove_route"]


@dataclass(frozen=True)
class Proof:
    """One provider's balance call: the balance (None: no balance call documented, or unusable), and
    `problem`, one line for people, when it is unusable (`refused`: the account was refused, rather
    than the provider unreachable)."""

    provider: str
    balance: Balance | None = None
    problem: str | None = None
    refused: bool = False

    @property
    def usable(self) -> bool:
        return self.problem is None


@dataclass(frozen=True)
class RouteProof:
    """Every provider of the route, in the route's order, proven."""

    proofs: tuple[Proof, ...]

    @property
    def usable(self) -> tuple[str, ...]:
        return tuple(p.provider for p in self.proofs if p.usable)

    @property
    def skipped(self) -> tuple[Proof, ...]:
        return tuple(p for p in self.proofs if not p.usable)

    @property
    def route(self) -> tuple[str, ...]:
        """The order to send in: the usable providers first (in the route's order), then the skipped."""
        return self.usable + tuple(p.provider for p in self.skipped)

    def credit(self) -> Balance | None:
        """The usable providers' credit: summed when every one reports it in one unit, else the first's."""
        balances = [p.balance for p in self.proofs if p.usable]
        first = balances[0] if balances else None
        if first is None or len(balances) == 1 or any(b is None or b.unit != first.unit for b in balances):
            return first
        return Balance(sum(b.amount for b in balances if b is not None), first.unit)

    def failure(self) -> Exception:
        """Why nothing of the route can send, as the exception to raise: every problem, one line."""
        lines = "; ".join(p.problem or "" for p in self.skipped)
        if len(self.proofs) > 1:
            lines = f"no provider of the route can send: {lines}"
        if all(p.refused for p in self.skipped):
            return CredentialsRejected(lines)
        return ProviderUnreachable(lines)

    def not_checked(self) -> str:
        """The credit line of a dry run that could not ask: `not checked: ghasedak unreachable`."""
        return "not checked: " + ", ".join(
            f"{p.provider} {'refused the account' if p.refused else 'unreachable'}" for p in self.skipped
        )

    def findings(self, *, strict: bool) -> list[Finding]:
        """One `route` finding per skipped provider: a warning, or a refusal under SMSDISPATCH_STRICT."""
        if not self.usable:
            return []
        starts = self.usable[0]
        out = []
        for p in self.skipped:
            message = f"{p.provider} skipped, the campaign starts on {starts}: {p.problem}"
            override = "unset SMSDISPATCH_STRICT" if strict else f"{p.provider} stays last in the route"
            out.append(Finding(Check.ROUTE, Severity.REFUSE if strict else Severity.WARN, message, override))
        return out


def prove(client: ProviderClient) -> Proof:
    """The provider's balance call as a Proof (never raises for the provider's answer)."""
    try:
        return Proof(client.name, prove_credentials(client))
    except CredentialsRejected as exc:
        return Proof(client.name, problem=str(exc), refused=True)
    except ProviderUnreachable as exc:
        return Proof(client.name, problem=str(exc))


def prove_route(clients: Sequence[ProviderClient]) -> RouteProof:
    """Each provider's balance call, in the route's order (one call each where documented)."""
    return RouteProof(tuple(prove(c) for c in clients))
