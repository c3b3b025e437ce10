"""A sending chunk's lease: how long a claim holds a chunk (longer than the slowest provider call, so a live
sender never loses it), the lease of a quick claim, and whether a claim has waited too long for its call to be
made at all (see docs/architecture.md, "How the invariants are kept")."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from campaigns.clock import utcnow
from campaigns.records import ClaimedChunk
from workers.deps import WorkerDeps


def lease_for(deps: WorkerDeps, client_timeouts: tuple[float, float]) -> timedelta:
    """The lease of a chunk sent through a client with (connect, read) timeouts in seconds: 3 connect tries
    plus the read plus `SMSDISPATCH_LEASE_MARGIN`."""
    connect, read = client_timeouts
    return timedelta(seconds=3 * connect + read + deps.settings.lease_margin)


def quick_terms(deps: WorkerDeps) -> tuple[list[str], timedelta]:
    """The providers a chunk may be claimed for without a peek first (built in this process, no rate limit)
    and the lease that covers the slowest of their calls."""
    clients = deps.providers.unlimited()
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
