"""A messy real-world CSV, end to end, over real HTTP: the CLI, the store, the runner, the sandbox.

The sandbox's own record of what it accepted is the witness: every valid unique number exactly
once, and a report whose final states match what the sandbox decided for each number.
"""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pytest
import requests

from campaigns.normalise import normalise
from dispatcher.demo.messy import write as write_demo_csv
from dispatcher.sandbox.core import sandbox_env
from tests.support.cli import cli_sandbox, run_cli

PROVIDERS = ["ghasedak", "mediapayamak", "amoot", "negin", "ghasedak-gateway"]


def expected_numbers(csv_path: Path) -> set[str]:
    with csv_path.open(encoding="utf-8") as fh:
        return {p for row in csv.DictReader(fh) if (p := normalise(row["mobile"]))}


def read_report(path: Path) -> list[dict[str, str]]:
    with path.open(encoding="utf-8-sig") as fh:
        return list(csv.DictReader(fh))


@pytest.fixture
def cli_env(tmp_path, monkeypatch):
    database_url = f"sqlite:///{tmp_path / 'e2e.db'}"
    with cli_sandbox(
        tmp_path, monkeypatch, database_url=database_url, seed=11, final_after_s=0.2, poll_intervals="0.2,0.5"
    ) as running:
        yield running


@pytest.mark.parametrize("provider", PROVIDERS)
def test_messy_csv_campaign_end_to_end(provider, cli_env, tmp_path, capsys, monkeypatch):
    rows = 60 if provider == "negin" else 400
    if provider == "negin":
        monkeypatch.setenv("SMSDISPATCH_NEGIN_MULTI", "1")
        monkeypatch.setenv("SMSDISPATCH_NEGIN_BATCH", "20")
    src = tmp_path / "customers.csv"
    write_demo_csv(src, rows, seed=5)
    expected = expected_numbers(src)
    code, out, err = run_cli(
        ["send", str(src), "--provider", provider, "--message", "{name} عزيز، تخفیف ویژه لغو11", "--json"],
        capsys,
    )
    assert code == 0, err
    summary = json.loads(out.strip().splitlines()[-1])
    assert summary["recipients"] == len(expected)
    assert summary["recipients"] + summary["rejected"] == rows
    code, out, err = run_cli(["poll", "--until-done", "--timeout", "60"], capsys)
    assert code == 0, err
    state = cli_env.state
    accepted = state.count_by_phone(provider)
    blacklisted_at_send = {p for p in expected if provider == "negin" and state.outcome(p) == "blacklisted"}
    assert set(accepted.values()) == {1}, "a number was sent twice"
    assert {"+" + p for p in accepted} == expected - blacklisted_at_send
    report = tmp_path / "r.csv"
    code, out, err = run_cli(["report", str(summary["campaign"]), "--out", str(report)], capsys)
    assert code == 0, err
    rows_out = read_report(report)
    assert {r["phone"] for r in rows_out} == expected
    for r in rows_out:
        assert r["state"] == state.outcome(r["phone"]), r
        assert r["name"]  # the CSV's own columns follow
    code, out, _ = run_cli(["status", str(summary["campaign"]), "--json"], capsys)
    status = json.loads(out)
    assert status["state"] == "completed"
    assert sum(status["counts"].values()) == len(expected)
    # Arabic ي folded to Persian ی in what the provider received
    assert all("ي" not in m.text and "عزیز" in m.text for m in state.accepted(provider))


def wait_port(url: str, timeout: float = 20) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            requests.get(url + "/_sandbox/messages", timeout=1)
            return
        except requests.RequestException:
            time.sleep(0.1)
    raise TimeoutError(url)


