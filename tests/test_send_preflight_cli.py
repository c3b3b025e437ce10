"""`send` with the preflight wired in (README, "Preflight"), through the CLI, against the real
sandbox over HTTP and a real SQLite store: the half-send, the re-send after a pause and the 23-part
message caught before anything is stored (exit 3, one line), a rejected key (exit 2), the JSON contract,
--skip-recent, the test send, and the question asked in a terminal (a pty)."""

from __future__ import annotations

import json
import os
import pty
import select
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.support.cli import run_cli
from tests.test_e2e import cli_env  # noqa: F401 - cli_env is a fixture


@pytest.fixture
def sandboxed(cli_env):  # noqa: F811 - the e2e fixture: the sandbox, a SQLite store, the environment set
    return cli_env


TEXT = "سلام {name}، حراج پاییزه. لغو۱۱"
JSON_KEYS = {"operators", "parts_histogram", "cost", "credit", "warnings", "preview"}


def write_csv(path: Path, n: int, *, start: int = 0) -> Path:
    lines = ["mobile,name", *(f"0912{start + i:07d},name{i}" for i in range(n))]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def send(file: Path, capsys, *extra: str, text: str = TEXT) -> tuple[int, str, str]:
    return run_cli(["send", str(file), "-p", "amoot", "-m", text, "--window", "any", *extra], capsys)


def error_line(err: str) -> str:
    lines = [line for line in err.strip().splitlines() if line.strip()]
    assert len(lines) == 1, err
    assert lines[0].startswith("error: ") and "Traceback" not in err
    return lines[0]


def campaigns(capsys) -> list[dict]:
    code, out, err = run_cli(["list", "--json"], capsys)
    assert code == 0, err
    return json.loads(out)


def test_half_send_is_refused_with_exit_3_and_nothing_stored(sandboxed, tmp_path, capsys):
    sandboxed.state.credit["amoot"] = 10  # 10 one-part messages of credit (10,000 rial) for 20 recipients
    code, out, err = send(write_csv(tmp_path / "list.csv", 20), capsys)
    assert code == 3 and out == ""
    line = error_line(err)
    assert line.startswith("error: refused by preflight check credit: credit 10,000 rial is below the 20,000")
    assert line.endswith("to send anyway: --allow-partial")
    assert campaigns(capsys) == [] and sandboxed.state.accepted("amoot") == []


def test_resend_after_a_pause_is_refused_naming_resume(sandboxed, tmp_path, capsys):
    file = write_csv(tmp_path / "list.csv", 20)
    sandboxed.state.credit["amoot"] = 10
    code, out, err = send(
        file, capsys, "--allow-partial"
    )  # goes on, and pauses on the provider's credit error
    assert code == 0, err
    assert [(c["campaign"], c["state"]) for c in campaigns(capsys)] == [(1, "paused")]
    sandboxed.state.credit["amoot"] = 1000
    code, out, err = send(file, capsys)  # the natural reflex: the same send again
    assert code == 3
    line = error_line(err)
    assert (
        'refused by preflight check duplicate: the same recipients and text as campaign 1 "list", paused'
        in line
    )
    assert "continue it with: smsdispatch resume 1" in line and line.endswith("--allow-duplicate")
    assert len(campaigns(capsys)) == 1
    code, out, err = send(file, capsys, "--allow-duplicate", "--json")
    assert code == 0, err
    assert json.loads(out)["campaign"] == 2 and len(campaigns(capsys)) == 2


