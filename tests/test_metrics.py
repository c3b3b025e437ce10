"""Metrics from real processes, scraped as Prometheus would and parsed with prometheus_client's parser:
two Celery workers and beat against the sandbox, and the embedded `serve`. The sandbox's record is the
witness: what the workers say they sent is exactly what it accepted, their send histogram counts
exactly its send calls, and a transient fault it injected is in the errors."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from campaigns.store import Store
from dispatcher.demo.messy import write as write_demo_csv
from dispatcher.sandbox.core import DEFAULT_CREDENTIALS, Fault, FaultKind, SandboxState, sandbox_env
from dispatcher.sandbox.server import start
from tests.support.cluster import free_port, wait_completed, wait_for
from tests.support.scrape import Scrape, queried_names, wait_up

pytestmark = pytest.mark.slow

SECRETS = [v for creds in DEFAULT_CREDENTIALS.values() for v in creds.values() if len(v) >= 8]
TRANSIENT_FAULTS = 3


def phones_of(db: str, campaign: int) -> list[str]:
    store = Store.from_url(db)
    try:
        return [r["phone"] for r in store.recipients_rows(campaign)]
    finally:
        store.engine.dispose()


def test_two_workers_and_beat_expose_what_the_sandbox_witnessed(cluster):
    workers = [free_port(), free_port()]
    beat = free_port()
    for i, port in enumerate(workers):
        cluster.spawn("worker", "-c", "4", "-n", f"m{i}@%h", "--metrics-port", str(port))
    cluster.spawn("beat", "-s", str(cluster.tmp / "beat-schedule"), "--metrics-port", str(beat))
    for port in [*workers, beat]:
        wait_up(port)
    cluster.state.add_fault(Fault("ghasedak", "send", FaultKind.TRANSIENT, times=TRANSIENT_FAULTS))
    campaign, summary = cluster.send(1200)
    wait_completed(cluster.db, campaign, timeout=180)

    scrapes = [Scrape.of(port) for port in workers]
    accepted = len(cluster.state.accepted("ghasedak"))
    assert accepted > 0
    assert sum(s.value("smsdispatch_recipients_sent_total", provider="ghasedak") for s in scrapes) == accepted
    send_calls = cluster.state.calls[("ghasedak", "send")]
    count = "smsdispatch_provider_request_duration_seconds_count"
    assert sum(s.value(count, provider="ghasedak", method="send") for s in scrapes) == send_calls
    requests = sum(
        s.value("smsdispatch_provider_requests_total", provider="ghasedak", method="send") for s in scrapes
    )
    assert requests == send_calls
    transient = sum(
        s.value(
            "smsdispatch_provider_requests_total", provider="ghasedak", method="send", outcome="transient"
        )
        for s in scrapes
    )
    assert transient == TRANSIENT_FAULTS
    errors = sum(
        s.value("smsdispatch_provider_errors_total", provider="ghasedak", kind="transient") for s in scrapes
    )
    assert errors >= TRANSIENT_FAULTS
    assert sum(s.value("smsdispatch_chunks_total", outcome="retry") for s in scrapes) == TRANSIENT_FAULTS
    parts = sum(s.value("smsdispatch_sms_parts_sent_total", provider="ghasedak") for s in scrapes)
    assert parts >= accepted
    assert sum(s.value("celery_task_succeeded_total", name="smsdispatch.send_chunk") for s in scrapes) > 0
    assert all(s.value("celery_worker_up") == 1 for s in scrapes)
    for s in scrapes:  # the store gauges are beat's and web's, not every worker's
        assert "smsdispatch_store_recipients" not in s.names()

    # beat: the store gauges, read at scrape time (cached a few seconds)
    def completed() -> Scrape | None:
        scrape = Scrape.of(beat)
        return scrape if scrape.value("smsdispatch_campaigns", state="completed") == 1 else None

    store_scrape = wait_for(completed, "beat's store gauges to show the campaign completed", timeout=30)
    assert store_scrape.value("smsdispatch_store_up") == 1
    assert store_scrape.value("smsdispatch_store_recipients") == summary["recipients"]
    assert store_scrape.value("smsdispatch_recipients_pending") == 0
    assert store_scrape.value("smsdispatch_circuit_open", provider="ghasedak", account="10008566") == 0
    assert store_scrape.value("smsdispatch_build_info") == 1

    phones = phones_of(cluster.db, campaign)
    for scrape in [*scrapes, store_scrape]:
        scrape.assert_clean(phones=phones, campaign_ids=[campaign], secrets=SECRETS)

    # every dashboard query and alert expression names only metrics these processes expose
    exposed = set().union(*(s.names() for s in [*scrapes, store_scrape])) | {"up"}
    missing = {where: names - exposed for where, names in queried_names().items() if names - exposed}
    assert not missing, f"queried but never exposed: {missing}"


def test_serve_exposes_its_sends_and_the_store(tmp_path):
    state = SandboxState(seed=5, final_after_s=0.2)
    sandbox = start(state)
    env = {
        **os.environ,
        **sandbox_env(sandbox.url),
        "SMSDISPATCH_DATABASE_URL": f"sqlite:///{tmp_path / 'serve.db'}",
        "SMSDISPATCH_POLL_INTERVALS": "0.5,1",
        "SMSDISPATCH_LOG_FORMAT": "json",
        "SMSDISPATCH_METRICS_TOKEN": "scrape-token-123",
    }
    env.pop("SMSDISPATCH_BROKER_URL", None)
    port = free_port()
    log = tmp_path / "serve.log"
    serve = subprocess.Popen(
        [sys.executable, "-m", "dispatcher", "serve", "--tick", "0.5", "--metrics-port", str(port)],
        env=env,
        cwd=tmp_path,
        stdout=subprocess.DEVNULL,
        stderr=log.open("w"),
    )
    try:
        wait_up(port)
        state.add_fault(Fault("ghasedak", "send", FaultKind.TRANSIENT, times=2))
        src = tmp_path / "list.csv"
        write_demo_csv(src, 300, seed=3)
        sent = subprocess.run(
            [
                sys.executable,
                "-m",
                "dispatcher",
                "send",
                str(src),
                "--provider",
                "ghasedak",
                "--message",
                "Hi {name}",
                "--json",
                "--yes",
            ],
            env=env,
            cwd=tmp_path,
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert sent.returncode == 0, sent.stderr
        summary = json.loads(sent.stdout.strip().splitlines()[-1])
        campaign = summary["campaign"]
        wait_completed(env["SMSDISPATCH_DATABASE_URL"], campaign, timeout=120)

        from tests.support.scrape import get

        assert get(f"http://127.0.0.1:{port}/metrics")[0] == 401  # the token is asked for
        status, body = get(f"http://127.0.0.1:{port}/metrics", token="scrape-token-123")
        assert status == 200
        scrape = Scrape(body)
        accepted = len(state.accepted("ghasedak"))
        assert scrape.value("smsdispatch_recipients_sent_total", provider="ghasedak") == accepted
        assert (
            scrape.value(
                "smsdispatch_provider_request_duration_seconds_count", provider="ghasedak", method="send"
            )
            == state.calls[("ghasedak", "send")]
        )
        assert scrape.value("smsdispatch_provider_errors_total", provider="ghasedak", kind="transient") >= 2
        assert scrape.value("smsdispatch_provider_requests_total", method="send", outcome="transient") == 2
        assert scrape.value("smsdispatch_provider_credit", provider="ghasedak", unit="rial") > 0
        assert scrape.value("smsdispatch_store_recipients") == summary["recipients"]
        scrape.assert_clean(
            phones=phones_of(env["SMSDISPATCH_DATABASE_URL"], campaign),
            campaign_ids=[campaign],
            secrets=SECRETS,
        )
        assert "scrape-token-123" not in scrape.text
    finally:
        serve.send_signal(signal.SIGTERM)
        serve.wait(timeout=60)
        sandbox.stop()
    lines = [json.loads(line) for line in log.read_text().splitlines() if line.strip()]
    assert lines, "serve logged nothing"
    for line in lines:  # SMSDISPATCH_LOG_FORMAT=json: every line one object with every key
        assert {"time", "level", "process", "campaign", "chunk", "provider", "event", "message"} <= set(line)
        assert line["process"] == "serve" and line["time"].endswith("+00:00")
    assert any(line["campaign"] == campaign for line in lines)
    assert not any(secret in Path(log).read_text() for secret in SECRETS)


def test_a_prefork_worker_counts_its_children(cluster):
    """-P prefork: the children's counters reach the parent's port (prometheus_client's multiprocess mode)."""
    port = free_port()
    worker = cluster.spawn("worker", "-P", "prefork", "-c", "2", "-n", "fork@%h", "--metrics-port", str(port))
    cluster.spawn("beat", "-s", str(cluster.tmp / "beat-schedule"))
    wait_up(port)
    campaign, _ = cluster.send(400)
    wait_completed(cluster.db, campaign, timeout=180)
    scrape = Scrape.of(port)
    assert scrape.value("smsdispatch_recipients_sent_total", provider="ghasedak") == len(
        cluster.state.accepted("ghasedak")
    )
    count = "smsdispatch_provider_request_duration_seconds_count"
    assert (
        scrape.value(count, provider="ghasedak", method="send") == cluster.state.calls[("ghasedak", "send")]
    )
    environ = Path(f"/proc/{worker.pid}/environ").read_bytes().split(b"\0")
    folder = Path(
        next(v for v in environ if v.startswith(b"PROMETHEUS_MULTIPROC_DIR=")).split(b"=", 1)[1].decode()
    )
    assert folder.is_dir() and any(folder.iterdir())
    worker.send_signal(signal.SIGTERM)
    worker.wait(timeout=60)
    assert not folder.exists()  # wiped at the end
