"""`smsdispatch serve`, heartbeats and interruptions with real parts: the CLI and `serve` as subprocesses,
SQLite and PostgreSQL, the sandbox over HTTP. The sandbox's ledger is the witness (tests/support/cluster.py)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
from datetime import UTC, datetime, timedelta

import pytest

from campaigns.store import Store
from campaigns.store.heartbeats import live_service
from campaigns.windows import TEHRAN
from dispatcher.demo.messy import write as write_demo_csv
from dispatcher.sandbox.core import SandboxState, sandbox_env
from dispatcher.sandbox.server import start
from tests.support.cluster import EXE, FAST_ENV, Cluster, assert_witnessed, wait_completed, wait_for

pytestmark = pytest.mark.slow


@pytest.fixture
def embedded(tmp_path, database_url):
    """A `Cluster` without a broker: embedded mode on SQLite or PostgreSQL, the sandbox slow enough
    (0.3 s a call, 10 recipients a chunk) that a campaign of 400 is mid-way for seconds."""
    state = SandboxState(seed=5, final_after_s=0.2, latency_ms=300)
    sandbox = start(state)
    env = {
        **os.environ,
        **sandbox_env(sandbox.url),
        "SMSDISPATCH_BROKER_URL": "",
        "SMSDISPATCH_DATABASE_URL": database_url,
        **FAST_ENV,
        "SMSDISPATCH_GHASEDAK_BATCH": "10",
        "SMSDISPATCH_HEARTBEAT_EVERY": "0.5",
        "SMSDISPATCH_HEARTBEAT_STALE": "3",
        "SMSDISPATCH_OPTOUT_EVERY": "0",
    }
    cluster = Cluster(env, state, database_url, tmp_path)
    Store.from_url(database_url).migrate()
    try:
        yield cluster
    finally:
        for p in cluster.procs:
            if p.poll() is None:
                p.kill()
            p.wait(timeout=10)
        sandbox.stop()


def serve(cluster: Cluster, threads: int = 2) -> subprocess.Popen:
    proc = cluster.spawn("serve", "--threads", str(threads), "--tick", "0.3")
    store = cluster.store()
    try:
        wait_for(lambda: live_service(store.engine, stale=3) is not None, "serve's heartbeat", timeout=60)
    finally:
        store.engine.dispose()
    return proc


def status(cluster: Cluster, campaign_id: int) -> dict:
    done = cluster.cli("status", str(campaign_id), "--json")
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def accepted(cluster: Cluster) -> int:
    return len(cluster.state.accepted("ghasedak"))


def all_sent(cluster: Cluster, campaign_id: int) -> bool:
    store = cluster.store()
    try:
        view = store.campaign(campaign_id)
        assert view is not None
        return not view.counts.get("pending") and set(view.chunk_counts) <= {
            "accepted",
            "failed",
            "cancelled",
        }
    finally:
        store.engine.dispose()


def send_popen(cluster: Cluster, rows: int, *extra: str) -> subprocess.Popen:
    src = cluster.tmp / f"list-{rows}.csv"
    write_demo_csv(src, rows, seed=rows)
    return subprocess.Popen(
        [*EXE, "send", str(src), "--provider", "ghasedak", "--message", "Hi {name}", "--json", *extra],
        env=cluster.env,
        cwd=cluster.tmp,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def test_send_stores_and_returns_while_serve_runs_and_serve_sends_it(embedded):
    serve(embedded)
    done = embedded.send_cli(60)
    assert done.returncode == 0, done.stderr
    summary = json.loads(done.stdout.strip().splitlines()[-1])
    assert summary["state"] == "running"
    assert "handed to `smsdispatch serve`" in done.stderr
    wait_completed(embedded.db, summary["campaign"], timeout=120)
    assert_witnessed(embedded, summary["campaign"])
    log = embedded.logs("serve")
    assert f"campaign {summary['campaign']}: picked up" in log
    assert "completed" in log


def test_a_killed_serve_leaves_an_unattended_campaign_a_new_serve_finishes_once(embedded):
    first = serve(embedded)
    campaign_id, _ = embedded.send(400)
    wait_for(lambda: accepted(embedded) >= 60, "sending to be under way", timeout=60, every=0.05)
    os.kill(first.pid, signal.SIGKILL)
    first.wait(timeout=10)
    assert accepted(embedded) < 400, "the campaign finished before the kill; the test proves nothing"

    # Once the dead serve's heartbeat is stale, status says nothing sends it and guesses no rate or ETA.
    seen = wait_for(
        lambda: (
            (s := status(embedded, campaign_id))["waiting"] and s["waiting"]["reason"] == "unattended" and s
        ),
        "status to call the campaign unattended",
        timeout=30,
    )
    assert seen["state"] == "running" and seen["sender"] is None
    assert seen["rate"] is None and seen["eta_seconds"] is None and seen["eta"] is None
    assert "nothing has been sending this campaign since" in seen["waiting"]["detail"]
    assert f"smsdispatch run {campaign_id}" in seen["waiting"]["detail"]
    human = embedded.cli("status", str(campaign_id))
    assert "nothing has been sending this campaign since" in human.stdout.replace("\n", " ")

    serve(embedded)
    sending = wait_for(lambda: (s := status(embedded, campaign_id))["sender"] and s, "a sender", timeout=30)
    assert sending["sender"]["pid"] != first.pid
    # Every chunk sent (the polls the dead serve had claimed wait out their lease, workers/operations/poll.py
    # CLAIM_LEASE, before the campaign can complete; that is polling's business, not this test's).
    wait_for(lambda: all_sent(embedded, campaign_id), "every chunk to be sent", timeout=90, every=0.5)
    assert_witnessed(embedded, campaign_id)


def test_a_scheduled_campaign_starts_on_time_with_only_serve_running(embedded):
    serve(embedded)
    send_at = (datetime.now(UTC) + timedelta(seconds=10)).replace(microsecond=0)
    done = embedded.send_cli(40, "ghasedak", "--at", send_at.astimezone(TEHRAN).strftime("%Y-%m-%dT%H:%M:%S"))
    assert done.returncode == 0, done.stderr
    summary = json.loads(done.stdout.strip().splitlines()[-1])
    assert summary["state"] == "scheduled"
    assert "`smsdispatch serve` starts it" in done.stderr
    wait_completed(embedded.db, summary["campaign"], timeout=120)
    assert_witnessed(embedded, summary["campaign"])
    first = min(m.accepted_at for m in embedded.state.accepted("ghasedak"))
    assert first >= send_at.timestamp(), "sent before its time"
    assert "started (its time came)" in embedded.logs("serve")


def test_sigterm_finishes_the_chunks_in_flight_and_exits_0(embedded):
    proc = serve(embedded, threads=4)
    campaign_id, _ = embedded.send(400)
    wait_for(lambda: accepted(embedded) >= 40, "sending to be under way", timeout=60, every=0.05)
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=60) == 0
    store = embedded.store()
    try:
        chunks = store.chunk_counts(campaign_id)
        assert chunks.get("sending", 0) == 0, f"a chunk left in flight: {chunks}"
        assert chunks.get("unknown", 0) == 0, f"a chunk cut mid-call: {chunks}"
        assert store.campaign_state(campaign_id)[0] == "running"
        assert accepted(embedded) < 400, "the campaign finished before SIGTERM; the test proves nothing"
        assert live_service(store.engine, stale=3) is None  # its heartbeat went with it
    finally:
        store.engine.dispose()
    assert "SIGTERM: finishing the chunks in flight" in embedded.logs("serve")
    # what it left is sent by the next `run`, once each
    done = embedded.cli("run", str(campaign_id), "--wait", timeout=180)
    assert done.returncode == 0, done.stderr
    assert_witnessed(embedded, campaign_id)


def test_ctrl_c_on_send_wait_says_the_state_left_and_the_command_that_goes_on(embedded):
    proc = send_popen(embedded, 400, "--wait")
    wait_for(lambda: accepted(embedded) >= 40, "sending to be under way", timeout=60, every=0.05)
    proc.send_signal(signal.SIGINT)
    _, stderr = proc.communicate(timeout=60)
    assert proc.returncode == 130
    store = embedded.store()
    try:
        campaign_id = store.campaigns()[-1].id
        assert store.chunk_counts(campaign_id).get("sending", 0) == 0
    finally:
        store.engine.dispose()
    last = stderr.strip().splitlines()[-1]
    assert f"campaign {campaign_id} left running" in last
    assert f"smsdispatch run {campaign_id} --wait" in last
    # the command it names goes on, and nothing is sent twice
    done = embedded.cli("run", str(campaign_id), "--wait", timeout=180)
    assert done.returncode == 0, done.stderr
    assert_witnessed(embedded, campaign_id)


def test_run_on_a_scheduled_campaign_waits_for_its_time_and_sends_it(embedded):
    proc = serve(embedded)
    send_at = (datetime.now(UTC) + timedelta(seconds=8)).replace(microsecond=0)
    done = embedded.send_cli(30, "ghasedak", "--at", send_at.astimezone(TEHRAN).strftime("%Y-%m-%dT%H:%M:%S"))
    assert done.returncode == 0, done.stderr
    campaign_id = json.loads(done.stdout.strip().splitlines()[-1])["campaign"]
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=30) == 0
    ran = embedded.cli("run", str(campaign_id), "--wait", timeout=120)
    assert ran.returncode == 0, ran.stderr
    assert f"campaign {campaign_id} is scheduled for" in ran.stderr
    assert "waiting for it here" in ran.stderr
    assert min(m.accepted_at for m in embedded.state.accepted("ghasedak")) >= send_at.timestamp()
    assert_witnessed(embedded, campaign_id)


def test_resume_in_embedded_mode_sends_the_rest_itself(embedded):
    embedded.state.credit["ghasedak"] = 100  # ten chunks of 10 go out, then "no credit" pauses it
    campaign_id, summary = embedded.send(300)
    assert summary["state"] == "paused"
    embedded.state.credit.pop("ghasedak")
    done = embedded.cli("resume", str(campaign_id), timeout=180)
    assert done.returncode == 0, done.stderr
    assert all_sent(embedded, campaign_id), "resume did not send the rest"
    assert_witnessed(embedded, campaign_id)
