"""`status --json` and `watch` on real campaigns in embedded mode (SQLite, the sandbox over HTTP), mid-way:
paused by the provider's account error, scheduled for later, and outside their send window."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from collections import Counter
from datetime import UTC, datetime, timedelta

import pytest

from campaigns.store import Store
from campaigns.windows import TEHRAN
from dispatcher.demo.messy import write as write_demo_csv
from dispatcher.sandbox.core import SandboxState, sandbox_env
from dispatcher.sandbox.server import start
from tests.support.cli import run_cli
from tests.support.clock import tehran_clock


@pytest.fixture
def cli_env(tmp_path, monkeypatch):
    state = SandboxState(seed=3, final_after_s=0.2)
    running = start(state)
    env = sandbox_env(running.url)
    env["SMSDISPATCH_DATABASE_URL"] = f"sqlite:///{tmp_path / 'status.db'}"
    env["SMSDISPATCH_POLL_INTERVALS"] = "0.2,0.5"
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    monkeypatch.delenv("SMSDISPATCH_BROKER_URL", raising=False)
    monkeypatch.chdir(tmp_path)
    src = tmp_path / "list.csv"
    write_demo_csv(src, 500, seed=9)
    try:
        yield {"state": state, "src": src, "db": env["SMSDISPATCH_DATABASE_URL"], "tmp": tmp_path}
    finally:
        running.stop()


def status_json(campaign: int, capsys) -> dict:
    code, out, err = run_cli(["status", str(campaign), "--json"], capsys)
    assert code == 0, err
    return json.loads(out)


def test_paused_mid_way_shows_the_reason_and_watch_exits_1(cli_env, capsys):
    cli_env["state"].credit["ghasedak"] = 250  # two chunks of 100 go out, then "no credit"
    code, out, err = run_cli(
        ["send", str(cli_env["src"]), "-p", "ghasedak", "-m", "Hi {name}", "--json"], capsys
    )
    assert code == 0, err  # embedded send keeps its behaviour: it reports the pause and exits 0
    campaign = json.loads(out.strip().splitlines()[-1])["campaign"]
    data = status_json(campaign, capsys)
    assert data["state"] == "paused"
    # every key of the contract, and the new ones
    for key in ("campaign", "state", "counts", "reason", "progress", "rate", "eta_seconds", "eta", "waiting"):
        assert key in data
    counts = data["counts"]
    pending = counts.get("pending", 0)
    assert 0 < pending < data["recipients"], counts  # mid-way
    assert data["progress"] == {
        "total": data["recipients"],
        "sent": data["recipients"] - pending,
        "final": sum(n for s, n in counts.items() if s not in ("pending", "sent", "sent_to_operator")),
        "cancelled": counts.get("cancelled", 0),
    }
    assert data["waiting"]["reason"] == "paused" and data["waiting"]["until"] is None
    assert data["reason"] and data["reason"] in data["waiting"]["detail"]
    assert data["eta_seconds"] is None and data["eta"] is None and data["rate"] is None

    code, out, err = run_cli(["status", str(campaign)], capsys)
    assert code == 0 and f"to continue: smsdispatch resume {campaign}" in out
    assert f"sent:    {data['progress']['sent']} of {data['recipients']}" in out

    code, out, err = run_cli(["watch", str(campaign), "--interval", "0.1"], capsys)
    assert code == 1  # paused is not success
    assert data["reason"] in err and f"smsdispatch resume {campaign}" in err

    # credit back, resume, run to the end: watch then exits 0
    cli_env["state"].credit.pop("ghasedak")
    assert run_cli(["resume", str(campaign)], capsys)[0] == 0
    code, out, err = run_cli(["run", str(campaign), "--wait"], capsys)
    assert code == 0, err
    code, out, err = run_cli(["watch", str(campaign)], capsys)
    assert code == 0, err
    assert "completed" in out
    final = status_json(campaign, capsys)
    assert final["progress"]["final"] == final["recipients"] and final["waiting"] is None


def _send_in_background(cli_env, *extra: str) -> tuple[subprocess.Popen, int]:
    """`smsdispatch send` in its own process (embedded mode: it stays to send); returns it and the campaign id."""
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "dispatcher",
            "send",
            str(cli_env["src"]),
            "-p",
            "ghasedak",
            "-m",
            "Hi",
            *extra,
        ],
        cwd=cli_env["tmp"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        assert proc.poll() is None, proc.communicate()
        store = Store.from_url(cli_env["db"])
        try:
            views = store.campaigns()
        except Exception:  # noqa: BLE001 - the schema is still being created
            views = []
        finally:
            store.engine.dispose()
        if views and views[-1].state in ("scheduled", "running"):
            return proc, views[-1].id
        time.sleep(0.2)
    proc.kill()
    raise AssertionError("the campaign did not appear")


def _cancel_and_reap(proc: subprocess.Popen, campaign: int, capsys) -> None:
    assert run_cli(["cancel", str(campaign)], capsys)[0] == 0
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err


def test_scheduled_campaign_waits_for_its_start(cli_env, capsys):
    at = (datetime.now(UTC) + timedelta(hours=2)).replace(microsecond=0)
    proc, campaign = _send_in_background(cli_env, "--at", at.isoformat())
    try:
        data = status_json(campaign, capsys)
        assert data["state"] == "scheduled"
        assert data["waiting"]["reason"] == "scheduled"
        assert datetime.fromisoformat(data["waiting"]["until"]) == at
        assert f"{tehran_clock(at)} Tehran" in data["waiting"]["detail"]
        assert datetime.fromisoformat(data["eta"]) == at
        assert 0 < data["eta_seconds"] <= 7200
        assert data["progress"]["sent"] == 0 and data["rate"] is None
        code, out, _ = run_cli(["status", str(campaign)], capsys)
        assert f"waiting: scheduled: starts at {tehran_clock(at)} Tehran" in out
        # the `send` that waits to start it at its time is named, never "nothing will start it"
        assert data["sender"] is not None and data["sender"]["pid"] == proc.pid
        assert "nothing will start it" not in out
        assert f"sender:  waiting in pid {proc.pid} on " in out and "to start it at its time" in out
        # Ctrl-C stops watching, never the campaign
        watcher = subprocess.Popen(
            [sys.executable, "-m", "dispatcher", "watch", str(campaign)],
            cwd=cli_env["tmp"],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        while "Ctrl-C stops following" not in (line := watcher.stderr.readline()):
            assert line, watcher.communicate()
        watcher.send_signal(signal.SIGINT)
        _, err = watcher.communicate(timeout=30)
        assert watcher.returncode == 130
        assert f"campaign {campaign} goes on" in err and f"smsdispatch watch {campaign}" in err
        assert status_json(campaign, capsys)["state"] == "scheduled"
    finally:
        _cancel_and_reap(proc, campaign, capsys)
    assert status_json(campaign, capsys)["waiting"] is None


def test_outside_its_window_waits_for_it_to_open(cli_env, capsys):
    local = datetime.now(TEHRAN)
    opens = (local + timedelta(hours=2)).replace(second=0, microsecond=0)
    closes = opens + timedelta(hours=1)
    proc, campaign = _send_in_background(cli_env, "--window", f"{opens:%H:%M}-{closes:%H:%M}")
    try:
        data = status_json(campaign, capsys)
        assert data["state"] == "running" and data["window"] == f"{opens:%H:%M}-{closes:%H:%M}"
        assert data["waiting"]["reason"] == "window"
        assert datetime.fromisoformat(data["waiting"]["until"]) == opens
        assert data["waiting"]["detail"].endswith(f"opens at {tehran_clock(opens)} Tehran (+03:30)")
        assert data["progress"]["sent"] == 0  # nothing went out of the window
        assert datetime.fromisoformat(data["eta"]) == opens
        code, out, _ = run_cli(["status", str(campaign)], capsys)
        assert (
            f"waiting for the window {opens:%H:%M}-{closes:%H:%M}, opens at {tehran_clock(opens)} Tehran"
            in out
        )
    finally:
        _cancel_and_reap(proc, campaign, capsys)


def test_send_wait_that_ends_paused_exits_1_with_the_reason(cli_env, capsys):
    cli_env["state"].credit["ghasedak"] = 150
    code, out, err = run_cli(
        ["send", str(cli_env["src"]), "-p", "ghasedak", "-m", "Hi {name}", "--wait", "--json"], capsys
    )
    assert code == 1  # --wait succeeds only with a completed campaign
    summary = json.loads(out.strip().splitlines()[-1])
    assert summary["state"] == "paused"
    assert "paused: ghasedak code 9" in err and f"smsdispatch resume {summary['campaign']}" in err
    assert err.count("Fix the cause") == 1


def test_a_route_goes_on_through_the_next_provider_and_status_shows_both(cli_env, capsys):
    """Failover, embedded CLI: the same credit wall as above, with `-p ghasedak,mediapayamak`."""
    cli_env["state"].credit["ghasedak"] = 250
    code, out, err = run_cli(
        ["send", str(cli_env["src"]), "-p", "ghasedak,mediapayamak", "-m", "Hi {name}", "--json"], capsys
    )
    assert code == 0, err
    campaign = json.loads(out.strip().splitlines()[-1])["campaign"]
    data = status_json(campaign, capsys)
    assert data["state"] != "paused" and not data["counts"].get("pending"), data
    by_provider = {p: sum(c.values()) for p, c in data["by_provider"].items()}
    accepted = cli_env["state"].accepted()
    assert len({m.phone for m in accepted}) == len(accepted) == data["recipients"]  # each number once
    # whichever chunks the 250 of credit covered (100 + 100, or 100 + the last 54) went through ghasedak
    assert by_provider == Counter(m.provider for m in accepted) and 0 < by_provider["ghasedak"] <= 250
    assert [c["state"] for c in data["circuits"] if c["provider"] == "ghasedak"] == ["open"]
    code, out, err = run_cli(["status", str(campaign)], capsys)
    assert code == 0 and "via mediapayamak:" in out and "circuit ghasedak: open" in out


def test_a_route_is_refused_only_when_the_whole_route_lacks_credit(cli_env, capsys, monkeypatch):
    """Failover: the preflight's credit is the route's together (one unit: rial), so a first provider
    short of credit is no refusal when the next one covers the rest; status shows the cost per provider."""
    monkeypatch.setenv("SMSDISPATCH_GHASEDAK_PRICE", "155")
    monkeypatch.setenv("SMSDISPATCH_GHASEDAK_GATEWAY_PRICE", "155")
    cli_env["state"].credit["ghasedak"] = 250  # 250 messages' worth of rial: short of the ~480 to send
    code, out, err = run_cli(["send", str(cli_env["src"]), "-p", "ghasedak", "-m", "Hi {name}"], capsys)
    assert code == 3 and "credit" in err, err  # alone, it is refused
    argv = ["send", str(cli_env["src"]), "-p", "ghasedak,ghasedak-gateway", "-m", "Hi {name}", "--json"]
    code, out, err = run_cli(argv, capsys)
    assert code == 0, err
    summary = json.loads(out.strip().splitlines()[-1])
    assert summary["credit"]["enough"] is True
    data = status_json(summary["campaign"], capsys)
    costs = data["cost_by_provider"]
    assert set(costs) <= {"ghasedak", "ghasedak-gateway"} and costs["ghasedak"]["estimated"] > 0
    moved = sum(data["chunks"].values())  # each moved chunk's share is rounded up: at most a rial a chunk
    assert 0 <= sum(c["estimated"] or 0 for c in costs.values()) - data["cost"]["estimated"] <= moved
