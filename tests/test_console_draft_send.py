"""A checked draft whose send fails on what changed since its check (a provider's credential gone, the credit
spent): the check page says what, with its override where there is one; no error page, nothing stored."""

from __future__ import annotations

import re

from fastapi.testclient import TestClient

from campaigns.store import Store
from dispatcher.config import AppSettings
from dispatcher.demo.messy import write as write_csv
from tests.support.console import app_for, console_env, csrf_of, make_users, parse
from tests.test_console_pages import as_role, console, upload  # noqa: F401 - the fixture


def test_a_provider_without_a_credential_is_a_message_on_the_page_not_an_error_page(
    tmp_path, sandbox_environ, monkeypatch
):
    """The form (at the check) and the check page (at the send, when the credential went since) say which
    provider lacks what; no error page, no secret."""
    monkeypatch.chdir(tmp_path)
    env = console_env(tmp_path, sandbox_environ)
    settings = AppSettings.from_env(env)
    make_users(settings)
    without = AppSettings.from_env({k: v for k, v in env.items() if k != "SMSDISPATCH_GHASEDAK_APIKEY"})
    path = write_csv(tmp_path / "list.csv", 10, seed=2)
    with TestClient(app_for(without), base_url="https://testserver") as client:
        client.get("/login?lang=en")
        answer = upload(as_role(client, "sender"), path)
        assert answer.status_code == 400
        soup = parse(answer)
        assert soup.find("textarea", {"name": "message"}) is not None  # the form again, not an error page
        line = soup.select_one(".banner.danger").get_text()
        assert "ghasedak" in line and "SMSDISPATCH_GHASEDAK_APIKEY" in line, line
        assert env["SMSDISPATCH_GHASEDAK_APIKEY"] not in answer.text
    with TestClient(app_for(settings), base_url="https://testserver") as client:
        client.get("/login?lang=en")
        draft = upload(as_role(client, "sender"), path).headers["location"]
    with TestClient(app_for(without), base_url="https://testserver") as client:
        client.get("/login?lang=en")
        page = as_role(client, "sender").get(draft)
        sent = client.post(f"{draft}/send", data={"csrf": csrf_of(page.text)}, follow_redirects=False)
        assert sent.status_code == 400, sent.text[:300]
        soup = parse(sent)
        assert soup.find("button", string=re.compile("Send")) is not None  # the check page, to send again
        assert "SMSDISPATCH_GHASEDAK_APIKEY" in soup.select_one(".banner.danger").get_text()


def test_a_check_whose_credit_ran_out_before_its_send_shows_the_refusal_on_its_page(console, sandbox):  # noqa: F811
    """The balance is read again at the send: spent since the check, the check page says so with the
    control that overrides it, nothing is stored; topped up, the same check is sent."""
    client, settings, tmp = console
    client.get("/login?lang=en")
    sandbox.state.credit["ghasedak"] = 1_000
    draft = upload(as_role(client, "sender"), write_csv(tmp / "list.csv", 10, seed=3)).headers["location"]
    sandbox.state.credit["ghasedak"] = 1
    page = client.get(draft)
    refused = client.post(f"{draft}/send", data={"csrf": csrf_of(page.text)}, follow_redirects=False)
    assert refused.status_code == 422, refused.text[:300]
    line = parse(refused).select_one(".banner.danger").get_text()
    assert "credit" in line and "check the file again" in line, line
    assert "Send even though the credit is not enough" in line and "--" not in line, line
    assert Store.from_url(settings.dispatch.database_url).campaigns() == []
    facts = parse(refused).select_one("dl.facts").get_text(" ", strip=True)
    assert "155 rial" in facts and "not enough" in facts, facts  # the balance just read (1 message x 155)
    sandbox.state.credit["ghasedak"] = 1_000
    page = client.get(draft)
    sent = client.post(f"{draft}/send", data={"csrf": csrf_of(page.text)}, follow_redirects=False)
    assert sent.status_code == 303, sent.text[:300]
