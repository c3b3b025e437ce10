"""What a new user of the web console and the HTTP API ran into (a CRM's developer reading only the README
and the docs page, a marketer in the console, an attacker), each kept as the test that failed before
its fix. The console through FastAPI's TestClient with the sandbox on loopback, as
tests/test_console_pages.py does; the API with real keys, as tests/test_api.py does."""

from __future__ import annotations

import re

import pytest
from fastapi.testclient import TestClient

from dispatcher.config import AppSettings
from tests.support.api import bearer, make_key
from tests.support.cluster import wait_for
from tests.support.console import app_for, console_env, csrf_of, make_users, parse
from tests.test_api import TEXT, Api, api, api_env  # noqa: F401 - the fixtures
from tests.test_console_pages import as_role, sent_campaign


@pytest.fixture
def console(tmp_path, sandbox_environ, monkeypatch):  # noqa: ANN201
    monkeypatch.chdir(tmp_path)
    settings = AppSettings.from_env(console_env(tmp_path, sandbox_environ))
    make_users(settings)
    with TestClient(app_for(settings), base_url="https://testserver") as client:
        yield client, settings, tmp_path


def test_the_campaigns_page_lists_the_newest_first(console):
    client, _, tmp = console
    as_role(client, "sender")
    ids = [sent_campaign(client, tmp, rows=rows) for rows in (20, 30, 40)]
    page = parse(client.get("/campaigns"))
    shown = [int(a["href"].rsplit("/", 1)[1]) for a in page.select("tbody a[href^='/campaigns/']")]
    assert shown == sorted(ids, reverse=True)


SPOOF = "Your password has expired: call 021-5555-0000 and tell us it"


def test_no_page_shows_an_alert_written_into_its_link(console):
    """A link such as /optouts?error=... (mailed to a marketer by anyone) showed its text as the site's own
    red alert: errors are now shown by the answer to the form that failed, never read from the URL."""
    client, _, tmp = console
    as_role(client, "admin")
    checked = client.post(
        "/campaigns/new",
        data={"csrf": csrf_of(client.get("/campaigns/new").text), "provider": "ghasedak", "message": "x"},
        files={"file": ("list.csv", b"phone\n09121234567\n", "text/csv")},
    )
    draft = re.search(r"/drafts/(\d+)", str(checked.url)).group(0)
    for page in ("/optouts", "/users", draft):
        answer = client.get(page, params={"error": SPOOF})
        assert answer.status_code == 200 and SPOOF not in answer.text, page


def test_a_refused_form_answers_with_its_line_on_the_page(console):
    client, _, tmp = console
    as_role(client, "admin")
    token = csrf_of(client.get("/optouts").text)
    answer = client.post("/optouts/add", data={"csrf": token, "phones": "0912 111"}, follow_redirects=False)
    assert answer.status_code == 400 and "کوتاه‌تر از شماره موبایل" in answer.text  # in Persian first
    client.get("/login?lang=en")  # the lines below as English says them
    token = csrf_of(client.get("/optouts").text)
    answer = client.post("/optouts/add", data={"csrf": token, "phones": "0912 111"}, follow_redirects=False)
    assert answer.status_code == 400 and "too short" in answer.text
    token = csrf_of(client.get("/users").text)
    answer = client.post(
        "/users/add",
        data={"csrf": token, "name": "eve", "role": "admin", "password": "short"},
        follow_redirects=False,
    )
    assert answer.status_code == 400 and "10 characters" in answer.text
    checked = client.post(
        "/campaigns/new",
        data={"csrf": csrf_of(client.get("/campaigns/new").text), "provider": "ghasedak", "message": "x"},
        files={"file": ("list.csv", b"phone\n09121234567\n", "text/csv")},
    )
    token = csrf_of(checked.text)
    draft = re.search(r"/drafts/(\d+)", str(checked.url)).group(0)
    answer = client.post(f"{draft}/test", data={"csrf": token, "phones": "12345"}, follow_redirects=False)
    assert answer.status_code == 400 and "too short" in answer.text
    parse(answer)


