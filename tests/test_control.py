"""Scheduling, send windows and campaign control with real parts: Celery workers and beat as
subprocesses on Redis, PostgreSQL, the sandbox over HTTP. The sandbox's record is the witness."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from collections import Counter
from datetime import UTC, datetime, timedelta

import pytest

from campaigns.store import Store
from campaigns.windows import TEHRAN
from dispatcher.sandbox.core import SandboxState
from tests.support.cluster import wait_completed

pytestmark = pytest.mark.slow


def cli(cluster, *args: str) -> subprocess.CompletedProcess:
    return cluster.cli(*args)


def send(cluster, rows: int, text: str, *extra: str) -> dict:
    return cluster.send(rows, "ghasedak", *extra, text=text)[1]


def accepted(state: SandboxState, prefix: str) -> list:
    return [m for m in state.accepted("ghasedak") if m.text.startswith(prefix)]


def once_each(state: SandboxState, prefix: str) -> Counter:
    counts = Counter(m.phone for m in accepted(state, prefix))
    assert set(counts.values()) <= {1}, f"{prefix}: a number was sent twice"
    return counts


def wait_for(predicate, timeout: float, what: str) -> None:  # noqa: ANN001
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}")


def no_chunk_sending(db: str, campaign_id: int) -> bool:
    return Store.from_url(db).chunk_counts(campaign_id).get("sending", 0) == 0


def test_schedule_and_window_hold_until_their_time_even_across_a_beat_restart(cluster):
    state: SandboxState = cluster.state
    cluster.spawn("worker", "-c", "4", "-n", "w1@%h")
    beat = cluster.spawn("beat", "-s", str(cluster.tmp / "beat-schedule"))

    # A: starts two minutes from now, written in Tehran wall time without an offset.
    send_at = (datetime.now(UTC) + timedelta(seconds=120)).replace(microsecond=0)
    a = send(cluster, 300, "A {name}", "--at", send_at.astimezone(TEHRAN).strftime("%Y-%m-%dT%H:%M:%S"))
    assert a["state"] == "scheduled"

    # B: runs now, but its daily window opens at the next whole minute at least 45 s away.
    now_tehran = datetime.now(TEHRAN)
    opens = (now_tehran + timedelta(seconds=105)).replace(second=0, microsecond=0)
    closes = opens + timedelta(minutes=30)
    b = send(cluster, 400, "B {name}", "--window", f"{opens:%H:%M}-{closes:%H:%M}")
    assert b["state"] == "running"

    # Beat dies shortly before A's release and comes back after it.
    wait_for(lambda: datetime.now(UTC) >= send_at - timedelta(seconds=15), 150, "the release to near")
    assert not accepted(state, "A "), "A was sent before its time"
    os.kill(beat.pid, signal.SIGKILL)
    beat.wait(timeout=10)
    wait_for(lambda: datetime.now(UTC) >= send_at + timedelta(seconds=5), 60, "the release time to pass")
    assert Store.from_url(cluster.db).campaign_state(a["campaign"])[0] == "scheduled"
    cluster.spawn("beat", "-s", str(cluster.tmp / "beat-schedule"))

    wait_completed(cluster.db, a["campaign"], timeout=120)
    wait_completed(cluster.db, b["campaign"], timeout=120)
    a_msgs, b_msgs = accepted(state, "A "), accepted(state, "B ")
    assert min(m.accepted_at for m in a_msgs) >= send_at.timestamp()
    assert min(m.accepted_at for m in b_msgs) >= opens.timestamp()
    assert len(once_each(state, "A ")) == a["recipients"]
    assert len(once_each(state, "B ")) == b["recipients"]


def test_pause_resume_cancel_mid_campaign_never_send_twice(cluster):
    state: SandboxState = cluster.state
    # The account's rate limit keeps the campaign going for ~27 s, so each command lands mid-campaign even
    # when a CLI process takes seconds to start on a loaded machine (at 300/s the cancel came too late).
    cluster.env["SMSDISPATCH_GHASEDAK_RATE"] = "150/s"
    cluster.spawn("worker", "-c", "2", "-n", "w1@%h")
    cluster.spawn("beat", "-s", str(cluster.tmp / "beat-schedule"))
    c = send(cluster, 4000, "C {name}")
    campaign, db = c["campaign"], cluster.db

    wait_for(lambda: len(accepted(state, "C ")) >= 400, 60, "the first sends")
    done = cli(cluster, "pause", str(campaign))
    assert done.returncode == 0, done.stderr
    wait_for(lambda: no_chunk_sending(db, campaign), 30, "the chunks in flight to finish")
    at_pause = len(accepted(state, "C "))
    time.sleep(3)  # several sweeps and worker polls: a paused campaign must not send
    assert len(accepted(state, "C ")) == at_pause
    status = json.loads(cli(cluster, "status", str(campaign), "--json").stdout)
    assert status["state"] == "paused" and status["counts"]["pending"] > 0

    assert cli(cluster, "resume", str(campaign)).returncode == 0
    wait_for(lambda: len(accepted(state, "C ")) >= at_pause + 600, 60, "sending to continue")
    assert cli(cluster, "cancel", str(campaign)).returncode == 0
    wait_for(lambda: no_chunk_sending(db, campaign), 30, "the chunks in flight to finish")
    time.sleep(2)
    sent = once_each(state, "C ")
    assert at_pause + 600 <= len(sent) < c["recipients"]

    store = Store.from_url(db)
    assert store.campaign_state(campaign)[0] == "cancelled"
    states = store.recipient_states(campaign)
    assert len(states) == c["recipients"]
    for phone, st in states.items():
        went_out = phone.lstrip("+") in sent
        assert went_out == (st != "cancelled"), (phone, st)
    assert "pending" not in states.values()


def test_account_error_pauses_with_the_reason_and_resume_finishes_it(cluster):
    state: SandboxState = cluster.state
    state.credit["ghasedak"] = 500
    cluster.spawn("worker", "-c", "4", "-n", "w1@%h")
    cluster.spawn("beat", "-s", str(cluster.tmp / "beat-schedule"))
    d = send(cluster, 1500, "D {name}")
    campaign, db = d["campaign"], cluster.db

    wait_for(lambda: Store.from_url(db).campaign_state(campaign)[0] == "paused", 60, "the campaign to pause")
    status = json.loads(cli(cluster, "status", str(campaign), "--json").stdout)
    assert status["state"] == "paused" and status["reason"], status
    wait_for(lambda: no_chunk_sending(db, campaign), 30, "the chunks in flight to finish")
    assert len(accepted(state, "D ")) <= 500

    state.credit.pop("ghasedak")  # the customer tops up
    assert cli(cluster, "resume", str(campaign)).returncode == 0
    counts = wait_completed(db, campaign, timeout=120)
    assert sum(counts.values()) == d["recipients"]
    assert len(once_each(state, "D ")) == d["recipients"]
