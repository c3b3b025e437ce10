"""The security of a browser session, one test per promise (each fails without its feature): the cookie's
flags and when it is Secure (a trusted proxy's X-Forwarded-Proto decides), server-side sessions shared
by every process, rotated at login, ended at logout, when the user is disabled, when idle or too old;
the CSRF token and the Origin check on every state-changing request; CSP with nonces, frame-ancestors
and nosniff; the login throttling through the form; the API never taking the session cookie."""

from __future__ import annotations

from datetime import timedelta

import pytest
from fastapi.testclient import TestClient
from uvicorn.middleware.proxy_headers import ProxyHeadersMiddleware

from dispatcher.app import identity, sessions
from dispatcher.config import AppSettings
from tests.support.console import PASSWORD, app_for, console_env, csrf_of, log_in, make_users


@pytest.fixture
def settings(tmp_path, sandbox_environ, monkeypatch) -> AppSettings:
    monkeypatch.chdir(tmp_path)
    found = AppSettings.from_env(console_env(tmp_path, sandbox_environ))
    make_users(found)
    return found


@pytest.fixture
def client(settings):  # noqa: ANN201
    with TestClient(app_for(settings), base_url="https://testserver") as found:
        yield found


def session_cookie(response) -> str:  # noqa: ANN001
    cookies = [v for k, v in response.headers.multi_items() if k == "set-cookie" and "smsd_session=" in v]
    assert cookies, "no session cookie set"
    return cookies[0]


def token_of(cookie: str) -> str:
    return cookie.split("=", 1)[1].split(";", 1)[0]


def test_the_session_cookie_is_httponly_lax_and_secure_with_the_host_prefix(client):
    cookie = session_cookie(log_in(client, "sender"))
    parts = {p.strip().lower() for p in cookie.split(";")}
    assert cookie.startswith("__Host-smsd_session=")
    assert {"httponly", "secure", "samesite=lax", "path=/"} <= parts
    assert not any(p.startswith("domain=") for p in parts)


def test_plain_http_is_insecure_only_from_loopback(settings):
    app = app_for(settings)
    with TestClient(app, base_url="http://127.0.0.1", client=("127.0.0.1", 40000)) as local:
        cookie = session_cookie(log_in(local, "sender"))
        assert cookie.startswith("smsd_session=") and "secure" not in cookie.lower()
    with TestClient(app, base_url="http://console.example", client=("203.0.113.9", 40000)) as remote:
        page = remote.get("/login")
        assert "secure" in page.headers["set-cookie"].lower()  # even the login token is never sent in clear


def test_behind_a_trusted_proxy_its_forwarded_proto_decides(settings):
    app = app_for(settings)
    trusted = ProxyHeadersMiddleware(app, trusted_hosts=["127.0.0.1"])
    https = {"x-forwarded-proto": "https", "x-forwarded-for": "127.0.0.1"}
    with TestClient(trusted, base_url="http://127.0.0.1", client=("127.0.0.1", 40000)) as proxied:
        page = proxied.get("/login", headers=https)
        assert page.headers["set-cookie"].startswith("__Host-smsd_login=")
        assert "secure" in page.headers["set-cookie"].lower()
    untrusted = ProxyHeadersMiddleware(app, trusted_hosts=["10.9.9.9"])
    with TestClient(untrusted, base_url="http://127.0.0.1", client=("127.0.0.1", 40000)) as direct:
        page = direct.get("/login", headers=https)  # nobody we trust said so: plain HTTP from loopback
        assert page.headers["set-cookie"].startswith("smsd_login=")
        assert "secure" not in page.headers["set-cookie"].lower()


def test_sessions_live_in_the_store_shared_by_every_web_process(settings, client):
    token = token_of(session_cookie(log_in(client, "sender")))
    with TestClient(app_for(settings), base_url="https://testserver") as other:  # another app, same store
        other.cookies.set("__Host-smsd_session", token, domain="testserver.local")
        assert other.get("/campaigns", follow_redirects=False).status_code == 200
    from campaigns.store import sessions as kept
    from dispatcher.app.actors import identity_store

    row = kept.find_session(identity_store(settings).engine, sessions.token_hash(token))
    assert row is not None and row.ended_at is None
    assert identity_store(settings).engine.url.database.endswith("console.db")


def test_the_session_id_is_rotated_at_login(client):
    first = token_of(session_cookie(log_in(client, "sender")))
    second = token_of(session_cookie(log_in(client, "viewer")))  # the browser still sends the first
    assert first != second
    client.cookies.clear()
    client.cookies.set("__Host-smsd_session", first, domain="testserver.local")
    assert client.get("/campaigns", follow_redirects=False).status_code == 303  # the old id is dead


def test_logout_ends_the_session_on_the_server(client):
    token = token_of(session_cookie(log_in(client, "sender")))
    page = client.get("/campaigns")
    out = client.post("/logout", data={"csrf": csrf_of(page.text)}, follow_redirects=False)
    assert out.status_code == 303 and out.headers["location"] == "/login"
    client.cookies.set("__Host-smsd_session", token, domain="testserver.local")  # replayed
    answer = client.get("/campaigns", follow_redirects=False)
    assert answer.status_code == 303 and answer.headers["location"].startswith("/login")