def test_numbers_pasted_as_a_column_are_added_one_by_one(console):
    """A column copied from Excel arrives as lines: the field is a textarea (an input drops the line
    breaks and glued the numbers into one)."""
    client, _, tmp = console
    as_role(client, "admin")
    page = parse(client.get("/optouts"))
    assert page.find("textarea", {"name": "phones"}) is not None
    assert page.find("input", {"name": "phones"}) is None
    token = csrf_of(client.get("/optouts").text)
    done = client.post("/optouts/add", data={"csrf": token, "phones": "09125551234\r\n0912 555 1235\r\n"})
    assert "۲ شماره" in done.text or "2 numbers" in done.text, done.text[:2000]


# ---- the API, as a CRM's developer wires it ------------------------------------------------------------
def test_an_admin_purges_through_the_api_as_the_readme_says(api: Api):  # noqa: F811 - the fixture
    recipients = [{"phone": f"0912000000{i}", "name": f"n{i}"} for i in range(4)]
    body = {"provider": "ghasedak", "message": TEXT, "window": "any", "recipients": recipients}
    made = api.client.post("/api/v1/campaigns", json=body, headers=api.as_("sender"))
    cid = made.json()["campaign"]
    api.wait_state(cid, "completed")
    refused = api.client.post("/api/v1/purge", json={"older_than_days": 0}, headers=api.as_("sender"))
    assert refused.status_code == 403
    done = api.client.post("/api/v1/purge", json={"older_than_days": 0}, headers=api.as_("admin"))
    assert done.status_code == 200, done.text
    assert done.json()["campaigns"] == [cid] and done.json()["recipients"] == 4
    rows = api.get(f"/api/v1/campaigns/{cid}/recipients").json()
    assert not any(r["phone"].startswith("+98") for r in rows)
    assert api.get(f"/api/v1/campaigns/{cid}").json()["counts"]  # the counts stay
    bad = api.client.post("/api/v1/purge", json={"older_than_days": -1}, headers=api.as_("admin"))
    assert bad.status_code == 400 and bad.json()["error"]["kind"] == "bad_input"


def test_the_rejects_file_an_answer_names_can_be_fetched(api: Api):  # noqa: F811 - the fixture
    """`rejects_file` is a path on the server; the caller fetches the file itself from the API."""
    recipients = [{"phone": "09120000001", "name": "a"}, {"phone": "12345", "name": "bad"}]
    body = {"provider": "ghasedak", "message": TEXT, "window": "any", "recipients": recipients}
    made = api.client.post("/api/v1/campaigns", json=body, headers=api.as_("sender")).json()
    assert made["rejected"] == 1
    got = api.get(f"/api/v1/campaigns/{made['campaign']}/rejects")
    assert got.status_code == 200 and got.headers["content-type"].startswith("text/csv")
    assert "12345" in got.text and "too short" in got.text and "09120000001" not in got.text
    clean = api.client.post(
        "/api/v1/campaigns",
        json={**body, "recipients": [{"phone": "09120000002", "name": "b"}], "name": "clean"},
        headers=api.as_("sender"),
    ).json()
    assert api.get(f"/api/v1/campaigns/{clean['campaign']}/rejects").status_code == 404
    assert api.get("/api/v1/campaigns/99/rejects").status_code == 404


def test_a_key_that_may_not_upload_is_refused_before_its_body_is_read(api: Api, monkeypatch):  # noqa: F811 - the fixture
    """A viewer key's upload was streamed to disk whole (up to the cap) before its 403."""
    big = b"phone\n" + b"09120000001\n" * 2000
    monkeypatch.setitem(api.settings.env, "SMSDISPATCH_MAX_UPLOAD_MB", "0.001")
    answer = api.client.post(
        "/api/v1/campaigns",
        files={"file": ("big.csv", big, "text/csv")},
        data={"provider": "ghasedak", "message": TEXT},
        headers=api.as_("viewer"),
    )
    assert answer.status_code == 403, answer.text
    assert not list((api.tmp / "uploads").glob("*/*"))


