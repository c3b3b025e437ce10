"""The services the tests run against (PostgreSQL, Redis, RabbitMQ): where they are, whether they answer
(skip with a reason locally, fail in CI), and throwaway PostgreSQL databases."""

from __future__ import annotations

import os
import socket

import pytest

IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")
POSTGRES_URL = os.environ.get(
    "SMSDISPATCH_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
)
REDIS_URL = os.environ.get("SMSDISPATCH_TEST_REDIS_URL", "redis://127.0.0.1:6379/15")


def port_open(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=1):
            return True
    except OSError:
        return False


def require_service(name: str, host: str, port: int) -> None:
    """Skip with a clear reason when a service is missing; in CI (CI=true) that is a failure."""
    if port_open(host, port):
        return
    message = f"{name} is not answering on {host}:{port}; start it (see README, 'Services') to run this test"
    if IN_CI:
        pytest.fail(message)
    pytest.skip(message)


RABBITMQ_URL = os.environ.get("SMSDISPATCH_TEST_RABBITMQ_URL", "amqp://guest:guest@127.0.0.1:5672//")


def fresh_postgres_db() -> str:
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


def drop_postgres_db(url: str) -> None:
    import psycopg
    from sqlalchemy.engine import make_url

    u = make_url(url)
    with psycopg.connect(
        host=u.host, port=u.port or 5432, user=u.username or "postgres", dbname="postgres", autocommit=True
    ) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{u.database}" WITH (FORCE)')
