"""A followed campaign whose recipients end held `unknown` (the provider could not say whether their send
went out, and cannot be asked) is not a silent success: `send --wait`, `run --wait` and `watch` say how
many, what it means and what to do, and exit 1 (README, "Exit codes"). Through the CLI, SQLite store,
the sandbox over HTTP (Negin: no way to ask whether an interrupted send went out)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from dispatcher.sandbox.core import Fault
from tests.support.cli import cli_sandbox, run_cli


@pytest.fixture
def sandboxed(tmp_path, monkeypatch):
    with cli_sandbox(tmp_path, monkeypatch, database_url=f"sqlite:///{tmp_path / 'unknown.db'}") as running:
        yield running


def write_list(path: Path, n: int) -> Path:
    path.write_text("mobile,name\n" + "".join(f"0912{i:07d},name{i}\n" for i in range(n)), encoding="utf-8")
    return path


def send(file: Path, capsys, text: str, *extra: str) -> tuple[int, str, str]:
    argv = ["send", str(file), "-p", "negin", "-m", text, "--type", "transactional", "--yes", *extra]
    return run_cli(argv, capsys)


def test_every_recipient_unknown_is_said_and_exits_1(sandboxed, tmp_path, capsys):
    """Negin sends one number a call: each of the 5 calls answered 500 after the sandbox accepted it, so
    all 5 are held `unknown`; `send --wait` used to end with exit 0 and not a word about it."""
    sandboxed.state.add_fault(Fault("negin", "send", "accept_then_http", status=500, times=5))
    file = write_list(tmp_path / "list.csv", 5)
    code, out, err = send(file, capsys, "hello, lastday. laghv11", "--wait", "--json")
    seen = " ".join(err.split())
    assert code == 1, err
    assert json.loads(out.strip().splitlines()[-1])["state"] == "completed"
    assert "campaign 1 finished, but all 5 recipients are unknown" in seen, seen
    assert "may have been sent and charged" in seen
    assert "provider's panel" in seen and "smsdispatch report 1 --out report.csv" in seen
    assert "smsdispatch status 1" in seen
    assert len(sandboxed.state.accepted("negin")) == 5  # they did go out: held, never sent again
    code, out, _ = run_cli(["status", "1", "--json"], capsys)
    assert code == 0 and json.loads(out)["counts"] == {"unknown": 5}

    code, out, err = run_cli(["watch", "1", "--interval", "0.1"], capsys)  # the same, later
    assert code == 1, err
    assert "all 5 recipients are unknown" in " ".join(err.split())
    code, out, err = run_cli(["run", "1", "--wait"], capsys)
    assert code == 1, err
    assert "all 5 recipients are unknown" in " ".join(err.split())


def test_some_unknown_names_how_many_of_all(sandboxed, tmp_path, capsys):
    """Negin sends one number a call: 2 of 6 calls fail with a 500 before the sandbox accepts
    them (it cannot be asked which): 2 of 6 unknown, said as such; the other 4 get their reports."""
    sandboxed.state.add_fault(Fault("negin", "send", "http", status=500, times=2))
    file = write_list(tmp_path / "list.csv", 6)
    code, _, err = send(file, capsys, "hello {name}, lastday. laghv11", "--wait")
    seen = " ".join(err.split())
    assert code == 1, err
    assert "campaign 1 finished, but 2 of 6 recipients are unknown" in seen, seen
    code, out, _ = run_cli(["status", "1", "--json"], capsys)
    counts = json.loads(out)["counts"]
    assert counts.get("unknown") == 2 and sum(counts.values()) == 6, counts


def test_every_outcome_known_is_exit_0_without_the_notice(sandboxed, tmp_path, capsys):
    file = write_list(tmp_path / "list.csv", 5)
    code, _, err = send(file, capsys, "hello, lastday. laghv11", "--wait")
    assert code == 0, err
    assert "recipients are unknown" not in err and "finished, but" not in err
