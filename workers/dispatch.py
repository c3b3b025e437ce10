"""Publishing chunks: only after the commit that queued them, again by housekeeping, and after an outcome.

The database says what is due; a publisher only rings the bell. Two publishers exist: the Celery one
(`TaskPublisher`, the distributed mode's broker) and the embedded runner's in-process one
(`dispatcher.engine.runner.InProcessPublisher`). A duplicate publish is harmless (the claim turns it into a
no-op), a lost one is found by the next housekeeping pass.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import timedelta
from typing import Any, Protocol, runtime_checkable

from campaigns.clock import utcnow
from campaigns.store import Store
from campaigns.windows import closed_windows
from workers.metrics import REPUBLISHED
from workers.operations.send import Outcome
from workers.settings import DispatchSettings

# seconds: never ask a publisher to hold a message longer; later work is a DB row that housekeeping
# publishes when it is due (the broker's visibility timeout must stay longer than this)
MAX_COUNTDOWN = 300
PER_MESSAGE = DispatchSettings.chunks_per_message


@runtime_checkable
class Publisher(Protocol):
    """Where chunk ids go to be sent or reconciled; `countdown`: seconds to hold the message first."""

    def send_chunk(
        self, chunk_id: int, attempt: int | None = None, *, reserved: bool = False, countdown: float = 0.0
    ) -> None: ...

    def reconcile(self, chunk_id: int) -> None: ...


class TaskPublisher:
    """A `Publisher` over Celery tasks (`apply_async`): the distributed mode's broker."""

    def __init__(self, send_task: Any, reconcile_task: Any = None) -> None:
        self.send_task = send_task
        self.reconcile_task = reconcile_task

    def send_chunk(
        self, chunk_id: int, attempt: int | None = None, *, reserved: bool = False, countdown: float = 0.0
    ) -> None:
        if reserved or countdown > 0:
            self.send_task.apply_async((chunk_id, attempt, reserved), countdown=max(countdown, 0.0))
        else:
            self.send_task.apply_async((chunk_id, attempt))

    def send_chunks(self, chunks: Sequence[tuple[int, int | None]]) -> None:
        """One message for several chunks, sent one after another by the task (`send_chunk_task`'s `more`)."""
        (chunk_id, attempt), *more = chunks
        if more:
            self.send_task.apply_async((chunk_id, attempt, False, [list(c) for c in more]))
        else:
            self.send_task.apply_async((chunk_id, attempt))

    def reconcile(self, chunk_id: int) -> None:
        if self.reconcile_task is None:
            raise TypeError("this publisher was given no reconcile task")
        self.reconcile_task.delay(chunk_id)


def as_publisher(target: Publisher | Any) -> Publisher:
    """A `Publisher` as is; a bare Celery send task (the old calling convention) wrapped in one."""
    return target if isinstance(target, Publisher) else TaskPublisher(target)


def follow_up(outcome: Outcome, publisher: Publisher, max_countdown: float = MAX_COUNTDOWN) -> bool:
    """Re-publish a chunk when its send asked for it (`requeue_in`), with that countdown and its booked
    rate-limit slot (`reserved`). A wait longer than `max_countdown` is not held by the publisher:
    the chunk stays due in the database and housekeeping publishes it then (a retry at its
    `next_attempt_at`; a throttled chunk once its wait can be booked, which the send recorded with
    `Store.defer_queued`). The chunks a failover move
    created (`spawned`) are published at once. Returns whether the chunk itself was."""
    for new_id in outcome.spawned:
        publisher.send_chunk(new_id, 0)
    if outcome.requeue_in is None or outcome.requeue_in > max_countdown:
        return False
    publisher.send_chunk(
        outcome.chunk_id, outcome.attempt, reserved=outcome.reserved, countdown=max(outcome.requeue_in, 0.0)
    )
    return True


def publish_chunks(
    publisher: Publisher, chunks: Sequence[tuple[int, int | None]], per_message: int = PER_MESSAGE
) -> None:
    """Publish chunks `per_message` to a message where the publisher can (`send_chunks`: the broker's), else
    one by one (the embedded runner's pool, which has no message to save)."""
    many = getattr(publisher, "send_chunks", None)
    if many is None or per_message <= 1:
        for chunk_id, attempt in chunks:
            publisher.send_chunk(chunk_id, attempt)
        return
    for i in range(0, len(chunks), per_message):
        many(chunks[i : i + per_message])


def publish_campaign(
    store: Store, campaign_id: int, publisher: Publisher | Any, per_message: int = PER_MESSAGE
) -> int:
    """Publish every claimable chunk of a campaign whose rows are committed (none while its window is closed),
    `per_message` chunks to a broker message."""
    publisher = as_publisher(publisher)
    window = store.running_windows().get(campaign_id)
    if window and closed_windows({campaign_id: window}, utcnow()):
        return 0  # housekeeping publishes them once the window opens
    published, last = 0, 0
    while batch := store.claimable_chunks(limit=1000, campaign_id=campaign_id, after_id=last):
        publish_chunks(publisher, batch, per_message)
        published += len(batch)
        last = batch[-1][0]
    return published


def publish_due(
    store: Store, settings: DispatchSettings, publisher: Publisher | Any, limit: int = 5000
) -> int:
    """Re-publish queued chunks whose message looks lost and retries that are due (`Store.stale_chunks`).

    Lost: published longer ago than `settings.queued_grace`, and no message published at or before it
    was taken (claimed) for as long, so the line passed it or stopped. A chunk waiting behind a backlog
    longer than the grace is not published again; the broker is not asked (Redis and RabbitMQ alike).

    Campaigns outside their send window are skipped: their chunks stay queued in the database (no
    message bounces every pass) and are published by the first pass after the window opens. Returns how
    many chunks were published (counted in `smsdispatch_chunks_republished_total`).
    """
    publisher = as_publisher(publisher)
    now = utcnow()
    closed = closed_windows(store.running_windows(), now)
    due = store.stale_chunks(now - timedelta(seconds=settings.queued_grace), now, limit, closed)
    publish_chunks(publisher, due, settings.chunks_per_message)
    REPUBLISHED.inc(len(due))
    return len(due)
