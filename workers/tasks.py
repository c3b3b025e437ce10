"""Thin Celery tasks over the plain operations (GOV.UK Notify's provider_tasks, trimmed).

Ids in, one call, re-publish only what the operation asked for (`follow_up`, the same rule the
embedded runner applies). No decisions here: the claim in `send_chunk` makes every task safe to
run twice, which at-least-once delivery will do.
"""

from __future__ import annotations

from functools import cache
from typing import Any

from campaigns.store import Store
from workers.celery_app import app
from workers.deps import ProviderPool, WorkerDeps
from workers.dispatch import MAX_COUNTDOWN, TaskPublisher, follow_up
from workers.operations.housekeeping import housekeeping
from workers.operations.optout import collect_optouts
from workers.operations.poll import batch_message, poll_batch, poll_tick
from workers.operations.reconcile import reconcile_chunk
from workers.operations.send import Outcome
from workers.operations.send_many import send_chunks
from workers.ratelimit import LocalLimiter, RedisLimiter
from workers.settings import DispatchSettings


@cache
def worker_deps() -> WorkerDeps:
    """Built once per worker process, from the environment."""
    settings = DispatchSettings.from_env()
    limiter = LocalLimiter()
    if settings.redis_url:
        import redis

        limiter = RedisLimiter(redis.Redis.from_url(settings.redis_url))
    return WorkerDeps(
        store=Store.from_url(settings.database_url),
        providers=ProviderPool(),
        settings=settings,
        limiter=limiter,
    )


@app.task(name="smsdispatch.send_chunk")
def send_chunk_task(
    chunk_id: int, attempt: int | None = None, reserved: bool = False, more: list[list[int]] | None = None
) -> None:
    """Send the chunk, then the chunks of `more` ([chunk id, attempt] pairs: one message for several,
    `TaskPublisher.send_chunks`), each its own claim, and follow each one up."""
    chunks = [(chunk_id, attempt), *((c, a) for c, a in more or ())]
    send_chunks(chunks, worker_deps(), reserved=reserved, reserve_within=MAX_COUNTDOWN, then=_follow_up)


def _follow_up(outcome: Outcome) -> None:
    follow_up(outcome, PUBLISHER)


@app.task(name="smsdispatch.reconcile")
def reconcile_task(chunk_id: int) -> None:
    reconcile_chunk(chunk_id, worker_deps())


@app.task(name="smsdispatch.poll")
def poll_task() -> None:
    """Beat's tick: claim what is due (a committed claim), a slice at a time (`poll_tick`), and publish one
    poll_batch per batch, with the rows its claim read (`batch_message`)."""
    poll_tick(
        worker_deps(),
        lambda batch: poll_batch_task.delay([d.recipient_id for d in batch], batch_message(batch)),
    )


@app.task(name="smsdispatch.poll_batch")
def poll_batch_task(recipient_ids: list[int], claimed: dict[str, Any] | None = None) -> None:
    """One batch: asked from the rows its claim read, or read by id first (a message without them)."""
    poll_batch(recipient_ids, worker_deps(), claimed=claimed)


@app.task(name="smsdispatch.housekeeping")
def housekeeping_task() -> None:
    """Beat's housekeeping pass: release, reconcile, re-publish, expire (workers.operations.housekeeping);
    the webhooks go apart (`webhooks_task`), so a receiver that never answers holds up no campaign."""
    housekeeping(worker_deps(), PUBLISHER, webhooks=False)


@app.task(name="smsdispatch.webhooks")
def webhooks_task() -> None:
    """Deliver the due webhooks of the outbox (workers.operations.webhooks.deliver_due)."""
    from workers.operations.webhooks import deliver_due

    deliver_due(worker_deps())


@app.task(name="smsdispatch.collect_optouts")
def collect_optouts_task() -> None:
    collect_optouts(worker_deps())


PUBLISHER = TaskPublisher(send_chunk_task, reconcile_task)
