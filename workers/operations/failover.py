"""Failover through a campaign's route (docs/architecture.md, "Failover through a route"): the circuit check before a claim, and where a chunk
goes when its provider failed in a way that is KNOWN to have sent nothing.

A chunk moves to another provider of the route only
- before its claim, when its account's circuit is open (nothing was called), or
- after its claimed call raised an account-level error or the last transient failure allowed
  (`SMSDISPATCH_MAX_ATTEMPTS`): both mean the provider took nothing.
An ambiguous send is never moved: the chunk goes `unknown`, is reconciled at the provider that may
have it, and only a `resend` verdict (back to `queued`) lets a later check move what is left.
The move itself is one transaction in the store (`Store.reroute_chunk`, the `reroute` transition).
Campaigns without a route keep the old behaviour (an account error pauses; retries fail at the end);
their circuits are still recorded for `status` and `providers check`.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

from campaigns.circuit import Health, Usability, choose_provider, every_reason
from campaigns.plan import batch_size
from campaigns.store import ClaimedChunk, utcnow
from workers.deps import WorkerDeps
from workers.errors import ConfigurationError
from workers.providers.base import ProviderClient

log = logging.getLogger("workers.failover")


@dataclass(frozen=True)
class RouteView:
    """A route's providers as this process sees them: their clients, config problems and circuits."""

    route: tuple[str, ...]
    clients: dict[str, ProviderClient] = field(default_factory=dict)
    problems: dict[str, str] = field(default_factory=dict)  # provider -> why its client cannot be built
    health: dict[str, Health] = field(default_factory=dict)  # provider -> its account's circuit

    def reasons(self) -> str:
        return every_reason(self.route, self.health, self.problems)


def view_route(deps: WorkerDeps, route: tuple[str, ...]) -> RouteView:
    """Build each provider's client (a configuration error makes that provider unusable) and read the
    circuits of their accounts in one query."""
    view = RouteView(route)
    for name in route:
        try:
            view.clients[name] = deps.providers.get(name)
        except ConfigurationError as exc:
            view.problems[name] = str(exc)
    rows = deps.store.health(c.settings.account_key for c in view.clients.values())
    for name, client in view.clients.items():
        key = client.settings.account_key
        view.health[name] = rows.get(key) or Health(key, name)
    return view


@dataclass(frozen=True)
class Decision:
    """What the pre-claim check says: go on (`proceed`), or the chunk was moved / the campaign paused /
    try later; `spawned`: chunks created by a move, to publish."""

    proceed: bool
    detail: str = ""
    moved: bool = False  # the reroute applied (the chunk is `rerouted`; `spawned` may be empty)
    spawned: tuple[int, ...] = ()
    paused: bool = False
    later: float | None = None


def move(
    deps: WorkerDeps, view: RouteView, chunk_id: int, attempt: int, to: str, reason: str
) -> tuple[int, ...] | None:
    """Re-plan the chunk for provider `to` (its batch, sender line and account); None: it moved on."""
    client = view.clients[to]
    new = deps.store.reroute_chunk(
        chunk_id,
        attempt,
        provider=to,
        account=client.settings.account_key,
        sender=client.settings.sender,
        batch=client.settings.batch,
        personal_batch=batch_size(
            client.settings.batch, personalised=True, provider_personalised=client.capabilities.personalised
        ),
        reason=reason,
    )
    if new is not None:  # one line per move, with counts: a personalised chunk may become 100 chunks
        log.warning(
            "chunk %s: %s (%s)", chunk_id, reason, f"as {len(new)} chunk{'s' if len(new) != 1 else ''}"
        )
    return None if new is None else tuple(new)


def before_claim(
    deps: WorkerDeps, chunk_id: int, attempt: int, provider: str, route: tuple[str, ...]
) -> Decision:
    """The circuit check of a routed chunk before anything is claimed or called.

    The chunk's own account closed: proceed. Open with its probe due and no closed provider ahead of
    it: take the probe (one worker) and proceed. Otherwise move the chunk to the first usable provider
    of the route, or pause the campaign with every reason when there is none.
    """
    view = view_route(deps, route)
    now = utcnow()
    own = view.health.get(provider)
    if own is not None and own.usability(now) == Usability.USABLE:
        return Decision(True)
    choice = choose_provider(route, view.health, now)
    if choice is None:
        reason = view.reasons()
        deps.store.pause_campaign_of_chunk(chunk_id, reason)
        return Decision(False, reason, paused=True)
    target, how = choice
    if target == provider:  # a probe of its own account
        probe = how == Usability.PROBE and own is not None
        if probe and deps.store.take_probe(own.account, deps.settings.circuit_cooldown):
            return Decision(True, "probe")
        return Decision(
            False, f"{provider}: a probe is in flight", later=min(deps.settings.circuit_cooldown, 2.0)
        )
    why = view.problems.get(provider) or (own.reason if own else None) or "circuit open"
    spawned = move(deps, view, chunk_id, attempt, target, f"{provider} unusable ({why}); moved to {target}")
    if spawned is None:
        return Decision(False, "claimed elsewhere or moved on")
    return Decision(False, f"moved to {target}", moved=True, spawned=spawned)


def after_failure(
    deps: WorkerDeps,
    chunk: ClaimedChunk,
    route: tuple[str, ...],
    reason: str,
    *,
    account_level: bool,
    forward_only: bool = False,
) -> Decision | None:
    """A claimed call that is KNOWN to have sent nothing failed for good at this provider (an account
    error, a circuit that opened, or the last transient failure): move the chunk on. It may go to any
    usable provider of the route (its own circuit is open now), except with `forward_only` (retries
    exhausted on a closed circuit): only to one after it in the route, so a chunk never cycles.
    None: nowhere to go, and the caller retries or fails it as before; an account-level error with
    nowhere to go re-queues the chunk and pauses the campaign with every reason."""
    view = view_route(deps, route)
    now = utcnow()
    exclude = {chunk.provider}
    if forward_only and chunk.provider in route:
        exclude |= set(route[: route.index(chunk.provider) + 1])
    choice = choose_provider(route, view.health, now, frozenset(exclude))
    if choice is None:
        if account_level:
            reason = view.reasons()
            deps.store.pause_route(chunk.campaign_id, chunk.chunk_id, chunk.attempt, reason)
            return Decision(False, reason, paused=True)
        return None
    target, _ = choice
    spawned = move(
        deps, view, chunk.chunk_id, chunk.attempt, target, f"{chunk.provider}: {reason}; moved to {target}"
    )
    if spawned is None:  # the chunk moved on meanwhile (its attempt is not ours): nothing to do here
        return Decision(False, "claimed elsewhere or moved on")
    return Decision(False, f"moved to {target}", moved=True, spawned=spawned)
