"""Fixtures only: real services (tests/support/services.py: skip with a reason locally, fail in CI), the
sandbox on loopback, a fresh store on each backend, and a real-process cluster (tests/support/cluster.py)."""

from __future__ import annotations

import pytest

from dispatcher.sandbox.core import SandboxState, sandbox_env
from dispatcher.sandbox.server import RunningSandbox, start
from tests.support.services import (
    RABBITMQ_URL,
    REDIS_URL,
    drop_postgres_db,
    fresh_postgres_db,
    require_service,
)


@pytest.fixture(autouse=True)
def _unreadable_said_afresh() -> None:
    """Each test starts with nothing said about unreadable provider rows (they are said once a process)."""
    from workers.providers.evidence import forget

    forget()


@pytest.fixture
def sandbox() -> RunningSandbox:
    state = SandboxState(seed=7, final_after_s=0.0)
    running = start(state)
    try:
        yield running
    finally:
        running.stop()


@pytest.fixture
def sandbox_environ(sandbox: RunningSandbox) -> dict[str, str]:
    """Environment mapping for clients pointed at the sandbox (not applied to os.environ)."""
    env = sandbox_env(sandbox.url)
    for provider in ("GHASEDAK", "MEDIAPAYAMAK", "AMOOT", "NEGIN"):
        env[f"SMSDISPATCH_{provider}_TIMEOUT"] = "2,2"
    return env


@pytest.fixture(params=["sqlite", "postgres"])
def database_url(request, tmp_path) -> str:
    """A fresh, empty database on each backend the store supports."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'store.db'}"
        return
    url = fresh_postgres_db()
    try:
        yield url
    finally:
        drop_postgres_db(url)


@pytest.fixture
def store(database_url):
    from campaigns.store import Store
    from tests.support.counters import assert_counts_agree

    s = Store.from_url(database_url)
    s.migrate()
    try:
        yield s
        assert_counts_agree(s.engine)  # whatever the test did, the counters equal a recount of the rows
    finally:
        s.engine.dispose()


@pytest.fixture
def broker(request) -> str:
    return getattr(request, "param", "redis")


@pytest.fixture
def cluster(tmp_path, broker):
    """A real-process cluster (tests/support/cluster.py) on the test Redis, or on RabbitMQ when parametrised so."""
    import redis

    from tests.support.cluster import run_cluster

    require_service("Redis", "127.0.0.1", 6379)
    redis.Redis.from_url(REDIS_URL).flushdb()
    broker_url = REDIS_URL
    if broker == "rabbitmq":
        require_service("RabbitMQ", "127.0.0.1", 5672)
        broker_url = RABBITMQ_URL
    with run_cluster(tmp_path, broker_url) as running:
        yield running
