"""Housekeeping publishes a queued chunk again only when its message looks lost, not while it waits in line.

The store's rule (`campaigns.store.queue.stale_chunks`) with chosen clocks on both stores; then the same
operation in both modes: the embedded runner behind a backlog longer than the grace, and Celery workers on
real Redis with messages taken out of the middle of the broker's queue (lost) during such a backlog.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pandas as pd
import pytest
from prometheus_client import REGISTRY
from sqlalchemy import select

from campaigns.plan import plan
from campaigns.store import CampaignSpec, Store, chunks_t
from campaigns.text import Template
from dispatcher.engine.runner import LocalRunner
from dispatcher.sandbox.core import SandboxState
from workers.deps import ProviderPool, WorkerDeps
from workers.settings import DispatchSettings

LEASE = timedelta(seconds=60)
GRACE = timedelta(seconds=60)


def one_per_chunk(store: Store, n: int) -> list[int]:
    """A running campaign of `n` chunks of one recipient, all queued now; their ids in publishing order."""
    df = pd.DataFrame({"row": range(2, n + 2), "phone": [f"+98912{i:07d}" for i in range(n)]})
    spec = CampaignSpec("line", "ghasedak", "ghasedak:x", "", "Hi", False)
    cid = store.create_campaign(spec, plan([df], Template("Hi"), 1, []))
    return [c for c, _ in store.claimable_chunks(limit=n, campaign_id=cid)]


def stale(store: Store, now: datetime) -> list[int]:
    return [c for c, _ in store.stale_chunks(now - GRACE, now)]


def claim(store: Store, chunk_id: int, at: datetime) -> None:
    assert store.claim_chunk(chunk_id, 0, LEASE, now=at) is not None


def test_a_chunk_waiting_in_a_moving_line_is_not_published_again(store: Store) -> None:
    """Published long before the grace, but the workers are still taking messages published before it."""
    t0 = datetime.now(UTC)
    chunks = one_per_chunk(store, 6)
    claim(store, chunks[0], t0 + timedelta(seconds=100))
    claim(store, chunks[1], t0 + timedelta(seconds=110))
    assert stale(store, t0 + timedelta(seconds=130)) == []  # four waiting 130 s behind a 60 s grace
    # the line stops (nothing claimed for a grace period): the broker may have lost what it held
    assert stale(store, t0 + timedelta(seconds=171)) == chunks[2:]


def test_a_message_lost_in_a_moving_line_is_published_again_once_the_line_passed_it(store: Store) -> None:
    """Chunk 3's message is lost while the line keeps moving (chunks published after it are claimed)."""
    t0 = datetime.now(UTC)
    chunks = one_per_chunk(store, 6)
    lost = chunks[3]
    for i, at in ((0, 100), (1, 110), (2, 140), (4, 150), (5, 160)):
        claim(store, chunks[i], t0 + timedelta(seconds=at))
    # chunk 2 (before it in line) was claimed within the grace: the line may not have reached it yet
    assert stale(store, t0 + timedelta(seconds=190)) == []
    # every claim of the last grace period took a message published after it: the line passed it
    assert stale(store, t0 + timedelta(seconds=205)) == [lost]
    assert stale(store, t0 + timedelta(seconds=206)) == []  # published again: not at every pass
    assert store.claim_chunk(lost, 0, LEASE) is not None


def test_a_requeued_chunk_does_not_count_as_taken_from_the_line(store: Store) -> None:
    """A chunk claimed and queued again (published anew) says nothing about where the line stood."""
    t0 = datetime.now(UTC)
    chunks = one_per_chunk(store, 3)
    at = t0 + timedelta(seconds=100)
    first = store.claim_chunk(chunks[0], 0, LEASE, now=at)
    assert first is not None
    # nothing went out: queued again (published anew) at 105 s, its claim at 100 s now before its publish
    assert store.record_send(first, [], requeue=True, now=t0 + timedelta(seconds=105))
    claim(store, chunks[2], t0 + timedelta(seconds=110))
    # only chunk 2's claim took a publish from the line, one after chunk 1's: the line passed chunk 1
    assert stale(store, t0 + timedelta(seconds=130)) == [chunks[1]]