def test_23_part_message_warns_and_strict_refuses(sandboxed, tmp_path, capsys, monkeypatch):
    file = write_csv(tmp_path / "list.csv", 3)
    long_text = "س" * 1500 + " {name} لغو11"
    code, out, err = send(file, capsys, "--dry-run", "--type", "transactional", text=long_text)
    assert code == 0, err
    assert "warning parts: 3 messages are longer than 4 SMS parts (up to 23)" in " ".join(err.split())
    assert "dry run, nothing stored" in out
    monkeypatch.setenv("SMSDISPATCH_STRICT", "1")
    code, out, err = send(file, capsys, "--type", "transactional", text=long_text)
    assert code == 3
    line = error_line(err)
    assert line.startswith("error: refused by preflight check parts: 3 messages are longer than 4 SMS parts")
    assert line.endswith("SMSDISPATCH_MAX_PARTS=23, or unset SMSDISPATCH_STRICT")
    assert campaigns(capsys) == [] and sandboxed.state.accepted("amoot") == []


def test_json_carries_the_preflight(sandboxed, tmp_path, capsys):
    file = write_csv(tmp_path / "list.csv", 4)
    for extra in (("--dry-run",), ()):
        code, out, err = send(file, capsys, "--json", *extra)
        assert code == 0, err
        data = json.loads(out.strip().splitlines()[-1])
        assert set(data) >= JSON_KEYS
        assert data["operators"]["MCI"] == 4 and data["parts_histogram"] == {"1": 4}
        assert data["cost"]["currency"] == "IRR" and data["cost"]["estimate"] > 0  # ISO 4217, as status says
        assert data["credit"]["unit"] == "rial" and data["credit"]["enough"] is True
        assert [w["code"] for w in data["warnings"]] == []  # --window any: no window was a choice, not a slip
        assert data["preview"][0] == {"row": 2, "text": "سلام name0، حراج پاییزه. لغو۱۱", "parts": 1}
        assert "Traceback" not in err and "previews" not in err  # the summary is for people, not with --json
        if data["campaign"] is not None:  # one spelling of the currency in every JSON output
            code, out, err = run_cli(["status", str(data["campaign"]), "--json"], capsys)
            assert code == 0, err
            assert json.loads(out)["cost"]["currency"] == data["cost"]["currency"] == "IRR"


def test_the_summary_goes_to_stderr(sandboxed, tmp_path, capsys):
    code, out, err = send(write_csv(tmp_path / "list.csv", 2), capsys, "--dry-run")
    assert code == 0, err
    assert "recipients" in err and "previews" in err and "cost" in err and "credit" in err
    assert out.startswith("dry run, nothing stored: 2 recipients")


