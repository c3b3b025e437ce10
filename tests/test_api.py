"""The HTTP API in this process (FastAPI's TestClient with its lifespan: the embedded serve loop runs),
SQLite, real keys (dispatcher.app.identity), the sandbox over HTTP. The sandbox's ledger is the witness."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from campaigns.store import Store
from dispatcher.config import AppSettings
from dispatcher.demo.messy import write as write_demo_csv
from dispatcher.web import create_app
from tests.support.api import WEBHOOK_SECRET, bearer, make_key
from tests.support.cluster import FAST_ENV, wait_for

pytestmark = pytest.mark.slow
TEXT = "Hi {name} لغو11"


@pytest.fixture
def api_env(tmp_path, sandbox_environ, monkeypatch) -> dict[str, str]:
    monkeypatch.chdir(tmp_path)
    return {
        **sandbox_environ,
        **FAST_ENV,
        "SMSDISPATCH_DATABASE_URL": f"sqlite:///{tmp_path / 'api.db'}",
        "SMSDISPATCH_UPLOAD_DIR": str(tmp_path / "uploads"),
        "SMSDISPATCH_WEBHOOK_SECRET": WEBHOOK_SECRET,
        "SMSDISPATCH_WEBHOOK_ALLOW_HOSTS": "127.0.0.1",  # the tests' receivers are on loopback
        "SMSDISPATCH_OPTOUT_EVERY": "0",
        "SMSDISPATCH_HEARTBEAT_EVERY": "0.5",
    }


class Api:
    def __init__(self, client: TestClient, settings: AppSettings, tmp: Path, sandbox) -> None:  # noqa: ANN001
        self.client, self.settings, self.tmp, self.sandbox = client, settings, tmp, sandbox
        self.keys = {role: make_key(settings, role)[0] for role in ("viewer", "operator", "sender", "admin")}

    def as_(self, role: str) -> dict[str, str]:
        return bearer(self.keys[role])

    def csv(self, rows: int, seed: int | None = None) -> Path:
        path = self.tmp / f"list-{rows}-{seed}.csv"
        write_demo_csv(path, rows, seed=seed or rows)
        return path

    def post_file(self, path: Path, role: str = "sender", headers: dict | None = None, **fields: str):  # noqa: ANN201
        data = {"provider": "ghasedak", "message": TEXT, "window": "any", **fields}
        with path.open("rb") as fh:
            return self.client.post(
                "/api/v1/campaigns",
                files={"file": (path.name, fh, "text/csv")},
                data=data,
                headers={**self.as_(role), **(headers or {})},
            )

    def get(self, url: str, role: str = "viewer", **kw):  # noqa: ANN003, ANN201
        return self.client.get(url, headers=self.as_(role), **kw)

    def wait_state(self, campaign: int, *states: str, timeout: float = 120) -> dict:
        def reached() -> dict | None:
            body = self.get(f"/api/v1/campaigns/{campaign}").json()
            return body if body["state"] in states else None

        return wait_for(reached, f"campaign {campaign} {states}", timeout=timeout)


@pytest.fixture
def api(api_env, tmp_path, sandbox) -> Api:
    settings = AppSettings.from_env(api_env)
    with TestClient(create_app(settings)) as client:
        yield Api(client, settings, tmp_path, sandbox)


def once_each(api: Api, campaign: int) -> Counter:
    store = Store.from_url(api.settings.dispatch.database_url)
    phones = {r["phone"].lstrip("+") for r in store.recipients_rows(campaign)}
    counts = Counter(m.phone for m in api.sandbox.state.accepted("ghasedak"))
    assert set(counts.values()) <= {1}, "a number was sent twice"
    assert set(counts) == phones
    return counts


# ---- the whole loop: a file, follow, pause, resume, report --------------------------------------------
def test_a_program_sends_follows_pauses_resumes_and_fetches_the_report(api: Api):
    answer = api.post_file(api.csv(300), name="API list", max_parts="100,000")
    assert answer.status_code == 201, answer.text
    body = answer.json()
    for key in (
        "campaign",
        "recipients",
        "rejected",
        "chunks",
        "parts",
        "rejects_file",
        "state",
        "operators",
        "parts_histogram",
        "cost",
        "credit",
        "warnings",
        "preview",
    ):
        assert key in body
    cid = body["campaign"]
    assert body["cost"] is None or body["cost"]["currency"] == "IRR"  # ISO 4217, as the status below
    paused = api.client.post(f"/api/v1/campaigns/{cid}/pause", headers=api.as_("sender"))
    assert paused.status_code in (200, 409), paused.text  # it may have finished sending already
    if paused.status_code == 200:
        assert paused.json()["state"] == "paused"
        resumed = api.client.post(f"/api/v1/campaigns/{cid}/resume", headers=api.as_("sender"))
        assert resumed.status_code == 200, resumed.text
    done = api.wait_state(cid, "completed")
    assert done["campaign"] == cid and done["progress"]["final"] == done["recipients"]
    assert done["cost"]["currency"] == "IRR"
    once_each(api, cid)
    report = api.get(f"/api/v1/campaigns/{cid}/report?format=csv")
    assert report.status_code == 200 and report.headers["content-type"].startswith("text/csv")
    assert len(report.text.strip().splitlines()) == done["recipients"] + 1
    xlsx = api.get(f"/api/v1/campaigns/{cid}/report", params={"format": "xlsx"})
    assert xlsx.status_code == 200 and xlsx.content[:2] == b"PK"
    chart = api.get(f"/api/v1/campaigns/{cid}/chart.png")
    assert chart.status_code == 200 and chart.content[:8] == b"\x89PNG\r\n\x1a\n"
    page = api.get(f"/api/v1/campaigns/{cid}/recipients", params={"limit": 100})
    assert page.status_code == 200 and len(page.json()) == 100
    rest = api.get(
        f"/api/v1/campaigns/{cid}/recipients", params={"limit": 1000, "cursor": page.headers["x-next-cursor"]}
    )
    assert len(page.json()) + len(rest.json()) == done["recipients"]
    phone = page.json()[0]["phone"]
    support = api.get("/api/v1/recipients", params={"phone": "0" + phone[3:]}).json()
    assert support["phone"] == phone and support["messages"][0]["campaign"] == cid
    listed = api.get("/api/v1/campaigns").json()
    assert [row["campaign"] for row in listed] == [cid]
    assert api.get("/api/v1/campaigns", params={"state": "running"}).json() == []


def test_a_json_list_and_a_dry_run(api: Api):
    recipients = [{"phone": "0912000000" + str(i), "name": f"n{i}"} for i in range(5)]
    body = {"provider": "ghasedak", "message": TEXT, "window": "any", "recipients": recipients}
    dry = api.client.post("/api/v1/campaigns", json={**body, "dry_run": True}, headers=api.as_("operator"))
    assert dry.status_code == 200, dry.text
    assert dry.json()["campaign"] is None and dry.json()["state"] == "dry-run"
    assert dry.json()["recipients"] == 5
    made = api.client.post("/api/v1/campaigns", json=body, headers=api.as_("sender"))
    assert made.status_code == 201, made.text
    cid = made.json()["campaign"]
    api.wait_state(cid, "completed")
    assert len(once_each(api, cid)) == 5


# ---- keys and roles ------------------------------------------------------------------------------------
def test_keys_only_from_the_authorization_header(api: Api):
    url = "/api/v1/campaigns"
    assert api.client.get(url).json()["error"]["kind"] == "unauthenticated"
    assert api.client.get(url).status_code == 401
    assert api.client.get(url, headers=bearer("smsd_not-a-key")).status_code == 401
    # a cookie is never read, whatever it holds: no session rides along with a bearer-less request
    api.client.cookies.set("session", api.keys["admin"])
    assert api.client.get(url).status_code == 401
    api.client.cookies.clear()
    assert api.client.get(url, headers=api.as_("viewer")).status_code == 200


def test_a_viewer_key_cannot_start_anything(api: Api):
    path = api.csv(5)
    refused = api.post_file(path, role="viewer")
    assert refused.status_code == 403 and refused.json()["error"]["kind"] == "forbidden"
    assert api.post_file(path, role="operator").status_code == 403  # uploads, checks; never sends
    assert api.post_file(path, role="operator", dry_run="true").status_code == 200
    assert (
        api.client.post(
            "/api/v1/optouts", json={"phones": ["09120000001"]}, headers=api.as_("viewer")
        ).status_code
        == 403
    )
    assert api.sandbox.state.accepted("ghasedak") == []
    assert api.get("/api/v1/campaigns").json() == []


# ---- idempotency ---------------------------------------------------------------------------------------
def test_idempotency_key_same_body_same_campaign_other_body_409(api: Api):
    path = api.csv(20)
    first = api.post_file(path, headers={"Idempotency-Key": "k-1"})
    assert first.status_code == 201, first.text
    again = api.post_file(path, headers={"Idempotency-Key": "k-1"})
    assert again.status_code == 201 and again.json() == first.json()
    assert again.headers.get("idempotent-replayed") == "true"
    other = api.post_file(api.csv(21), headers={"Idempotency-Key": "k-1"})
    assert other.status_code == 409 and other.json()["error"]["kind"] == "conflict"
    api.wait_state(first.json()["campaign"], "completed")
    assert len(api.get("/api/v1/campaigns").json()) == 1
    assert (
        len(once_each(api, first.json()["campaign"])) == first.json()["recipients"]
    )  # the retry sent nothing more


def test_two_identical_requests_racing_create_one_campaign(api: Api):
    import threading

    path = api.csv(200)
    answers: list = []

    def post() -> None:
        answers.append(api.post_file(path, headers={"Idempotency-Key": "race"}))

    threads = [threading.Thread(target=post) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert [a.status_code for a in answers] == [201] * 4, [a.text for a in answers]
    assert len({a.json()["campaign"] for a in answers}) == 1
    assert len(api.get("/api/v1/campaigns").json()) == 1


# ---- drafts ----------------------------------------------------------------------------------------------
def _draft(api: Api, path: Path, role: str) -> dict:
    with path.open("rb") as fh:
        made = api.client.post(
            "/api/v1/drafts",
            files={"file": (path.name, fh, "text/csv")},
            data={"provider": "ghasedak", "message": TEXT, "window": "any"},
            headers=api.as_(role),
        )
    assert made.status_code == 201, made.text
    return made.json()


def test_a_draft_is_sent_from_exactly_its_checked_rows_without_who_opted_out_since(api: Api):
    path = api.csv(40)
    draft = _draft(api, path, "sender")
    assert draft["draft"] and "warnings" in draft and "preview" in draft
    assert api.get("/api/v1/campaigns").json() == []  # a draft is not a campaign
    path.write_text(
        "phone,name\n09129999999,changed\n", encoding="utf-8"
    )  # the file changes: the draft does not
    first = api.get("/api/v1/campaigns/0", role="viewer")
    assert first.status_code == 404
    preview_phone = None
    store = Store.from_url(api.settings.dispatch.database_url)
    from campaigns.store import apirequests

    blocks = list(apirequests.draft_blocks(store.engine, draft["draft"]))
    preview_phone = str(blocks[0]["phone"].iloc[0])
    added = api.client.post(
        "/api/v1/optouts", json={"phones": [preview_phone], "reason": "asked"}, headers=api.as_("operator")
    )
    assert added.status_code == 200 and added.json()["added"] == 1
    sent = api.client.post(f"/api/v1/drafts/{draft['draft']}/send", headers=api.as_("sender"))
    assert sent.status_code == 201, sent.text
    body = sent.json()
    assert body["opted_out_since_check"] == 1 and body["recipients"] == draft["recipients"] - 1
    cid = body["campaign"]
    api.wait_state(cid, "completed")
    counts = once_each(api, cid)
    assert preview_phone.lstrip("+") not in counts
    assert "opted out since the check" in Path(body["rejects_file"]).read_text(encoding="utf-8")
    again = api.client.post(f"/api/v1/drafts/{draft['draft']}/send", headers=api.as_("sender"))
    assert again.status_code == 409
    assert api.client.post("/api/v1/drafts/9999/send", headers=api.as_("sender")).status_code == 404


def test_a_draft_is_sent_as_checked_only_by_who_checked_it_and_may_send(api: Api):
    """Who sends is checked at the send: an operator checks and cannot send its draft (403); a sender
    cannot send the operator's draft as it is (404, as for none: that check ran for the operator, with
    the operator's overrides), and checks the file itself, which runs the preflight for the sender; a
    sender whose key got a daily cap in rial since its check is held to it at the send (the check kept
    no price, so a cap in rial cannot be counted: 400 naming the price setting)."""
    from dispatcher.app.people import set_cap

    path = api.csv(20)
    checked = _draft(api, path, "operator")["draft"]
    refused = api.client.post(f"/api/v1/drafts/{checked}/send", headers=api.as_("operator"))
    assert refused.status_code == 403 and refused.json()["error"]["kind"] == "forbidden", refused.text
    other = api.client.post(f"/api/v1/drafts/{checked}/send", headers=api.as_("sender"))
    assert other.status_code == 404, other.text
    assert "check the file yourself" in other.json()["error"]["message"]
    assert api.get("/api/v1/campaigns").json() == []
    key, _ = make_key(api.settings, "sender", "capped")
    own = _draft_as(api, path, api.keys["sender"])  # the sender checks the file itself
    assert own != checked
    capped = _draft_as(api, path, key)
    set_cap(api.settings, "key", "capped", daily_cap_rial=10_000)
    held = api.client.post(f"/api/v1/drafts/{capped}/send", headers=bearer(key))
    assert held.status_code == 400, held.text
    assert "daily cap in rial" in held.json()["error"]["message"], held.text
    set_cap(api.settings, "key", "capped")  # no cap: the same draft goes
    assert api.client.post(f"/api/v1/drafts/{capped}/send", headers=bearer(key)).status_code == 201
    sent = api.client.post(f"/api/v1/drafts/{own}/send", headers=api.as_("sender"))
    assert sent.status_code == 201, sent.text


def _draft_as(api: Api, path: Path, key: str) -> int:
    with path.open("rb") as fh:
        made = api.client.post(
            "/api/v1/drafts",
            files={"file": (path.name, fh, "text/csv")},
            data={"provider": "ghasedak", "message": TEXT, "window": "any", "allow_duplicate": "true"},
            headers=bearer(key),
        )
    assert made.status_code == 201, made.text
    return made.json()["draft"]


# ---- opt-outs and providers ---------------------------------------------------------------------------
def test_optouts_and_providers(api: Api):
    add = api.client.post(
        "/api/v1/optouts", json={"phones": ["0912 111 2233"], "reason": "phoned"}, headers=api.as_("operator")
    )
    assert add.json() == {"added": 1, "already": 0}
    listed = api.get("/api/v1/optouts").json()
    assert listed["suppressions"][0]["phone"] == "+989121112233"
    assert api.client.delete("/api/v1/optouts/09121112233", headers=api.as_("sender")).status_code == 403
    assert api.client.delete("/api/v1/optouts/09121112233", headers=api.as_("admin")).json() == {"removed": 1}
    assert api.client.delete("/api/v1/optouts/09121112233", headers=api.as_("admin")).status_code == 404
    providers = api.get("/api/v1/providers").json()
    assert {p["provider"] for p in providers} >= {"ghasedak", "amoot"}


# ---- docs without a CDN, health -------------------------------------------------------------------------
def test_openapi_docs_page_served_here_and_health(api: Api):
    spec = api.client.get("/api/v1/openapi.json").json()
    assert "/api/v1/campaigns" in spec["paths"] and "/api/v1/drafts/{draft_id}/send" in spec["paths"]
    body = spec["paths"]["/api/v1/campaigns"]["post"]["requestBody"]["content"]
    assert set(body) == {"multipart/form-data", "application/json"}
    page = api.client.get("/api/v1/docs").text
    assert "/api/v1/docs/assets/swagger-ui-bundle.js" in page
    assert "http://" not in page and "https://" not in page  # every asset from this server, no CDN
    assert api.client.get("/api/v1/docs/assets/swagger-ui-bundle.js").status_code == 200
    health = api.client.get("/healthz").json()
    assert health["ok"] is True and health["mode"].startswith("embedded")


# ---- webhooks --------------------------------------------------------------------------------------------
def test_webhooks_signed_on_each_change_and_recorded(api: Api):
    from campaigns.store import webhooks as outbox
    from dispatcher.app import identity
    from tests.support.api import receiver
    from workers.webhooks import key_secret, verify

    _, key_id = make_key(api.settings, "sender", "crm")
    made = identity.create_key(api.settings, "crm2", "sender")
    key = (made.key, made.record.id)
    # the key's webhook secret is shown once, with the key, and is the derived one (never stored)
    assert made.as_json()["webhook_secret"] == key_secret(WEBHOOK_SECRET, made.record.id)
    with receiver() as box:
        made = api.post_file(api.csv(30), headers=bearer(key[0]), callback_url=box.url)
        assert made.status_code == 201, made.text
        cid = made.json()["campaign"]
        api.wait_state(cid, "completed")
        wait_for(lambda: "completed" in box.events(), "the completed webhook", timeout=60)
        assert box.events() == ["running", "completed"]
        secret = key_secret(WEBHOOK_SECRET, key[1])
        for headers, body in box.got:
            assert verify(
                secret, headers["x-smsdispatch-timestamp"], body, headers["x-smsdispatch-signature"]
            )
            assert not verify(
                key_secret(WEBHOOK_SECRET, key_id),
                headers["x-smsdispatch-timestamp"],
                body,
                headers["x-smsdispatch-signature"],
            )
            doc = json.loads(body)
            assert doc["campaign"] == cid and doc["status"]["campaign"] == cid
        store = Store.from_url(api.settings.dispatch.database_url)

        def recorded() -> list[tuple[str, str]]:
            with store.engine.connect() as conn:
                return [(r["event"], r["status"]) for r in outbox.of_campaign(conn, cid)]

        # the receiver has the body before the sender has its answer and records the delivery
        expected = [("running", "delivered"), ("completed", "delivered")]
        wait_for(lambda: recorded() == expected, "both deliveries recorded", timeout=30)
    bad = api.post_file(api.csv(3), callback_url="ftp://example/x")
    assert bad.status_code == 400


def test_webhook_retried_then_given_up_after_a_day(api: Api, tmp_path):
    from datetime import timedelta

    from campaigns.clock import utcnow
    from campaigns.store import webhooks as outbox
    from dispatcher.app.modes import worker_deps
    from tests.support.cluster import free_port
    from workers.operations.webhooks import deliver_due, webhook_delay

    assert [webhook_delay(n) for n in (1, 2, 3, 8)] == [10, 30, 60, 3600]
    store = Store.from_url(api.settings.dispatch.database_url)
    deps = worker_deps(api.settings, store)
    dead = f"http://127.0.0.1:{free_port()}/nobody"
    now = utcnow()
    with store.engine.begin() as conn:
        for created in (now, now - timedelta(days=2)):
            conn.execute(
                outbox.webhook_deliveries_t.insert().values(
                    campaign_id=1,
                    event="paused",
                    reason="budget reached",
                    url=dead,
                    key_id=None,
                    status="pending",
                    attempts=0,
                    next_attempt_at=now,
                    created_at=created,
                )
            )
    assert deliver_due(deps) == 0
    with store.engine.connect() as conn:
        rows = conn.execute(outbox.webhook_deliveries_t.select().order_by("id")).all()
    assert rows[0].status == "pending" and rows[0].attempts == 1 and rows[0].next_attempt_at > now
    assert "could not reach" in rows[0].last_error
    assert rows[1].status == "given_up" and rows[1].finished_at is not None
