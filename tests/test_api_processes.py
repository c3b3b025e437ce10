"""`smsdispatch web` as real processes: two of them on one PostgreSQL store share idempotency keys
(racing requests create one campaign), /healthz answers during a long upload, the API stores from a
50,000-row file exactly what the CLI stores, and in distributed mode real Celery workers send what the
API stores while beat delivers its webhooks. The sandbox's ledger is the witness."""

from __future__ import annotations

import json
import os
import threading
import time

import httpx
import pytest

from campaigns.store import Store
from dispatcher.config import AppSettings
from dispatcher.demo.messy import write as write_demo_csv
from dispatcher.sandbox.core import SandboxState, sandbox_env
from dispatcher.sandbox.server import start
from tests.support.api import WEBHOOK_SECRET, bearer, make_key, receiver, web_process
from tests.support.cluster import FAST_ENV, assert_witnessed, wait_for
from tests.support.services import REDIS_URL, drop_postgres_db, fresh_postgres_db

pytestmark = pytest.mark.slow
TEXT = "Hi {name} لغو11"


def _form(path, **fields):  # noqa: ANN001, ANN202
    return {"provider": "ghasedak", "message": TEXT, "window": "any", **fields}


def _post(
    url: str, key: str, path, headers: dict | None = None, timeout: float = 300, **fields
) -> httpx.Response:  # noqa: ANN001
    with path.open("rb") as fh:
        return httpx.post(
            url + "/api/v1/campaigns",
            files={"file": (path.name, fh, "text/csv")},
            data=_form(path, **fields),
            headers={**bearer(key), **(headers or {})},
            timeout=timeout,
        )


@pytest.fixture
def shared(tmp_path):
    """A PostgreSQL store and a sandbox, and the environment two `web` processes share (embedded mode)."""
    db = fresh_postgres_db()
    state = SandboxState(seed=11, final_after_s=0.0)
    sandbox = start(state)
    env = {
        **os.environ,
        **sandbox_env(sandbox.url),
        **FAST_ENV,
        "SMSDISPATCH_BROKER_URL": "",
        "SMSDISPATCH_DATABASE_URL": db,
        "SMSDISPATCH_UPLOAD_DIR": str(tmp_path / "uploads"),
        "SMSDISPATCH_OPTOUT_EVERY": "0",
        "SMSDISPATCH_HEARTBEAT_EVERY": "0.5",
        "SMSDISPATCH_HEARTBEAT_STALE": "3",
    }
    Store.from_url(db).migrate()
    try:
        yield env, state, db
    finally:
        sandbox.stop()
        drop_postgres_db(db)


def test_two_web_processes_share_idempotency_and_health_answers_during_an_upload(shared, tmp_path):
    env, state, db = shared
    key = make_key(AppSettings.from_env(env), "sender")[0]
    big = write_demo_csv(tmp_path / "big.csv", 50_000, seed=50)
    small = write_demo_csv(tmp_path / "small.csv", 300, seed=12)
    with web_process(env, tmp_path) as one, web_process(env, tmp_path) as two:
        answers: list[httpx.Response] = []
        racers = [
            threading.Thread(
                target=lambda u=u: answers.append(_post(u, key, small, {"Idempotency-Key": "same"}))
            )
            for u in (one, two, one, two)
        ]
        for t in racers:
            t.start()
        for t in racers:
            t.join()
        assert [a.status_code for a in answers] == [201] * 4, [a.text for a in answers]
        assert len({a.json()["campaign"] for a in answers}) == 1
        campaign = answers[0].json()["campaign"]
        listed = httpx.get(two + "/api/v1/campaigns", headers=bearer(key)).json()
        assert [row["campaign"] for row in listed] == [campaign]
        # a long upload in one process: both keep answering /healthz meanwhile
        upload = threading.Thread(target=lambda: answers.append(_post(one, key, big, at="2099-01-01 10:00")))
        upload.start()
        seen = 0
        while upload.is_alive():
            assert httpx.get(one + "/healthz", timeout=5).status_code == 200
            seen += 1
            time.sleep(0.2)
        upload.join()
        assert answers[-1].status_code == 201, answers[-1].text
        assert seen >= 3, "the upload was over before /healthz was asked"
        wait_for(
            lambda: (
                httpx.get(one + f"/api/v1/campaigns/{campaign}", headers=bearer(key)).json()["state"]
                == "completed"
            ),
            "the raced campaign completed",
        )
    counts = {}
    for msg in state.accepted("ghasedak"):
        counts[msg.phone] = counts.get(msg.phone, 0) + 1
    assert set(counts.values()) == {1} and len(counts) == answers[0].json()["recipients"]


