"""/healthz and /readyz: alive while the process runs; ready only while its database, broker and Redis
answer, naming the one that does not. A PostgreSQL server of the test's own is stopped and started."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys

import pytest

from tests.support.cluster import free_port, wait_for
from tests.support.private_pg import PrivatePostgres
from tests.support.scrape import Scrape, get, wait_up
from workers.health import Readiness
from workers.settings import DispatchSettings


def ready(port: int) -> tuple[int, dict]:
    status, body = get(f"http://127.0.0.1:{port}/readyz")
    return status, json.loads(body)


@pytest.mark.slow
def test_readyz_follows_its_postgresql_down_and_back(tmp_path):
    with PrivatePostgres() as pg:
        env = {
            **os.environ,
            "SMSDISPATCH_DATABASE_URL": pg.url,
            "SMSDISPATCH_METRICS_STORE_EVERY": "0.5",
            "SMSDISPATCH_OPTOUT_EVERY": "0",
        }
        env.pop("SMSDISPATCH_BROKER_URL", None)
        port = free_port()
        log = (tmp_path / "serve.log").open("w")
        serve = subprocess.Popen(
            [sys.executable, "-m", "dispatcher", "serve", "--metrics-port", str(port)],
            env=env,
            cwd=tmp_path,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        try:
            wait_up(port)
            assert ready(port) == (200, {"ready": True, "checks": {"database": "ok"}})
            assert Scrape.of(port).value("smsdispatch_store_up") == 1

            pg.stop()
            status, body = wait_for(
                lambda: (r := ready(port))[0] == 503 and r, "/readyz to say not ready", 30
            )
            assert body["ready"] is False and body["checks"]["database"] != "ok"
            assert get(f"http://127.0.0.1:{port}/healthz")[0] == 200  # alive all the same
            wait_for(
                lambda: Scrape.of(port).value("smsdispatch_store_up") == 0,
                "the store gauges to say unread",
                30,
            )

            pg.start()
            wait_for(lambda: ready(port)[0] == 200, "/readyz to be ready again", 60)
            assert ready(port)[1] == {"ready": True, "checks": {"database": "ok"}}
        finally:
            serve.send_signal(signal.SIGTERM)
            try:
                serve.wait(timeout=60)
            except subprocess.TimeoutExpired:
                serve.kill()


def test_readiness_names_the_broker_and_redis_that_do_not_answer(tmp_path):
    dead = free_port()  # nothing listens there
    settings = DispatchSettings(
        database_url=f"sqlite:///{tmp_path / 'ok.db'}",
        broker_url=f"redis://:hunter2-secret@127.0.0.1:{dead}/0",
        redis_url=f"redis://127.0.0.1:{free_port()}/1",
    )
    verdict = Readiness(settings, timeout=1).check().as_json()
    assert verdict["ready"] is False
    assert verdict["checks"]["database"] == "ok"
    assert verdict["checks"]["broker"] != "ok" and verdict["checks"]["redis"] != "ok"
    assert "ConnectionError" in verdict["checks"]["broker"]
    assert "hunter2-secret" not in json.dumps(verdict)


def test_readiness_of_a_live_redis():
    from tests.support.services import REDIS_URL, require_service

    require_service("Redis", "127.0.0.1", 6379)
    settings = DispatchSettings(database_url="sqlite://", broker_url=REDIS_URL, redis_url=REDIS_URL)
    assert Readiness(settings).check().as_json() == {
        "ready": True,
        "checks": {"database": "ok", "broker": "ok"},
    }