def test_disabling_a_user_ends_its_sessions(settings, client):
    log_in(client, "sender")
    assert client.get("/campaigns", follow_redirects=False).status_code == 200
    identity.disable_user(settings, "sender")
    assert client.get("/campaigns", follow_redirects=False).status_code == 303
    assert log_in(client, "sender").status_code == 401


def test_idle_and_absolute_timeouts_end_a_session(settings):
    new = sessions.log_in(settings, "sender", PASSWORD, "127.0.0.1")
    start = new.session.created_at
    assert sessions.resume(settings, new.token, now=start + timedelta(minutes=29)).actor.who == "sender"
    with pytest.raises(identity.Unauthenticated):  # idle past SMSDISPATCH_SESSION_IDLE_MINUTES (30)
        sessions.resume(settings, new.token, now=start + timedelta(minutes=29 + 31))
    with pytest.raises(identity.Unauthenticated):  # and it stays ended
        sessions.resume(settings, new.token, now=start + timedelta(minutes=30))
    busy = sessions.log_in(settings, "sender", PASSWORD, "127.0.0.1")
    at = busy.session.created_at
    for minutes in range(20, 12 * 60, 20):  # used every 20 minutes, never idle
        sessions.resume(settings, busy.token, now=at + timedelta(minutes=minutes))
    with pytest.raises(identity.Unauthenticated):  # past SMSDISPATCH_SESSION_HOURS (12) all the same
        sessions.resume(settings, busy.token, now=at + timedelta(hours=12, minutes=5))


def test_a_new_password_ends_the_sessions_opened_before_it(settings):
    new = sessions.log_in(settings, "sender", PASSWORD, "127.0.0.1")
    identity.set_password(settings, "sender", "another long password 2")
    with pytest.raises(identity.Unauthenticated):
        sessions.resume(settings, new.token)


def test_state_changing_requests_need_the_csrf_token_and_our_origin(client):
    log_in(client, "sender")
    page = client.get("/optouts")
    csrf = csrf_of(page.text)
    form = {"phones": "09121234567", "reason": "asked by phone"}
    assert client.post("/optouts/add", data=form).status_code == 403  # no token
    assert client.post("/optouts/add", data={**form, "csrf": "forged"}).status_code == 403
    evil = {"origin": "https://evil.example"}
    assert client.post("/optouts/add", data={**form, "csrf": csrf}, headers=evil).status_code == 403
    assert (
        client.post("/optouts/add", data={**form, "csrf": csrf}, headers={"origin": "null"}).status_code
        == 403
    )
    ours = {"origin": "https://testserver"}
    done = client.post("/optouts/add", data={**form, "csrf": csrf}, headers=ours, follow_redirects=False)
    assert done.status_code == 303 and "added=1" in done.headers["location"]
    header = client.post("/optouts/add", data={"phones": "09351234567"}, headers={"x-csrf-token": csrf})
    assert header.status_code == 200 and "added=1" in str(
        header.url
    )  # the header carries it too (htmx, scripts)


def test_the_login_form_has_its_own_token_and_origin_check(client):
    page = client.get("/login")
    token = csrf_of(page.text)
    form = {"username": "sender", "password": PASSWORD, "next": "/campaigns"}
    assert client.post("/login", data={**form, "csrf": "x"}, follow_redirects=False).status_code == 403
    cross = client.post(
        "/login",
        data={**form, "csrf": token},
        headers={"origin": "https://evil.example"},
        follow_redirects=False,
    )
    assert cross.status_code == 403
    client.cookies.clear()  # the token without its cookie
    assert client.post("/login", data={**form, "csrf": token}, follow_redirects=False).status_code == 403


def test_a_login_goes_back_only_to_a_page_of_this_site(client):
    page = client.get("/login")
    for target in ("https://evil.example/x", "//evil.example/x", "/\\evil.example"):
        done = client.post(
            "/login",
            data={"csrf": csrf_of(page.text), "username": "sender", "password": PASSWORD, "next": target},
            follow_redirects=False,
        )
        assert done.headers["location"] == "/campaigns", target
        page = client.get("/login")


def test_every_console_answer_carries_csp_with_a_nonce_frame_ancestors_and_nosniff(client):
    log_in(client, "sender")
    nonces = set()
    for path in ("/login", "/campaigns", "/campaigns/new", "/static/console.css", "/no/such/page"):
        answer = client.get(path)
        policy = answer.headers["content-security-policy"]
        assert "'unsafe-inline'" not in policy and "'unsafe-eval'" not in policy
        assert "frame-ancestors 'self'" in policy and "object-src 'none'" in policy
        assert answer.headers["x-content-type-options"] == "nosniff"
        nonces.add(policy.split("'nonce-")[1].split("'")[0])
    assert len(nonces) == 5  # a fresh nonce for every answer
    assert "content-security-policy" not in client.get("/healthz").headers  # the API keeps its own


def test_the_login_form_is_throttled_as_the_api_is(client):
    for _ in range(10):
        assert log_in(client, "sender", "wrong password here").status_code == 401
    locked = log_in(client, "sender")  # the right password, refused while locked
    assert locked.status_code == 429 and int(locked.headers["retry-after"]) > 0
    assert "smsd_session" not in locked.headers.get("set-cookie", "")


def test_the_api_never_takes_the_session_cookie(client):
    log_in(client, "admin")
    assert client.get("/campaigns").status_code == 200
    assert client.get("/api/v1/campaigns").status_code == 401
