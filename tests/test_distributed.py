"""Distributed mode with real parts: Redis broker, PostgreSQL store, Celery workers and beat as
subprocesses, the sandbox over HTTP. The sandbox's record is the witness: each number once."""

from __future__ import annotations

import os
import signal
import time

import pytest

from tests.cluster import assert_witnessed, once_each, run_cluster, wait_completed
from tests.conftest import REDIS_URL, require_service

pytestmark = pytest.mark.slow


RABBITMQ_URL = os.environ.get("SMSDISPATCH_TEST_RABBITMQ_URL", "amqp://guest:guest@127.0.0.1:5672//")


@pytest.fixture
def broker(request) -> str:
    return getattr(request, "param", "redis")


@pytest.fixture
def cluster(tmp_path, broker):
    require_service("Redis", "127.0.0.1", 6379)
    import redis

    redis.Redis.from_url(REDIS_URL).flushdb()
    broker_url = REDIS_URL
    if broker == "rabbitmq":
        require_service("RabbitMQ", "127.0.0.1", 5672)
        broker_url = RABBITMQ_URL
    with run_cluster(tmp_path, broker_url) as running:
        yield running


@pytest.mark.parametrize("broker", ["redis", "rabbitmq"], indirect=True)
def test_workers_and_beat_complete_a_campaign(cluster):
    cluster.spawn("worker", "-c", "4", "-n", "w1@%h")
    cluster.spawn("worker", "-c", "4", "-n", "w2@%h")
    cluster.spawn("beat", "-s", str(cluster.tmp / "beat-schedule"))
    campaign, summary = cluster.send(1500)
    counts = wait_completed(cluster.db, campaign)
    assert sum(counts.values()) == summary["recipients"]
    assert set(counts) <= {"delivered", "undelivered", "blacklisted", "failed"}
    once_each(cluster.state, summary["recipients"])
    assert_witnessed(cluster, campaign)


def test_worker_killed_mid_campaign_loses_nothing_and_sends_nothing_twice(cluster):
    cluster.state.latency_ms = 300
    victim = cluster.spawn("worker", "-c", "4", "-n", "victim@%h")
    cluster.spawn("beat", "-s", str(cluster.tmp / "beat-schedule"))
    campaign, summary = cluster.send(3000)
    deadline = time.monotonic() + 60
    while len(cluster.state.accepted("ghasedak")) < 300 and time.monotonic() < deadline:
        time.sleep(0.05)
    os.kill(victim.pid, signal.SIGKILL)  # the whole worker, mid-send
    victim.wait(timeout=10)
    cluster.spawn("worker", "-c", "4", "-n", "survivor@%h")
    counts = wait_completed(cluster.db, campaign, timeout=180)
    assert sum(counts.values()) == summary["recipients"]
    once_each(cluster.state, summary["recipients"])
    assert_witnessed(cluster, campaign)