def test_an_id_past_the_databases_integers_is_not_found(api: Api, console):  # noqa: F811 - the fixture
    huge = 10**20
    for url in (f"/api/v1/campaigns/{huge}", f"/api/v1/campaigns/{huge}/recipients"):
        answer = api.get(url)
        assert answer.status_code == 404 and answer.json()["error"]["kind"] == "not_found", answer.text
    client, _, _ = console
    as_role(client, "viewer")
    assert client.get(f"/campaigns/{huge}").status_code == 404


def test_the_web_log_says_what_happened_not_the_schema_check_of_every_request(tmp_path, sandbox_environ):
    """Every request checks the schema (open_store), and Alembic logged two INFO lines each time: a
    console tab polling its progress wrote a line a second into the server's log."""
    import os

    import httpx

    from tests.support.api import web_process

    env = {
        **os.environ,
        **sandbox_environ,
        "SMSDISPATCH_BROKER_URL": "",
        "SMSDISPATCH_DATABASE_URL": f"sqlite:///{tmp_path / 'web.db'}",
        "SMSDISPATCH_UPLOAD_DIR": str(tmp_path / "uploads"),
        "SMSDISPATCH_OPTOUT_EVERY": "0",
    }
    settings = AppSettings.from_env(env)
    key, _ = make_key(settings, "viewer")
    with web_process(env, tmp_path) as url:
        for _ in range(5):
            assert httpx.get(url + "/api/v1/campaigns", headers=bearer(key)).status_code == 200
    log = "".join(p.read_text() for p in tmp_path.glob("web-*.log"))
    assert "Uvicorn running" in log
    assert "Context impl" not in log and "setup plugin" not in log and "Will assume" not in log, log


def test_a_missing_campaign_does_not_tell_a_caller_where_the_database_is(api: Api, console):  # noqa: F811 - the fixture
    """The CLI names the database it looked in (a person at the machine needs it); an API caller or a
    console user got the server's path or PostgreSQL address too, and advice to run a command."""
    answer = api.get("/api/v1/campaigns/999")
    assert answer.status_code == 404
    message = answer.json()["error"]["message"]
    assert message == "no campaign 999", message
    client, settings, tmp = console
    as_role(client, "viewer")
    page = client.get("/campaigns/999")
    assert page.status_code == 404 and "کمپین ۹۹۹ نیست" in page.text  # the Persian console's words
    assert "no campaign 999" in client.get("/campaigns/999?lang=en").text
    assert str(tmp) not in page.text and "sqlite" not in page.text


def test_the_progress_poll_brings_the_history_along(console):
    """The progress fragment refreshed in place, but the history did not: a campaign that completed (or
    that a cap paused) showed no such event until a reload. htmx now gets the history out of band."""
    from bs4 import BeautifulSoup

    client, settings, tmp = console
    as_role(client, "sender")
    cid = sent_campaign(client, tmp)  # running: the serve loop is off in these tests
    page = parse(client.get(f"/campaigns/{cid}"))
    assert page.find(id="history") is not None and not page.find(id="history").get("hx-swap-oob")
    token = csrf_of(client.get(f"/campaigns/{cid}/confirm/cancel").text)
    client.post(f"/campaigns/{cid}/cancel", data={"csrf": token}, follow_redirects=False)
    polled = BeautifulSoup(
        client.get(f"/campaigns/{cid}/progress", headers={"HX-Request": "true"}).text, "html5lib"
    )
    history = polled.find(id="history")
    assert history is not None and history["hx-swap-oob"] == "true"
    assert "cancelled" in history.get_text() or "لغو" in history.get_text()
    plain = client.get(f"/campaigns/{cid}/progress").text  # without htmx: the fragment alone
    assert 'id="history"' not in plain


