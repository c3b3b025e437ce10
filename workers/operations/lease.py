"""A sending chunk's lease: how long a claim holds a chunk (longer than the slowest provider call, so a live
sender never loses it), the lease of a quick claim, and whether a claim has waited too long for its call to be
made at all (see docs/architecture.md, "How the invariants are kept")."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from campaigns.clock import utcnow
from campaigns.records import ClaimedChunk
from workers.deps import WorkerDeps
from workers.providers.base import ProviderClient


def lease_for(deps: WorkerDeps, client_timeouts: tuple[float, float]) -> timedelta:
    """The lease of a chunk sent through a client with (connect, read) timeouts in seconds: 3 connect tries
    plus the read plus `SMSDISPATCH_LEASE_MARGIN`."""
    connect, read = client_timeouts
    return timedelta(seconds=3 * connect + read + deps.settings.lease_margin)


def quick_terms(deps: WorkerDeps) -> tuple[list[str], timedelta]:
    """The providers a chunk may be claimed for without a peek first (built in this process, no rate limit)
    and the lease that covers the slowest of their calls."""
    return _terms(deps, deps.providers.unlimited())


def ahead_terms(deps: WorkerDeps) -> tuple[list[str], timedelta, float]:
    """`quick_terms` for a claim made one call ahead (while the previous chunk of the message is at the
    provider, `send_many.send_chunks`): the providers, a lease longer by the slowest call (the one it waits
    behind), and those seconds, which `stalled_since_claim` allows it besides the margin.

    Only providers that can be asked whether a send went out (`capabilities.reconcile`): a worker that dies
    holding a chunk claimed ahead leaves it `unknown` though it was never sent, and reconciliation must be
    able to find that out rather than hold its recipients (Negin cannot be asked: providers.md)."""
    clients = [c for c in deps.providers.unlimited() if c.capabilities.reconcile != "none"]
    providers, lease = _terms(deps, clients)
    wait = max(lease.total_seconds() - deps.settings.lease_margin, 0.0) if providers else 0.0
    return providers, lease + timedelta(seconds=wait), wait


def _terms(deps: WorkerDeps, clients: list[ProviderClient]) -> tuple[list[str], timedelta]:
    if not clients:
        return [], timedelta(0)
    lease = max(lease_for(deps, (c.settings.connect_timeout, c.settings.read_timeout)) for c in clients)
    return [c.name for c in clients], lease


def stalled_since_claim(chunk: ClaimedChunk, margin: float, now: datetime | None = None) -> str | None:
    """Why a claimed chunk must not be sent now, or None: more than `margin` seconds (the lease's slack
    beyond the slowest provider call, `SMSDISPATCH_LEASE_MARGIN`) have passed since its claim."""
    since = chunk.sending_since if chunk.sending_since.tzinfo else chunk.sending_since.replace(tzinfo=UTC)
    waited = ((now or utcnow()) - since).total_seconds()
    if waited <= margin:
        return None
    return f"claimed {waited:.1f} s before its call, past the lease margin of {margin:g} s: not sent late"
