"""housekeeping: the one periodic pass that keeps campaigns moving, in both modes.

Beat's `smsdispatch.housekeeping` task runs it every few seconds with the Celery publisher; the
embedded runner runs it with its in-process publisher. One pass, in this order:

1. release what is due (`release_due`): scheduled campaigns whose time came start (their chunks
   are published now, not after the grace), chunks whose sender vanished (lease over) become
   `unknown`, and campaigns with nothing left to wait for complete;
2. reconcile: every `unknown` chunk with pending recipients is handed to reconciliation;
3. re-publish what is stale (`publish_due`): queued chunks whose message looks lost (published longer
   ago than settings.queued_grace, and the workers took nothing published at or before them for as
   long: the line passed them or stopped; not those waiting behind a backlog) and retries that fell
   due, except in campaigns outside their send window;
4. deliver the due webhooks of the outbox (`workers.operations.webhooks.deliver_due`: each row leased
   first, so two passes never post one together), unless `webhooks=False`: beat, `serve` and an
   embedded `web` deliver them apart, so a receiver that never answers holds up no campaign;
5. fold the counters' per-writer shards (`Store.fold_counts`, PostgreSQL), so a campaign's counters stay
   a few rows whatever the number of worker connections that wrote them.

Every step is a conditional update or a duplicate-safe publish, so running the pass twice, or from
two places at once, is harmless.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from campaigns.clock import utcnow
from workers.deps import WorkerDeps
from workers.dispatch import Publisher, publish_campaign, publish_due


@dataclass(frozen=True)
class Released:
    """Campaign and chunk ids the state transitions of one pass touched."""

    started: list[int] = field(default_factory=list)
    expired_leases: list[int] = field(default_factory=list)
    completed: list[int] = field(default_factory=list)


@dataclass(frozen=True)
class Housekeeping:
    """What one pass did: the transitions, the chunks handed to reconciliation, messages published."""

    released: Released
    reconciling: list[int] = field(default_factory=list)
    published: int = 0
    webhooks: int = 0


def release_due(deps: WorkerDeps, now: datetime | None = None) -> Released:
    """Step 1 alone (no publishing): start due campaigns, expire leases, complete finished campaigns."""
    now = now or utcnow()
    return Released(
        started=deps.store.start_due(now),
        expired_leases=deps.store.expire_leases(now),
        completed=deps.store.complete_finished(now),
    )


def housekeeping(
    deps: WorkerDeps, publisher: Publisher, now: datetime | None = None, *, webhooks: bool = True
) -> Housekeeping:
    """One housekeeping pass (the module docstring's three steps); returns what it did.

    `publisher` receives the chunk ids to send (`send_chunk`) and to reconcile (`reconcile`); nothing
    is sent or reconciled inside this call. Raises what the store raises (a database error).
    """
    released = release_due(deps, now)
    published = 0
    for campaign_id in released.started:  # a scheduled campaign's time came: ring now, not after the grace
        published += publish_campaign(deps.store, campaign_id, publisher, deps.settings.chunks_per_message)
    reconciling = deps.store.unknown_chunks()
    for chunk_id in reconciling:
        publisher.reconcile(chunk_id)
    published += publish_due(deps.store, deps.settings, publisher)
    from workers.operations.webhooks import deliver_due

    delivered = deliver_due(deps, now) if webhooks else 0
    deps.store.fold_counts()
    return Housekeeping(released, reconciling, published, delivered)