def test_a_webhook_receiver_that_never_answers_holds_up_no_other_campaign(api: Api, monkeypatch):  # noqa: F811
    """The embedded serve loop POSTed the due webhooks one after another, each waiting for its read
    timeout, before it looked for new campaigns again: a CRM whose receiver hung delayed every campaign
    of the server (observed: a campaign picked up 21 s after it was stored, behind two hanging POSTs).
    Webhooks now go out on their own thread, the batch in parallel."""
    import socket
    import threading

    import workers.operations.webhooks as webhooks

    monkeypatch.setattr(webhooks, "TIMEOUT", (3.05, 120.0))  # a stall, if any, is one nobody can miss
    hang = socket.socket()
    hang.bind(("127.0.0.1", 0))
    hang.listen(50)
    held: list[socket.socket] = []
    threading.Thread(target=lambda: [held.append(hang.accept()[0]) for _ in range(50)], daemon=True).start()
    url = f"http://127.0.0.1:{hang.getsockname()[1]}/hooks"
    try:

        def campaign(name: str, phone: str, **extra: str) -> int:
            body = {"provider": "ghasedak", "message": f"{name} {{name}}", "window": "any", "name": name}
            body["recipients"] = [{"phone": phone, "name": name}]
            made = api.client.post("/api/v1/campaigns", json={**body, **extra}, headers=api.as_("sender"))
            assert made.status_code == 201, made.text
            return made.json()["campaign"]

        hooked = campaign("hooked", "09120000011", callback_url=url)
        wait_for(lambda: held, "the first webhook to reach the receiver that never answers", timeout=60)
        plain = campaign("plain", "09120000012")
        # before: only after the hooked POST's 120 s read timeout, which this wait does not reach
        api.wait_state(plain, "completed", timeout=60)
        api.wait_state(hooked, "completed", timeout=60)
    finally:
        hang.close()
        for conn in held:
            conn.close()


def test_an_api_request_that_stores_no_campaign_leaves_no_rejects_file(api: Api):  # noqa: F811 - the fixture
    """A refused request (422) or a dry run kept its rejects file (the refused rows, phone numbers and
    all) in the upload folder for ever: no campaign names it, so no purge ever removed it."""
    rows = [{"phone": "09120000021", "name": "a"}, {"phone": "12345", "name": "bad"}]
    body = {"provider": "ghasedak", "message": TEXT, "window": "any", "recipients": rows}
    dry = api.client.post("/api/v1/campaigns", json={**body, "dry_run": True}, headers=api.as_("operator"))
    assert dry.status_code == 200 and dry.json()["rejected"] == 1
    made = api.client.post("/api/v1/campaigns", json=body, headers=api.as_("sender"))
    assert made.status_code == 201
    again = api.client.post("/api/v1/campaigns", json=body, headers=api.as_("sender"))  # the same: duplicate
    assert again.status_code == 422 and again.json()["error"]["check"] == "duplicate"
    kept = sorted(p.name for p in (api.tmp / "uploads").rglob("*") if p.is_file())
    assert kept == [f"recipients.campaign-{made.json()['campaign']}.rejects.csv"], kept


def test_a_process_checks_a_databases_schema_once_not_at_every_read(tmp_path, monkeypatch):
    """Every use case opened the store with its Alembic upgrade check: ~20 ms of each API read or progress
    poll (of ~45 ms), and on SQLite a write lock (BEGIN IMMEDIATE) taken by every read. A process now
    checks each database once; a SQLite file made anew (another inode) is checked again."""
    from campaigns.store.facade import Store
    from dispatcher.app import open_store

    calls: list[str] = []
    real = Store.migrate

    def counted(self: Store) -> None:
        calls.append(str(self.engine.url))
        real(self)

    monkeypatch.setattr(Store, "migrate", counted)
    settings = AppSettings.from_env({"SMSDISPATCH_DATABASE_URL": f"sqlite:///{tmp_path / 'once.db'}"})
    for _ in range(3):
        assert open_store(settings) is not None
        assert open_store(settings, read_only=True) is not None
    assert len(calls) == 1
    (tmp_path / "once.db").unlink()
    for extra in ("-wal", "-shm"):
        (tmp_path / f"once.db{extra}").unlink(missing_ok=True)
    assert open_store(settings, read_only=True) is None  # gone: a look never creates it
    store = open_store(settings)
    assert len(calls) == 2 and store.campaign(1) is None  # made anew: its schema is there again