def test_a_retry_claimed_from_its_countdown_message_does_not_hold_the_line_back(store: Store) -> None:
    """A retry is claimed from a message published with a countdown that `queued_at` does not record: its
    claim says nothing about where the line stands (a chunk retrying in a loop would hold it back)."""
    t0 = datetime.now(UTC)
    chunks = one_per_chunk(store, 3)
    first = store.claim_chunk(chunks[0], 0, LEASE, now=t0 + timedelta(seconds=100))
    assert first is not None
    store.chunk_retry(first, "code 10", delay=5, max_attempts=9, now=t0 + timedelta(seconds=100))
    assert store.claim_chunk(chunks[0], 1, LEASE, now=t0 + timedelta(seconds=150)) is not None
    claim(store, chunks[2], t0 + timedelta(seconds=140))
    assert stale(store, t0 + timedelta(seconds=170)) == [chunks[1]]  # the line passed chunk 1


def test_a_chunk_published_ten_graces_ago_is_published_again_however_the_line_moves(store: Store) -> None:
    """A bound on how late a lost message is found, whatever the line's reading says."""
    t0 = datetime.now(UTC)
    chunks = one_per_chunk(store, 3)
    claim(store, chunks[0], t0 + timedelta(seconds=500))
    assert stale(store, t0 + timedelta(seconds=530)) == []  # waiting behind chunk 0, 530 s < 10 graces
    claim(store, chunks[1], t0 + timedelta(seconds=650))
    assert stale(store, t0 + timedelta(seconds=660)) == [chunks[2]]  # 660 s > 10 graces of 60 s


def test_a_chunk_deferred_by_a_long_rate_limit_wait_is_published_when_due_however_the_line_moves(
    store: Store,
) -> None:
    """A worker dropped chunk 2's message, its rate-limit wait too long to hold (`defer_queued`): no message
    waits in line for it, so it is published at the time given even while the line is busy before it."""
    t0 = datetime.now(UTC)
    chunks = one_per_chunk(store, 4)
    assert store.defer_queued(chunks[2], t0 + timedelta(seconds=150))
    for i, at in ((0, 100), (1, 140)):
        claim(store, chunks[i], t0 + timedelta(seconds=at))
    assert stale(store, t0 + timedelta(seconds=149)) == []  # not yet; chunk 3 waits in line
    assert stale(store, t0 + timedelta(seconds=151)) == [chunks[2]]
    assert stale(store, t0 + timedelta(seconds=152)) == []  # once: published since it fell due
    assert not store.defer_queued(chunks[0], t0)  # a claimed chunk is not deferred


def test_a_throttled_send_too_far_ahead_to_book_defers_its_chunk(store, sandbox_environ) -> None:
    """At 1 part/s, the fifth chunk's wait (seconds) is longer than the 10 ms a publisher would hold: its
    message is dropped (no follow-up), and the chunk says when to publish it again."""
    from workers.dispatch import follow_up
    from workers.operations.send import OutcomeKind, send_chunk
    from workers.ratelimit import LocalLimiter

    env = {**sandbox_environ, "SMSDISPATCH_GHASEDAK_RATE": "1/s"}
    deps = WorkerDeps(
        store=store, providers=ProviderPool(env), settings=DispatchSettings(), limiter=LocalLimiter()
    )
    chunks = one_per_chunk(store, 5)
    last = [send_chunk(c, 0, deps, reserve_within=0.01) for c in chunks][-1]
    assert last.kind == OutcomeKind.THROTTLED and not last.reserved
    assert last.requeue_in is not None and last.requeue_in > 0.01

    class Nowhere:
        def send_chunk(self, *a, **k) -> None:
            raise AssertionError("a wait longer than the publisher holds is not published")

        def reconcile(self, chunk_id) -> None: ...

    assert not follow_up(last, Nowhere(), max_countdown=0.01)
    with store.engine.connect() as conn:
        deferred = conn.execute(select(chunks_t.c.next_attempt_at).where(chunks_t.c.id == chunks[4])).scalar()
    assert deferred is not None  # when to publish it again: once its wait can be booked
    due = datetime.now(UTC) + timedelta(seconds=last.requeue_in)
    assert chunks[4] in stale(store, due)  # published when its wait can be booked, before any grace


