"""Shared fixtures: real services (skip with a reason locally, fail in CI), the sandbox on loopback."""

from __future__ import annotations

import os
import socket

import pytest

from dispatcher.sandbox.core import SandboxState, sandbox_env
from dispatcher.sandbox.server import RunningSandbox, start

IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")
POSTGRES_URL = os.environ.get(
    "SMSDISPATCH_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
)
REDIS_URL = os.environ.get("SMSDISPATCH_TEST_REDIS_URL", "redis://127.0.0.1:6379/15")


def _port_open(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=1):
            return True
    except OSError:
        return False


def require_service(name: str, host: str, port: int) -> None:
    """Skip with a clear reason when a service is missing; in CI (CI=true) that is a failure."""
    if _port_open(host, port):
        return
    message = f"{name} is not answering on {host}:{port}; start it (see README, 'Services') to run this test"
    if IN_CI:
        pytest.fail(message)
    pytest.skip(message)


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


def _fresh_postgres_db() -> str:
    """Create a throwaway database on the local server; returns its SQLAlchemy URL."""
    import uuid

    import psycopg
    from sqlalchemy.engine import make_url

    require_service("PostgreSQL", "127.0.0.1", 5432)
    base = make_url(POSTGRES_URL)
    name = f"smsd_test_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(
        host=base.host,
        port=base.port or 5432,
        user=base.username or "postgres",
        dbname="postgres",
        autocommit=True,
    ) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    return base.set(database=name).render_as_string(hide_password=False)


def _drop_postgres_db(url: str) -> None:
    import psycopg
    from sqlalchemy.engine import make_url

    u = make_url(url)
    with psycopg.connect(
        host=u.host, port=u.port or 5432, user=u.username or "postgres", dbname="postgres", autocommit=True
    ) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{u.database}" WITH (FORCE)')


@pytest.fixture(params=["sqlite", "postgres"])
def database_url(request, tmp_path) -> str:
    """A fresh, empty database on each backend the store supports."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'store.db'}"
        return
    url = _fresh_postgres_db()
    try:
        yield url
    finally:
        _drop_postgres_db(url)


@pytest.fixture
def store(database_url):
    from campaigns.store import Store

    s = Store.from_url(database_url)
    s.migrate()
    try:
        yield s
    finally:
        s.engine.dispose()


RABBITMQ_URL = os.environ.get("SMSDISPATCH_TEST_RABBITMQ_URL", "amqp://guest:guest@127.0.0.1:5672//")


@pytest.fixture
def broker(request) -> str:
    return getattr(request, "param", "redis")


@pytest.fixture
def cluster(tmp_path, broker):
    """A real-process cluster (tests/cluster.py) on the test Redis, or on RabbitMQ when parametrised so."""
    import redis

    from tests.cluster import run_cluster  # tests.cluster imports this module

    require_service("Redis", "127.0.0.1", 6379)
    redis.Redis.from_url(REDIS_URL).flushdb()
    broker_url = REDIS_URL
    if broker == "rabbitmq":
        require_service("RabbitMQ", "127.0.0.1", 5672)
        broker_url = RABBITMQ_URL
    with run_cluster(tmp_path, broker_url) as running:
        yield running