def test_rejected_key_exits_2_with_nothing_stored(sandboxed, tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("SMSDISPATCH_AMOOT_TOKEN", "wrong-token")
    code, _, err = send(write_csv(tmp_path / "list.csv", 3), capsys)
    assert code == 2
    line = error_line(err)
    assert "amoot refused the account" in line and "wrong-token" not in err
    assert campaigns(capsys) == [] and sandboxed.state.accepted("amoot") == []


def test_skip_recent_moves_them_to_the_rejects_file(sandboxed, tmp_path, capsys):
    code, _, err = send(write_csv(tmp_path / "first.csv", 3), capsys, "--type", "transactional")
    assert code == 0, err
    second = write_csv(tmp_path / "second.csv", 5)  # the first three again, and two more
    code, out, err = send(second, capsys, "--type", "transactional", "--dry-run", "--json")
    assert code == 0
    (warning,) = json.loads(out)["warnings"]
    assert warning["code"] == "recent" and warning["message"].startswith("3 recipients got a message")
    code, out, err = send(second, capsys, "--type", "transactional", "--skip-recent", "--json")
    assert code == 0, err
    data = json.loads(out)
    assert (data["campaign"], data["recipients"], data["rejected"]) == (2, 2, 3)
    assert data["rejects_file"] == str(tmp_path / "second.campaign-2.rejects.csv")  # its own
    rejects = Path(data["rejects_file"]).read_text(encoding="utf-8-sig").splitlines()
    assert rejects[1:] == [f"{r},0912000000{r - 2},sent recently (campaign 1),name{r - 2}" for r in (2, 3, 4)]
    sent = [m.phone for m in sandboxed.state.accepted("amoot")]
    assert sorted(sent) == [f"98912000000{i}" for i in (0, 1, 2, 3, 4)]  # the three once, then the two new


def test_test_send_reaches_the_test_numbers_only(sandboxed, tmp_path, capsys):
    file = tmp_path / "list.csv"
    file.write_text(
        "mobile,name\n09121110001,Sara\n09121110002,\n09121110003,Maryam-Sadat\n", encoding="utf-8"
    )
    code, out, err = send(file, capsys, "--test-to", "09350000001, +989350000002", "--wait")
    assert code == 0, err
    accepted = sandboxed.state.accepted("amoot")
    assert {m.phone for m in accepted} == {"989350000001", "989350000002"}  # the sandbox keeps digits
    texts = sorted({m.text for m in accepted})
    assert texts == sorted(
        [
            "سلام Sara، حراج پاییزه. لغو۱۱",
            "سلام Maryam-Sadat، حراج پاییزه. لغو۱۱",
            "سلام ، حراج پاییزه. لغو۱۱",
        ]
    )  # first row, longest text, empty placeholder
    assert "the campaign itself was not created" in out and "delivered 2" in out
    listed = campaigns(capsys)
    assert len(listed) == 3 and all(c["test"] and c["name"].startswith("TEST list: ") for c in listed)
    assert {c["recipients"] for c in listed} == {2}
    # The test numbers were not the audience: a real send to them is not warned as sent recently.
    staff = tmp_path / "staff.csv"
    staff.write_text("mobile,name\n09350000001,a\n09350000002,b\n", encoding="utf-8")
    code, out, err = send(staff, capsys, "--type", "transactional", "--dry-run", "--json")
    assert code == 0 and json.loads(out)["warnings"] == [], err


def _pty_send(args: list[str], answer: bytes, env: dict[str, str], cwd: Path) -> tuple[int, str]:
    """Run `smsdispatch send` with a terminal on stdin (a pty), answer the question, return (code, output)."""
    master, slave = pty.openpty()
    proc = subprocess.Popen(
        [sys.executable, "-m", "dispatcher", "send", *args],
        stdin=slave,
        stdout=slave,
        stderr=slave,
        env=env,
        cwd=cwd,
    )
    os.close(slave)
    seen, answered, deadline = b"", False, time.monotonic() + 120
    try:
        while time.monotonic() < deadline:
            ready, _, _ = select.select([master], [], [], 0.5)
            if ready:
                try:
                    chunk = os.read(master, 4096)
                except OSError:  # the child closed the terminal
                    break
                if not chunk:
                    break
                seen += chunk
            if not answered and b"[y/N]" in seen:
                os.write(master, answer + b"\r")
                answered = True
            if proc.poll() is not None and not ready:
                break
        return proc.wait(timeout=60), seen.decode("utf-8", "replace")
    finally:
        os.close(master)
        if proc.poll() is None:
            proc.kill()


def test_a_terminal_is_asked_before_sending(sandboxed, tmp_path, capsys):
    file = write_csv(tmp_path / "list.csv", 3)
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1]), "COLUMNS": "200"}
    args = [str(file), "-p", "amoot", "-m", TEXT, "--window", "any"]
    code, seen = _pty_send(args, b"n", env, tmp_path)
    assert "Send this campaign? It starts now, " in seen and "[y/N]" in seen
    assert "not sent; nothing stored" in seen
    assert code == 1
    assert campaigns(capsys) == [] and sandboxed.state.accepted("amoot") == []
    assert not (tmp_path / "e2e.db").exists()  # "no" leaves no database behind
    code, seen = _pty_send(args, b"y", env, tmp_path)
    assert code == 0, seen
    assert len(sandboxed.state.accepted("amoot")) == 3
    # --yes asks nothing, and neither does a send without a terminal (every other test here).
    code, seen = _pty_send([*args, "--allow-duplicate", "--yes"], b"n", env, tmp_path)
    assert code == 0 and "[y/N]" not in seen