def test_cli_processes_against_a_sandbox_process(tmp_path):
    """`smsdispatch sandbox` in one process, `send`, `poll --until-done`, `report` in others."""
    port = 8700 + os.getpid() % 200
    url = f"http://127.0.0.1:{port}"
    exe = [sys.executable, "-m", "dispatcher"]
    env = {
        **os.environ,
        **sandbox_env(url),
        "SMSDISPATCH_DATABASE_URL": f"sqlite:///{tmp_path / 'p.db'}",
        "SMSDISPATCH_POLL_INTERVALS": "0.3",
    }
    env.pop("SMSDISPATCH_BROKER_URL", None)
    server = subprocess.Popen(
        [*exe, "sandbox", "--port", str(port), "--seed", "3", "--final-after", "0.3"],
        env=env,
        stderr=subprocess.DEVNULL,
    )
    try:
        wait_port(url)
        src = tmp_path / "list.csv"
        write_demo_csv(src, 300, seed=9)
        sent = subprocess.run(
            [*exe, "send", str(src), "--provider", "ghasedak", "--message", "Hello {name}", "--json"],
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert sent.returncode == 0, sent.stderr
        campaign = json.loads(sent.stdout.strip().splitlines()[-1])["campaign"]
        polled = subprocess.run(
            [*exe, "poll", "--until-done", "--timeout", "60"],
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert polled.returncode == 0, polled.stderr
        report = tmp_path / "report.csv"
        rep = subprocess.run(
            [*exe, "report", str(campaign), "--out", str(report)],
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert rep.returncode == 0, rep.stderr
        accepted = requests.get(url + "/_sandbox/messages?provider=ghasedak", timeout=5).json()
        counts = Counter(m["phone"] for m in accepted)
        assert set(counts.values()) == {1}
        assert {"+" + p for p in counts} == expected_numbers(src)
        for row in read_report(report):
            outcome = requests.get(
                url + "/_sandbox/outcome", params={"phone": row["phone"]}, timeout=5
            ).json()["outcome"]
            assert row["state"] == outcome
    finally:
        server.terminate()
        server.wait(timeout=10)


@pytest.mark.parametrize(
    "argv, fragment",
    [
        (["send", "{csv}", "--provider", "nosuch", "--message", "x"], "unknown provider"),
        (["send", "{csv}", "--provider", "ghasedak", "--message", "  "], "empty"),
        (["send", "{csv}", "--provider", "ghasedak", "--message", "hi {nosuch}"], "nosuch"),
        (["send", "{empty}", "--provider", "ghasedak", "--message", "x"], "empty"),
        (["send", "{binary}", "--provider", "ghasedak", "--message", "x"], ""),
        (["send", "{nophone}", "--provider", "ghasedak", "--message", "x"], "--column"),
        (["send", "{csv}", "--provider", "ghasedak", "--message", "x", "--at", "tomorrow"], "--at"),
        (
            ["send", "{csv}", "--provider", "ghasedak", "--message", "x", "--at", "1404/01/01 10:00"],
            "in the past",
        ),
        (["send", "{csv}", "--provider", "ghasedak", "--message", "x", "--window", "9-5"], "--window"),
        (["send", "{missing}", "--provider", "ghasedak", "--message", "x"], "no such file"),
        (["status", "999"], "no campaign"),
    ],
)
def test_bad_input_is_one_line_exit_2_and_writes_nothing(argv, fragment, cli_env, tmp_path, capsys):
    (tmp_path / "ok.csv").write_text("mobile,name\n09121234567,a\n", encoding="utf-8")
    (tmp_path / "empty.csv").write_bytes(b"")
    (tmp_path / "binary.csv").write_bytes(bytes(range(256)) * 20)
    (tmp_path / "nophone.csv").write_text("name,city\na,b\n", encoding="utf-8")
    paths = {
        "csv": "ok.csv",
        "empty": "empty.csv",
        "binary": "binary.csv",
        "nophone": "nophone.csv",
        "missing": "nope.csv",
    }
    argv = [str(tmp_path / paths[a[1:-1]]) if a[1:-1] in paths and a.startswith("{") else a for a in argv]
    code, out, err = run_cli(argv, capsys)
    assert code == 2
    lines = [line for line in err.strip().splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: "), err
    assert fragment in lines[0]
    assert "Traceback" not in err
    code, out, _ = run_cli(["list", "--json"], capsys)
    assert json.loads(out) == []


def test_missing_credential_is_named(cli_env, tmp_path, capsys, monkeypatch):
    monkeypatch.delenv("SMSDISPATCH_GHASEDAK_APIKEY")
    (tmp_path / "ok.csv").write_text("mobile\n09121234567\n", encoding="utf-8")
    code, _, err = run_cli(
        ["send", str(tmp_path / "ok.csv"), "--provider", "ghasedak", "--message", "x"], capsys
    )
    assert code == 2 and "SMSDISPATCH_GHASEDAK_APIKEY" in err


def test_partly_bad_file_keeps_good_rows(cli_env, tmp_path, capsys):
    src = tmp_path / "mixed.csv"
    src.write_text(
        "mobile,name\n09121234567,a\nnot-a-number,b\n+989351234567,c\n0912 123 4567,d\n02188776655,e\n",
        encoding="utf-8",
    )
    code, out, err = run_cli(
        ["send", str(src), "--provider", "ghasedak", "--message", "hi", "--json"], capsys
    )
    assert code == 0, err
    summary = json.loads(out.strip().splitlines()[-1])
    assert (summary["recipients"], summary["rejected"]) == (2, 3)
    with open(summary["rejects_file"], encoding="utf-8-sig") as fh:
        rejects = list(csv.DictReader(fh))
    assert [r["row"] for r in rejects] == ["3", "5", "6"]
    assert "duplicate" in rejects[1]["reason"]


def test_providers_check_reports_each_configured_account(cli_env, capsys, monkeypatch):
    code, out, err = run_cli(["providers", "check", "--json"], capsys)
    assert code == 0, err
    rows = {r["provider"]: r for r in json.loads(out)}
    assert all(r["configured"] and r["ok"] for r in rows.values())
    assert rows["ghasedak"]["balance"] > 0 and "no balance call" in rows["negin"]["detail"]
    assert (
        rows["ghasedak"]["checked"] is True and rows["negin"]["checked"] is False
    )  # no balance call: untried
    monkeypatch.setenv("SMSDISPATCH_AMOOT_TOKEN", "wrong-token-xyz")
    code, out, _ = run_cli(["providers", "check", "--json"], capsys)
    assert code == 1 and "wrong-token-xyz" not in out
    assert not {r["provider"]: r for r in json.loads(out)}["amoot"]["ok"]


def test_embedded_send_collects_reports_while_it_is_still_sending(cli_env, tmp_path, capsys, monkeypatch):
    """A long campaign's first delivery reports do not wait for its last chunk."""
    monkeypatch.setenv("SMSDISPATCH_GHASEDAK_RATE", "200/s")  # ~3 s of sending for 600 recipients
    monkeypatch.setenv("SMSDISPATCH_GHASEDAK_BATCH", "20")
    src = tmp_path / "long.csv"
    write_demo_csv(src, 600, seed=9)
    code, out, err = run_cli(
        ["send", str(src), "--provider", "ghasedak", "--message", "Hi", "--json"], capsys
    )
    assert code == 0, err
    campaign = json.loads(out.strip().splitlines()[-1])["campaign"]
    report = tmp_path / "long-report.csv"
    assert run_cli(["report", str(campaign), "--out", str(report)], capsys)[0] == 0
    rows = read_report(report)
    last_sent = max(r["sent_at"] for r in rows if r["sent_at"])
    reported_before = [r for r in rows if r["delivered_at"] and r["delivered_at"] < last_sent]
    assert reported_before, "no delivery report was recorded before the last chunk went out"
