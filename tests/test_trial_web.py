"""What a new user of the web console and the HTTP API ran into (a CRM's developer reading only the README
and the docs page, a marketer in the console, an attacker), each kept as the test that failed before
its fix. The console through FastAPI's TestClient with the sandbox on loopback, as
tests/test_console_pages.py does; the API with real keys, as tests/test_api.py does."""

from __future__ import annotations

import re

import pytest
from fastapi.testclient import TestClient

from dispatcher.config import AppSettings
from tests.support.console import app_for, console_env, csrf_of, log_in, make_users, parse
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