def republished() -> float:
    return REGISTRY.get_sample_value("smsdispatch_chunks_republished_total") or 0.0


def test_the_embedded_runner_publishes_nothing_again_behind_a_backlog_longer_than_the_grace(
    store, sandbox, sandbox_environ
):
    """120 chunks at 100 ms each on 2 threads (6 s) behind a 3 s grace: every chunk is sent once, and the
    housekeeping passes (every 50 ms) publish none again; the old rule published every waiting chunk."""
    sandbox.state.latency_ms = 100
    settings = DispatchSettings(queued_grace=3.0, poll_intervals=(0.05, 0.1))
    deps = WorkerDeps(store=store, providers=ProviderPool(sandbox_environ), settings=settings)
    chunks = one_per_chunk(store, 120)
    cid = store.load_chunk(chunks[0]).campaign_id
    before = republished()
    result = LocalRunner(deps, threads=2, tick=0.02, housekeeping_every=0.05).send(cid, timeout=120)
    assert not result.timed_out
    assert len(sandbox.state.accepted("ghasedak")) == 120
    assert republished() - before == 0


# ---- Celery workers on real Redis ---------------------------------------------------------------------------
@pytest.fixture
def shared_broker() -> str:
    from tests.support.services import REDIS_URL, require_service

    require_service("Redis", "127.0.0.1", 6379)
    import redis

    redis.Redis.from_url(REDIS_URL).flushdb()
    return REDIS_URL


@pytest.mark.slow
def test_celery_a_backlog_is_not_published_again_and_messages_lost_in_it_are(tmp_path, shared_broker):
    """One worker, 2 threads, 100 ms a call: ~160 chunks (40 messages of 4) take ~8 s, behind a 2 s grace.
    Three messages are taken out of the middle of the broker's queue before the worker reaches them (lost)
    while the rest waits. Every number goes out once; housekeeping publishes again the lost messages'
    chunks (the line passed them), not the backlog: the worker receives the campaign's own messages
    minus the lost plus a few. The old rule published every chunk waiting longer than 2 s every pass."""
    import redis

    from tests.support.cluster import assert_witnessed, run_cluster, wait_completed, wait_for
    from tests.test_faults import received_task_ids
    from workers.celery_app import SEND_QUEUE

    state = SandboxState(seed=13, final_after_s=0.2, latency_ms=100)
    env = {"SMSDISPATCH_GHASEDAK_BATCH": "10", "SMSDISPATCH_QUEUED_GRACE": "2"}
    broker = redis.Redis.from_url(shared_broker)
    with run_cluster(tmp_path, shared_broker, state=state, env=env) as cluster:
        cluster.workers(1, concurrency=2)
        cluster.beat()
        wait_for(lambda: "ready" in cluster.logs("worker"), "the worker to be ready", 60)
        campaign, summary = cluster.send(1600)
        queued = broker.lrange(SEND_QUEUE, 0, -1)
        middle = len(queued) // 2
        lost = [m for m in queued[middle - 1 : middle + 2] if broker.lrem(SEND_QUEUE, 1, m)]
        assert len(lost) == 3 and broker.llen(SEND_QUEUE) > 10, "the worker had already taken them"
        counts = wait_completed(cluster.db, campaign, timeout=120)
        assert sum(counts.values()) == summary["recipients"]
        assert_witnessed(cluster, campaign)
        assert len(state.accepted("ghasedak")) == summary["recipients"]  # each once, the lost ones too
        own = -(-summary["chunks"] // DispatchSettings().chunks_per_message)
        received = sum(received_task_ids(cluster.logs("worker")).values())
        assert received >= own - len(lost) + 1  # the lost chunks came back in at least one message
        assert received <= own - len(lost) + 2 * len(lost)  # ... and the backlog did not
