"""Two counts of the metrics that were wrong, each checked where it is counted: a cancel's recipients reach
`smsdispatch_recipients_final_total{state="cancelled"}` (a real `smsdispatch web` process cancelling over
its API, scraped as Prometheus would), and two processes reconciling the same `unknown` chunk at once
count what it found once, not twice (the verdict of the one whose write changed rows; the other's is
`nothing`). Real store, the sandbox over HTTP; the sandbox's record is the witness."""

from __future__ import annotations

import os
import threading

import httpx
from prometheus_client import REGISTRY

from dispatcher.config import AppSettings
from dispatcher.demo.messy import write as write_demo_csv
from dispatcher.sandbox.core import Fault
from tests.support.api import bearer, make_key, web_process
from tests.support.scrape import Scrape
from tests.test_operations import campaign, deps, numbers  # noqa: F401 - deps is a fixture
from workers.operations.reconcile import ReconcileKind, reconcile_chunk
from workers.operations.send import send_chunk


def test_a_cancel_over_the_api_counts_its_cancelled_recipients(tmp_path, sandbox_environ):
    env = {k: v for k, v in os.environ.items() if not k.startswith("SMSDISPATCH_")}
    env.update(sandbox_environ)
    env["SMSDISPATCH_DATABASE_URL"] = f"sqlite:///{tmp_path / 'web.db'}"
    env["SMSDISPATCH_UPLOAD_DIR"] = str(tmp_path / "uploads")
    env["SMSDISPATCH_OPTOUT_EVERY"] = "0"
    key = make_key(AppSettings.from_env(env), "sender")[0]
    src = write_demo_csv(tmp_path / "list.csv", 40, seed=4)
    with web_process(env, tmp_path) as url:
        with src.open("rb") as fh:
            created = httpx.post(
                url + "/api/v1/campaigns",
                files={"file": (src.name, fh, "text/csv")},
                data={
                    "provider": "ghasedak",
                    "message": "Hi لغو11",
                    "window": "any",
                    "at": "2099-01-01 10:00",
                },
                headers=bearer(key),
                timeout=60,
            )
        assert created.status_code == 201, created.text
        body = created.json()
        assert body["state"] == "scheduled" and body["recipients"] > 0
        cancel = f"{url}/api/v1/campaigns/{body['campaign']}/cancel"
        assert httpx.post(cancel, headers=bearer(key), timeout=30).status_code == 200
        assert httpx.post(cancel, headers=bearer(key), timeout=30).status_code == 409  # nothing counted twice
        scrape = Scrape(httpx.get(url + "/metrics", timeout=30).text)
    cancelled = scrape.value("smsdispatch_recipients_final_total", provider="ghasedak", state="cancelled")
    assert cancelled == body["recipients"]


def _sample(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


def test_two_reconciling_one_chunk_at_once_count_it_once(deps, sandbox):  # noqa: F811
    """Ghasedak accepts a chunk of 10 but answers 500: the chunk is `unknown`. Two reconciliations of it
    run at once (each asks the provider, which takes a second, then records): both find the 10; the one
    whose write changed rows counts `found` and 10 recipients sent, the other finds the chunk no longer
    unknown and counts `nothing`. It used to count 20 sent and two `found`."""
    cid = campaign(deps.store, "ghasedak", numbers(10))
    sandbox.state.add_fault(Fault("ghasedak", "send", "accept_then_http", status=500))
    ((chunk_id, attempt),) = deps.store.claimable_chunks(campaign_id=cid)
    send_chunk(chunk_id, attempt, deps)
    assert deps.store.unknown_chunks(campaign_id=cid) == [chunk_id]
    assert len(sandbox.state.accepted("ghasedak")) == 10

    sent = _sample("smsdispatch_recipients_sent_total", provider="ghasedak")
    verdicts = {k: _sample("smsdispatch_reconciliations_total", verdict=k) for k in ("found", "nothing")}
    sandbox.state.latency_ms = 1000  # both are in the provider's call at once
    start = threading.Barrier(2)
    results = []

    def reconcile() -> None:
        start.wait()
        results.append(reconcile_chunk(chunk_id, deps))

    threads = [threading.Thread(target=reconcile) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert sorted(r.kind for r in results) == [ReconcileKind.FOUND, ReconcileKind.NOTHING], results
    assert _sample("smsdispatch_recipients_sent_total", provider="ghasedak") - sent == 10
    assert _sample("smsdispatch_reconciliations_total", verdict="found") - verdicts["found"] == 1
    assert _sample("smsdispatch_reconciliations_total", verdict="nothing") - verdicts["nothing"] == 1
    assert deps.store.campaign(cid).counts == {"sent": 10}
    assert len(sandbox.state.accepted("ghasedak")) == 10  # and none went out twice
