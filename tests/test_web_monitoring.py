"""The web process's monitoring routes (`dispatcher.web.monitoring.install`) on a FastAPI app: HTTP metrics
by route template (never the raw path, which can hold a phone), the store gauges, the bearer token, the
off switch and /readyz. The app factory of `smsdispatch web` calls the same `install`."""

from __future__ import annotations

import pytest

pytest.importorskip("fastapi")
pytest.importorskip("prometheus_fastapi_instrumentator")

from fastapi import FastAPI  # noqa: E402
from fastapi.testclient import TestClient  # noqa: E402

from dispatcher.config import AppSettings  # noqa: E402
from dispatcher.web.monitoring import install  # noqa: E402
from tests.support.scrape import Scrape  # noqa: E402

PHONE = "989121234567"


def web_app(tmp_path, **env: str) -> FastAPI:
    settings = AppSettings.from_env({"SMSDISPATCH_DATABASE_URL": f"sqlite:///{tmp_path / 'web.db'}", **env})
    from dispatcher.app import open_store

    open_store(settings)  # the schema, as the web app's start does
    app = FastAPI()

    @app.get("/api/v1/recipients/{phone}")
    def recipient(phone: str) -> dict[str, str]:
        return {"phone": "hidden"}

    install(app, settings)
    return app


OK = {"handler": "/api/v1/recipients/{phone}", "method": "GET", "status": "200"}
MISS = {"handler": "none", "status": "404"}


def test_http_metrics_by_route_template_with_the_store_gauges(tmp_path):
    """The counters are the process's (other tests' apps count in them too): the test reads increments."""
    client = TestClient(web_app(tmp_path))
    before = Scrape(client.get("/metrics").text)
    assert client.get(f"/api/v1/recipients/{PHONE}").status_code == 200
    assert client.get(f"/nowhere/{PHONE}").status_code == 404
    response = client.get("/metrics")
    assert response.status_code == 200
    scrape = Scrape(response.text)
    assert scrape.value("http_requests_total", **OK) - before.value("http_requests_total", **OK) == 1
    assert scrape.value("http_requests_total", **MISS) - before.value("http_requests_total", **MISS) == 1
    assert PHONE not in response.text
    assert scrape.value("smsdispatch_store_up") == 1
    assert scrape.value("smsdispatch_campaigns_unattended") == 0
    assert client.get("/readyz").json() == {"ready": True, "checks": {"database": "ok"}}
    assert client.get("/healthz").status_code == 200


def test_a_token_guards_metrics_and_off_turns_them_off(tmp_path):
    guarded = TestClient(web_app(tmp_path, SMSDISPATCH_METRICS_TOKEN="t0ken-for-prometheus"))
    assert guarded.get("/metrics").status_code == 401
    assert guarded.get("/metrics", headers={"Authorization": "Bearer wrong"}).status_code == 401
    assert (
        guarded.get("/metrics", headers={"Authorization": "Bearer t0ken-for-prometheus"}).status_code == 200
    )
    assert guarded.get("/readyz").status_code == 200  # health needs no token
    off = TestClient(web_app(tmp_path, SMSDISPATCH_METRICS="off"))
    assert off.get("/metrics").status_code == 404
    assert off.get("/readyz").status_code == 200


def test_every_app_of_a_process_is_counted_not_only_the_first(tmp_path):
    """The web process makes one app, but a process that makes several (tests, a reload) counts them all."""
    first, second = TestClient(web_app(tmp_path)), TestClient(web_app(tmp_path))
    before = Scrape(second.get("/metrics").text).value("http_requests_total", **OK)
    assert first.get(f"/api/v1/recipients/{PHONE}").status_code == 200
    assert second.get(f"/api/v1/recipients/{PHONE}").status_code == 200
    after = Scrape(second.get("/metrics").text).value("http_requests_total", **OK)
    assert after - before == 2