@pytest.mark.parametrize("path", ["/login", "/optouts/add"])
def test_a_form_that_takes_no_file_spools_none_to_disk(tmp_path, sandbox_environ, monkeypatch, path):
    """The console's forms are parsed by Starlette, which spools every file part to a temporary file
    whatever its size (only the upload page is capped and streams its own): anyone could write gigabytes
    to the server's disk through /login before its token was even looked at. A form that takes no file
    now refuses one (400) at its headers. Real HTTP (uvicorn in a thread of this process)."""
    import tempfile

    import httpx
    import starlette.formparsers

    from tests.support.console import Served, log_in

    spooled = [0]

    class Counted(tempfile.SpooledTemporaryFile):
        def write(self, data):  # noqa: ANN001, ANN202
            spooled[0] += len(data)
            return super().write(data)

    monkeypatch.setattr(starlette.formparsers, "SpooledTemporaryFile", Counted)
    monkeypatch.chdir(tmp_path)
    settings = AppSettings.from_env(console_env(tmp_path, sandbox_environ))
    make_users(settings)

    def body():  # noqa: ANN202
        yield b'--b\r\nContent-Disposition: form-data; name="junk"; filename="x.bin"\r\n\r\n'
        for _ in range(32):
            yield b"x" * (1 << 20)
        yield b"\r\n--b--\r\n"

    with Served(settings) as served, httpx.Client(base_url=served.url, timeout=60) as client:
        if path != "/login":
            assert log_in(client, "admin").status_code == 303
        answer = client.post(
            path, content=body(), headers={"content-type": "multipart/form-data; boundary=b"}
        )
    assert answer.status_code == 400, answer.status_code
    assert spooled[0] == 0, f"{spooled[0]:,} bytes of a file nobody asked for went to disk"


def test_a_body_nobody_asked_for_is_refused_before_it_is_read(
    api: Api,  # noqa: F811 - the fixture
    tmp_path,
    sandbox_environ,
    monkeypatch,
):
    """FastAPI reads a JSON body whole, and parses it, before the endpoint's key is checked: 300 MB sent
    to POST /api/v1/optouts with no key took the web process to 1.1 GB before its 401. Every body but the
    uploads' (streamed and capped by SMSDISPATCH_MAX_UPLOAD_MB) is capped at 1 MB, before the app reads it."""
    import httpx

    from tests.support.console import Served

    declared = api.client.post(
        "/api/v1/optouts", content=b"x" * (2 << 20), headers={"content-type": "application/json"}
    )
    assert declared.status_code == 413 and declared.json()["error"]["kind"] == "too_large"
    fine = api.client.post(
        "/api/v1/optouts", json={"phones": ["09120000031"] * 5000}, headers=api.as_("operator")
    )
    assert fine.status_code == 200, fine.text  # 5,000 numbers are far under the cap
    monkeypatch.chdir(tmp_path)
    settings = AppSettings.from_env(console_env(tmp_path, sandbox_environ))

    def body():  # noqa: ANN202 - no Content-Length: chunked
        yield b'{"phones": ["'
        for _ in range(64):
            yield b"1" * (1 << 20)
        yield b'"]}'

    with Served(settings) as served:
        streamed = httpx.post(
            served.url + "/api/v1/optouts",
            content=body(),
            headers={"content-type": "application/json"},
            timeout=60,
        )
    assert streamed.status_code == 413, streamed.text  # before: 401, once all 64 MB were parsed