def test_fifty_thousand_rows_through_the_api_store_what_the_cli_stores(shared, tmp_path):
    from fastapi.testclient import TestClient

    from dispatcher.web import create_app
    from tests.support.cluster import EXE

    env, _, db = shared
    path = write_demo_csv(tmp_path / "fifty.csv", 50_000, seed=5050)
    settings = AppSettings.from_env(env)
    with TestClient(create_app(settings, background=False)) as client:
        key = make_key(settings, "sender")[0]
        with path.open("rb") as fh:
            answer = client.post(
                "/api/v1/campaigns",
                files={"file": (path.name, fh, "text/csv")},
                data=_form(path, at="2099-01-01 10:00"),
                headers=bearer(key),
            )
    assert answer.status_code == 201, answer.text
    by_api = answer.json()["campaign"]
    cli_db = f"sqlite:///{tmp_path / 'cli.db'}"
    import subprocess

    done = subprocess.run(
        [
            *EXE,
            "send",
            str(path),
            "--provider",
            "ghasedak",
            "--message",
            TEXT,
            "--window",
            "any",
            "--at",
            "2099-01-01 10:00",
            "--json",
        ],
        # a broker named, no worker: the scheduled campaign is stored and left for beat (an embedded
        # `send` would wait here for its time); nothing is published before that time
        env={**env, "SMSDISPATCH_DATABASE_URL": cli_db, "SMSDISPATCH_BROKER_URL": REDIS_URL},
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stderr
    by_cli = json.loads(done.stdout.strip().splitlines()[-1])
    api_body = answer.json()
    for k in (
        "recipients",
        "rejected",
        "chunks",
        "parts",
        "operators",
        "parts_histogram",
        "cost",
        "warnings",
    ):
        assert api_body[k] == by_cli[k], k

    def rows(url: str, campaign: int) -> list[tuple]:
        store = Store.from_url(url)
        try:
            return sorted(
                (r["row"], r["phone"], r["text"], r["fields"], r["parts"])
                for r in _recipients(store, campaign)
            )
        finally:
            store.engine.dispose()

    assert rows(db, by_api) == rows(cli_db, by_cli["campaign"])


def _recipients(store: Store, campaign: int):  # noqa: ANN202
    from sqlalchemy import select

    from campaigns.store.sql import recipients_t as r

    with store.engine.connect() as conn:
        for x in conn.execute(
            select(r.c.row, r.c.phone, r.c.text, r.c.fields, r.c.parts).where(r.c.campaign_id == campaign)
        ):
            yield dict(x._mapping)


def test_distributed_mode_workers_send_what_the_api_stores_and_beat_delivers_webhooks(cluster, tmp_path):
    env = {
        **cluster.env,
        "SMSDISPATCH_WEBHOOK_SECRET": WEBHOOK_SECRET,
        "SMSDISPATCH_WEBHOOK_ALLOW_HOSTS": "127.0.0.1",  # the receiver is on loopback
        "SMSDISPATCH_UPLOAD_DIR": str(tmp_path / "up"),
    }
    cluster.env.update(env)
    Store.from_url(cluster.db).migrate()
    cluster.workers(1, concurrency=2)
    cluster.beat()
    key = make_key(AppSettings.from_env(env), "sender")[0]
    path = write_demo_csv(tmp_path / "d.csv", 200, seed=21)
    with receiver() as box, web_process(env, tmp_path) as url:
        assert httpx.get(url + "/healthz").json()["mode"].startswith("distributed")
        made = _post(url, key, path, {"Idempotency-Key": "d-1"}, callback_url=box.url)
        assert made.status_code == 201, made.text
        cid = made.json()["campaign"]
        again = _post(url, key, path, {"Idempotency-Key": "d-1"}, callback_url=box.url)
        assert again.json()["campaign"] == cid
        wait_for(
            lambda: (
                httpx.get(url + f"/api/v1/campaigns/{cid}", headers=bearer(key)).json()["state"]
                == "completed"
            ),
            "completed by the workers",
            timeout=180,
        )
        wait_for(
            lambda: "completed" in box.events(), "the completed webhook from beat's housekeeping", timeout=60
        )
        assert box.events() == ["running", "completed"]
    assert_witnessed(cluster, cid)


def test_trusted_proxies_decide_whose_forwarded_headers_count(shared, tmp_path, capsys):
    from tests.support.cli import run_cli

    env, _, _ = shared
    forwarded = {"X-Forwarded-Proto": "https", "X-Forwarded-For": "203.0.113.9"}
    for flags, scheme in (((), "http"), (("--trusted-proxies", "127.0.0.1,10.0.0.0/8"), "https")):
        with web_process(env, tmp_path, *flags) as url:
            # a trailing slash is redirected to the URL the server believes it was asked on
            answer = httpx.get(url + "/api/v1/campaigns/", headers=forwarded, follow_redirects=False)
            assert answer.status_code == 307
            assert answer.headers["location"].startswith(scheme + "://"), (flags, answer.headers["location"])
    code, _, err = run_cli(["web", "--trusted-proxies", "10.0.0.0/33"], capsys)
    assert code == 2 and "not an address or network" in err


def test_an_embedded_web_serves_once_the_one_that_served_is_gone(shared, tmp_path):
    from contextlib import ExitStack

    env, state, _ = shared
    key = make_key(AppSettings.from_env(env), "sender")[0]
    with ExitStack() as first, ExitStack() as second:
        one = first.enter_context(web_process(env, tmp_path))
        assert httpx.get(one + "/healthz").json()["mode"].startswith("embedded: sending here")
        two = second.enter_context(web_process(env, tmp_path))
        assert "live `smsdispatch serve`" in httpx.get(two + "/healthz").json()["mode"]
        first.close()  # the one that sent stops; the other's watcher finds no live serve and serves
        made = _post(two, key, write_demo_csv(tmp_path / "after.csv", 50, seed=13))
        assert made.status_code == 201, made.text
        cid = made.json()["campaign"]
        wait_for(
            lambda: (
                httpx.get(two + f"/api/v1/campaigns/{cid}", headers=bearer(key)).json()["state"]
                == "completed"
            ),
            "sent by the web process left",
            timeout=90,
        )
    counts: dict[str, int] = {}
    for msg in state.accepted("ghasedak"):
        counts[msg.phone] = counts.get(msg.phone, 0) + 1
    assert set(counts.values()) == {1}
