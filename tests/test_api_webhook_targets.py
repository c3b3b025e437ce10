"""Where a webhook may go (workers/webhook_targets.py): a `callback_url` into the server's own network is
refused when it is given (HTTP 400, one line naming the field and the fix) and again at each delivery,
since a name's addresses can change in between; a host listed in SMSDISPATCH_WEBHOOK_ALLOW_HOSTS is
exempt. The API in this process (tests/test_api.py's fixture, which lists 127.0.0.1 for its loopback
receivers), the outbox delivered by the real operation, receivers on loopback. No address outside
loopback is ever connected to: the private and link-local URLs below are refused before any connection."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta

import pytest
import requests

from campaigns.clock import utcnow
from campaigns.store import Store
from campaigns.store import webhooks as outbox
from tests.support.api import receiver
from tests.test_api import Api, api, api_env  # noqa: F401 - the fixtures

pytestmark = pytest.mark.slow


@pytest.mark.parametrize(
    ("url", "said"),
    [
        ("http://crm:hunter2-secret@127.0.0.1:9/hooks", "carries a user name or password"),
        ("ftp://crm.example/hooks", "is not an http(s) URL"),
        ("file:///etc/passwd", "is not an http(s) URL"),
        ("http://10.20.30.40/hooks", "10.20.30.40, a private address"),
        ("http://192.168.1.1:8080/hooks", "192.168.1.1, a private address"),
        ("http://169.254.169.254/latest/meta-data", "169.254.169.254, a link-local address"),
        ("http://[::1]:8080/hooks", "::1, a loopback address"),
        ("http://[::ffff:127.0.0.2]/hooks", "a loopback address"),
        ("http://224.0.0.251/hooks", "224.0.0.251, a multicast address"),
        ("http://0.0.0.0:8080/hooks", "an unspecified address"),
        ("http://100.64.0.1/hooks", "not a public address"),
        ("http://localhost:8080/hooks", "localhost is 127.0.0.1, a loopback address"),  # a name, resolved
    ],
)
def test_a_callback_url_into_the_servers_network_is_bad_input(api: Api, url: str, said: str):  # noqa: F811 - the fixture
    for path in ("/api/v1/campaigns", "/api/v1/drafts"):
        answer = (
            api.post_file(api.csv(3), role="sender", callback_url=url)
            if path.endswith("campaigns")
            else (
                api.client.post(
                    path,
                    files={"file": ("l.csv", api.csv(3).read_bytes(), "text/csv")},
                    data={
                        "provider": "ghasedak",
                        "message": "hi لغو11",
                        "window": "any",
                        "callback_url": url,
                    },
                    headers=api.as_("operator"),
                )
            )
        )
        assert answer.status_code == 400, (path, answer.text)
        error = answer.json()["error"]
        assert error["kind"] == "bad_input" and error["message"].startswith("callback_url"), error
        assert said in error["message"] and "\n" not in error["message"], error["message"]
        assert "hunter2" not in answer.text, "the URL's password came back in the answer"
        if "address" in said:
            assert "SMSDISPATCH_WEBHOOK_ALLOW_HOSTS" in error["message"]  # the fix, for the operator
    assert api.get("/api/v1/campaigns").json() == []  # nothing stored


def test_a_listed_host_is_taken(api: Api):  # noqa: F811 - the fixture
    with receiver() as box:  # http://127.0.0.1:PORT/hooks; 127.0.0.1 is listed by the fixture
        made = api.post_file(api.csv(3), callback_url=box.url)
    assert made.status_code == 201, made.text


def _pending(store: Store, url: str) -> None:
    now = utcnow()
    with store.engine.begin() as conn:
        conn.execute(
            outbox.webhook_deliveries_t.insert().values(
                campaign_id=1,
                event="running",
                reason=None,
                url=url,
                key_id=None,
                status="pending",
                attempts=0,
                next_attempt_at=now - timedelta(seconds=1),
                created_at=now,
            )
        )


def test_a_delivery_is_refused_when_the_host_resolves_into_the_network_now(api: Api):  # noqa: F811
    """A URL taken when its name resolved to a public address (here: stored as it was), whose name now
    resolves to loopback, is not called at delivery: the delivery records why and is tried again later.
    Listed in SMSDISPATCH_WEBHOOK_ALLOW_HOSTS where the deliveries run, the same URL is delivered."""
    from dispatcher.app.modes import worker_deps
    from workers.operations.webhooks import deliver_due

    store = Store.from_url(api.settings.dispatch.database_url)
    deps = worker_deps(api.settings, store)
    assert deps.settings.webhook_allow_hosts == frozenset({"127.0.0.1"})
    with receiver() as box:
        url = box.url.replace("127.0.0.1", "localhost")
        _pending(store, url)
        assert deliver_due(deps) == 0
        assert box.got == [], "the receiver on loopback was called"
        with store.engine.connect() as conn:
            row = conn.execute(outbox.webhook_deliveries_t.select()).one()
        assert row.status == "pending" and row.attempts == 1
        assert row.last_error.startswith("refused: callback_url's host localhost is 127.0.0.1, a loopback"), (
            row.last_error
        )
        with store.engine.begin() as conn:
            conn.execute(outbox.webhook_deliveries_t.update().values(next_attempt_at=utcnow()))
        deps.settings = replace(deps.settings, webhook_allow_hosts=frozenset({"localhost"}))
        assert deliver_due(deps) == 1
        assert box.events() == ["running"]


def test_a_connection_that_reaches_the_network_is_closed_before_a_byte_is_sent():
    """DNS rebinding: the name resolved to a public address for the check, then to a private one for the
    connection. The delivery's connections check the address they actually reached, whatever the name
    resolved to before, and send nothing to one that is not public."""
    from workers.webhook_targets import public_session, refused_peer

    with receiver() as box:
        with (
            public_session(box.url, frozenset()) as session,
            pytest.raises(requests.ConnectionError) as caught,
        ):
            session.post(box.url, data=b"{}", timeout=5)
        peer = refused_peer(caught.value)
        assert peer is not None and "127.0.0.1, a loopback address" in peer.line, caught.value
        assert box.got == []
        with public_session(box.url, frozenset({"127.0.0.1"})) as session:
            assert session.post(box.url, data=b'{"event": "running"}', timeout=5).status_code == 204
        assert box.events() == ["running"]
