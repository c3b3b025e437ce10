"""Distributed mode with real parts: Redis broker, PostgreSQL store, Celery workers and beat as
subprocesses, the sandbox over HTTP. The sandbox's record is the witness: each number once."""

from __future__ import annotations

import json
import os
import signal
import time

import pytest

from campaigns.store import Store
from tests.support.cluster import assert_witnessed, once_each, wait_completed

pytestmark = pytest.mark.slow


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


def test_send_wait_follows_the_workers_to_completion(cluster):
    """`send --wait` with a broker: enqueue, then two bars read from the database until completed (exit 0)."""
    cluster.spawn("worker", "-c", "4", "-n", "w1@%h")
    cluster.spawn("beat", "-s", str(cluster.tmp / "beat-schedule"))
    done = cluster.send_cli(600, "ghasedak", "--wait", timeout=180)
    assert done.returncode == 0, done.stderr
    summary = json.loads(done.stdout.strip().splitlines()[-1])
    assert summary["state"] == "completed"
    assert "sending" in done.stderr and "delivery" in done.stderr  # the two bars
    view = Store.from_url(cluster.db).campaign(summary["campaign"])
    assert view.state == "completed" and sum(view.counts.values()) == summary["recipients"]
    assert "pending" not in view.counts and "sent" not in view.counts
    once_each(cluster.state, summary["recipients"])
    watched = cluster.cli("watch", str(summary["campaign"]), timeout=60)
    assert watched.returncode == 0, watched.stderr


def test_send_wait_stops_at_a_pause_with_the_reason_and_exit_1(cluster):
    cluster.state.credit["ghasedak"] = 250
    cluster.spawn("worker", "-c", "4", "-n", "w1@%h")
    cluster.spawn("beat", "-s", str(cluster.tmp / "beat-schedule"))
    done = cluster.send_cli(600, "ghasedak", "--wait", timeout=180)
    assert done.returncode == 1, done.stderr
    summary = json.loads(done.stdout.strip().splitlines()[-1])
    assert summary["state"] == "paused"
    assert "paused: ghasedak code 9" in done.stderr
    assert f"smsdispatch resume {summary['campaign']}" in done.stderr
