"""Distributed mode with real parts: Redis broker, PostgreSQL store, Celery workers and beat as
subprocesses, the sandbox over HTTP. The sandbox's record is the witness: each number once."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections import Counter

import pytest

from campaigns.store import Store
from dispatcher.demo import write_demo_csv
from dispatcher.sandbox.core import SandboxState, sandbox_env
from dispatcher.sandbox.server import start
from tests.conftest import REDIS_URL, _drop_postgres_db, _fresh_postgres_db, require_service

pytestmark = pytest.mark.slow
EXE = [sys.executable, "-m", "dispatcher"]


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
    db = _fresh_postgres_db()
    state = SandboxState(seed=21, final_after_s=0.2, latency_ms=50)
    sandbox = start(state)
    env = {
        **os.environ,
        **sandbox_env(sandbox.url),
        "SMSDISPATCH_BROKER_URL": broker_url,
        "SMSDISPATCH_DATABASE_URL": db,
        "SMSDISPATCH_POLL_INTERVALS": "0.5,1",
        "SMSDISPATCH_QUEUED_GRACE": "3",
        "SMSDISPATCH_LEASE_MARGIN": "1",
        "SMSDISPATCH_GHASEDAK_TIMEOUT": "1,2",
        "SMSDISPATCH_GHASEDAK_RECONCILE_GRACE": "2",
    }
    procs: list[subprocess.Popen] = []

    def spawn(*args: str) -> subprocess.Popen:
        log = open(tmp_path / f"{args[0]}-{len(procs)}.log", "w")  # noqa: SIM115 - closed with the process
        proc = subprocess.Popen([*EXE, *args], env=env, cwd=tmp_path, stdout=log, stderr=subprocess.STDOUT)
        procs.append(proc)
        return proc

    try:
        yield {"env": env, "spawn": spawn, "state": state, "db": db, "tmp": tmp_path}
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
            p.wait(timeout=10)
        sandbox.stop()
        _drop_postgres_db(db)


def send(cluster, rows: int) -> tuple[int, set[str]]:
    src = cluster["tmp"] / "list.csv"
    write_demo_csv(src, rows, seed=rows)
    done = subprocess.run(
        [*EXE, "send", str(src), "--provider", "ghasedak", "--message", "Hi {name}", "--json"],
        env=cluster["env"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    summary = json.loads(done.stdout.strip().splitlines()[-1])
    return summary["campaign"], summary


def wait_completed(db: str, campaign_id: int, timeout: float = 120) -> dict:
    store = Store.from_url(db)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        view = store.campaign(campaign_id)
        if view.state == "completed":
            return view.counts
        time.sleep(0.5)
    raise AssertionError(f"campaign not completed: {store.campaign(campaign_id)}")


def once_each(state: SandboxState, expected: int) -> None:
    counts = Counter(m.phone for m in state.accepted("ghasedak"))
    assert set(counts.values()) == {1}, "a number was sent twice"
    assert len(counts) == expected


@pytest.mark.parametrize("broker", ["redis", "rabbitmq"], indirect=True)
def test_workers_and_beat_complete_a_campaign(cluster):
    cluster["spawn"]("worker", "-c", "4", "-n", "w1@%h")
    cluster["spawn"]("worker", "-c", "4", "-n", "w2@%h")
    cluster["spawn"]("beat", "-s", str(cluster["tmp"] / "beat-schedule"))
    campaign, summary = send(cluster, 1500)
    counts = wait_completed(cluster["db"], campaign)
    assert sum(counts.values()) == summary["recipients"]
    assert set(counts) <= {"delivered", "undelivered", "blacklisted", "failed"}
    once_each(cluster["state"], summary["recipients"])


def test_worker_killed_mid_campaign_loses_nothing_and_sends_nothing_twice(cluster):
    cluster["state"].latency_ms = 300
    victim = cluster["spawn"]("worker", "-c", "4", "-n", "victim@%h")
    cluster["spawn"]("beat", "-s", str(cluster["tmp"] / "beat-schedule"))
    campaign, summary = send(cluster, 3000)
    deadline = time.monotonic() + 60
    while len(cluster["state"].accepted("ghasedak")) < 300 and time.monotonic() < deadline:
        time.sleep(0.05)
    os.kill(victim.pid, signal.SIGKILL)  # the whole worker, mid-send
    victim.wait(timeout=10)
    cluster["spawn"]("worker", "-c", "4", "-n", "survivor@%h")
    counts = wait_completed(cluster["db"], campaign, timeout=180)
    assert sum(counts.values()) == summary["recipients"]
    once_each(cluster["state"], summary["recipients"])


def test_send_wait_follows_the_workers_to_completion(cluster):
    """`send --wait` with a broker: enqueue, then two bars read from the database until completed (exit 0)."""
    cluster["spawn"]("worker", "-c", "4", "-n", "w1@%h")
    cluster["spawn"]("beat", "-s", str(cluster["tmp"] / "beat-schedule"))
    src = cluster["tmp"] / "list.csv"
    write_demo_csv(src, 600, seed=6)
    done = subprocess.run(
        [*EXE, "send", str(src), "--provider", "ghasedak", "--message", "Hi {name}", "--wait", "--json"],
        env=cluster["env"],
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert done.returncode == 0, done.stderr
    summary = json.loads(done.stdout.strip().splitlines()[-1])
    assert summary["state"] == "completed"
    assert "sending" in done.stderr and "delivery" in done.stderr  # the two bars
    view = Store.from_url(cluster["db"]).campaign(summary["campaign"])
    assert view.state == "completed" and sum(view.counts.values()) == summary["recipients"]
    assert "pending" not in view.counts and "sent" not in view.counts
    once_each(cluster["state"], summary["recipients"])
    watched = subprocess.run(
        [*EXE, "watch", str(summary["campaign"])],
        env=cluster["env"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert watched.returncode == 0, watched.stderr


def test_send_wait_stops_at_a_pause_with_the_reason_and_exit_1(cluster):
    cluster["state"].credit["ghasedak"] = 250
    cluster["spawn"]("worker", "-c", "4", "-n", "w1@%h")
    cluster["spawn"]("beat", "-s", str(cluster["tmp"] / "beat-schedule"))
    src = cluster["tmp"] / "list.csv"
    write_demo_csv(src, 600, seed=6)
    done = subprocess.run(
        [*EXE, "send", str(src), "--provider", "ghasedak", "--message", "Hi {name}", "--wait", "--json"],
        env=cluster["env"],
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert done.returncode == 1, done.stderr
    summary = json.loads(done.stdout.strip().splitlines()[-1])
    assert summary["state"] == "paused"
    assert "paused: ghasedak code 9" in done.stderr
    assert f"smsdispatch resume {summary['campaign']}" in done.stderr
