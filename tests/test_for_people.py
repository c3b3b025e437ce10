"""What people read, as they would run it: tables and bars whole at 80 columns in a real terminal (a
pty), output to a pipe or a file never wrapped whatever the length of a path, one line per failover
move, help texts and errors without markup loss or internal references, the README's examples, and
`contacts push`'s wording, folding and one-line refusal, each campaign's own rejects file."""

from __future__ import annotations

import ast
import fcntl
import io
import json
import logging
import os
import pty
import re
import select
import struct
import subprocess
import sys
import termios
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import typer
from rich.cells import cell_len
from rich.console import Console

from campaigns.progress import CampaignProgress
from dispatcher.cli import CurrentStderr, app
from dispatcher.cli.bars import ProgressBars
from dispatcher.sandbox.core import Fault
from dispatcher.sandbox.phonebook import book
from tests.support.cli import run_cli
from tests.test_contacts import environ, phonebooks, run, write_rows  # noqa: F401 - phonebooks is a fixture
from tests.test_e2e import cli_env  # noqa: F401 - cli_env is a fixture

ROOT = Path(__file__).resolve().parents[1]
ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]|\x1b\][^\x07]*\x07")
LONG_NAME = "فروش ویژه پاییز ۱۴۰۵ برای مشتریان وفادار فروشگاه"


def in_a_terminal(args: list[str], columns: int, cwd: Path) -> list[str]:
    """`smsdispatch ARGS` with a terminal of `columns` on stdout and stderr (a pty): its lines, without
    the terminal's escape codes."""
    master, slave = pty.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 50, columns, 0, 0))
    env = {k: v for k, v in os.environ.items() if k not in ("COLUMNS", "LINES", "TTY_COMPATIBLE")}
    env.update(PYTHONPATH=str(ROOT), TERM="xterm-256color")
    proc = subprocess.Popen(
        [sys.executable, "-m", "dispatcher", *args],
        stdin=slave,
        stdout=slave,
        stderr=slave,
        env=env,
        cwd=cwd,
    )
    os.close(slave)
    seen, deadline = b"", time.monotonic() + 120
    try:
        while time.monotonic() < deadline:
            ready, _, _ = select.select([master], [], [], 0.5)
            if ready:
                try:
                    chunk = os.read(master, 65536)
                except OSError:
                    break
                if not chunk:
                    break
                seen += chunk
            elif proc.poll() is not None:
                break
    finally:
        os.close(master)
        proc.wait(timeout=30)
    assert proc.returncode == 0, seen.decode(errors="replace")
    shown = [line.rstrip("\r").split("\r")[-1] for line in ANSI.sub("", seen.decode()).split("\n")]
    return [line for line in shown if line.strip()]  # a line redrawn after a \r: what stays on screen


def campaigns_for_tables(tmp_path: Path, capsys, monkeypatch) -> None:
    monkeypatch.setenv("SMSDISPATCH_GHASEDAK_PRICE", "1200")
    src = tmp_path / "customers.csv"
    src.write_text("mobile,name\n" + "".join(f"0912{i:07d},n{i}\n" for i in range(30)), encoding="utf-8")
    for name in ("customers", LONG_NAME):
        code, _, err = run_cli(
            ["send", str(src), "-p", "ghasedak", "-m", f"{name} لغو11", "--name", name, "--window", "any"],
            capsys,
        )
        assert code == 0, err


@pytest.mark.usefixtures("cli_env")
def test_summary_and_list_are_whole_at_80_columns_in_a_terminal(tmp_path, capsys, monkeypatch):
    campaigns_for_tables(tmp_path, capsys, monkeypatch)
    lines = in_a_terminal(["summary"], 80, tmp_path)
    assert all(cell_len(line) <= 80 for line in lines), "\n".join(lines)
    text = "\n".join(lines)
    assert "…" not in text, text  # nothing cut: `56… ri… (e…` before
    for header in ("id", "name", "state", "recipients", "delivered"):
        assert f" {header} " in lines[1], lines[1]
    assert all(word in text for word in LONG_NAME.split())  # wrapped, never cut
    assert "of 36,000" in text  # planned: 30 recipients x 1,200 rial, whole
    assert "not shown at this width:" in text and "(--wide shows every column)" in text
    wide = in_a_terminal(["summary", "--wide"], 80, tmp_path)  # every column, lines past the edge
    assert all(f" {h} " in wide[1] for h in ("failed", "blacklisted", "parts", "duration", "started"))
    assert "not shown" not in "\n".join(wide) and "…" not in "\n".join(wide)
    listed = in_a_terminal(["list"], 80, tmp_path)
    assert all(cell_len(line) <= 80 for line in listed) and "…" not in "\n".join(listed), "\n".join(listed)


def test_the_bars_keep_their_counts_at_80_columns():
    now = datetime.now(UTC)
    p = CampaignProgress(
        campaign=3,
        state="running",
        reason=None,
        total=104_450,
        pending=0,
        sent=104_450,
        final=12,
        rate=159.3,
        eta_seconds=None,
        waiting=None,
        now=now,
        awaiting=104_438,
        next_check_at=now + timedelta(seconds=50),
    )
    for columns in (80, 60):
        buffer = io.StringIO()
        console = Console(file=buffer, width=columns, force_terminal=True, color_system=None)
        bars = ProgressBars(console)
        bars.show(p)
        console.print(bars.bars.make_tasks_table(bars.bars.tasks))
        lines = buffer.getvalue().splitlines()
        assert all(cell_len(line) <= columns for line in lines), lines
        text = "\n".join(lines)
        assert "…" not in text and "sending" in text and "delivery" in text, text
        assert "104450/104450" in text and "12/104450" in text
        assert "104438 awaiting" in re.sub(r"\s+", " ", text)


@pytest.mark.usefixtures("cli_env")
def test_output_to_a_pipe_or_a_file_is_never_wrapped(tmp_path, capsys):
    deep = tmp_path.joinpath(*["a-folder-with-a-rather-long-name"] * 6)  # a path far wider than 80
    deep.mkdir(parents=True)
    src = deep / "one.csv"
    src.write_text("mobile\n09120000001\n", encoding="utf-8")
    code, out, err = run_cli(["send", str(src), "-p", "ghasedak", "-m", "hi", "--window", "any"], capsys)
    assert code == 0, err
    (line,) = out.strip().splitlines()  # one line, whatever the path's length
    rejects = deep / "one.campaign-1.rejects.csv"
    assert line == (
        f"campaign 1: 1 recipient, 0 rejected (see {rejects}), 1 chunk, 1 SMS part; state running"
    )
    assert any(ln.startswith("cost ") and "smsdispatch.toml" in ln for ln in err.splitlines()), err
    # what delivers the reports after a plain send here, said in the output too
    assert "campaign 1 is sent; its delivery reports are collected by `smsdispatch serve`" in err
    assert "`smsdispatch poll --until-done`" in err


def test_a_log_line_goes_to_stderr_as_it_is_at_that_moment(monkeypatch):
    stream = CurrentStderr()
    later = io.StringIO()
    monkeypatch.setattr(sys, "stderr", later)  # what Rich does while its bars are live
    stream.write("a line\n")
    assert later.getvalue() == "a line\n"


def test_failover_says_one_line_per_move_with_counts(tmp_path, capsys, monkeypatch, caplog, cli_env):  # noqa: F811
    for key, value in {
        "SMSDISPATCH_MAX_ATTEMPTS": "2",
        "SMSDISPATCH_BACKOFF_BASE": "0.01",
        "SMSDISPATCH_BACKOFF_CAP": "0.05",
    }.items():
        monkeypatch.setenv(key, value)
    cli_env.state.add_fault(Fault("ghasedak", "send", "http", status=503, times=10_000))
    src = tmp_path / "list.csv"
    src.write_text("mobile,name\n" + "".join(f"0912{i:07d},n{i}\n" for i in range(250)), encoding="utf-8")
    caplog.set_level(logging.WARNING, logger="workers.failover")
    code, out, err = run_cli(
        ["send", str(src), "-p", "ghasedak,mediapayamak", "-m", "hi {name}", "--window", "any", "--json"],
        capsys,
    )
    assert code == 0, err
    moves = [r.getMessage() for r in caplog.records if r.name == "workers.failover"]
    assert len(moves) == 3, moves  # three chunks of 100, 100 and 50: one line each
    for line in moves:
        assert re.fullmatch(r"chunk \d+: ghasedak[: ].*; moved to mediapayamak \(as \d+ chunks?\)", line), (
            line
        )
        assert "[" not in line and len(line) < 200
    assert sorted(int(re.search(r"as (\d+)", m).group(1)) for m in moves) == [50, 100, 100]


def test_help_texts_keep_their_brackets(capsys, monkeypatch):
    monkeypatch.setenv("COLUMNS", "250")
    command = typer.main.get_command(app)
    checked = 0

    def walk(cmd, path):  # noqa: ANN001
        nonlocal checked
        for name, sub in getattr(cmd, "commands", {}).items():
            walk(sub, [*path, name])
        wanted = [
            token
            for param in cmd.params
            for token in re.findall(r"\[[^\]\s]+\]", (getattr(param, "help", "") or "").replace("\\[", "["))
        ]
        if not wanted:
            return
        code, out, _ = run_cli([*path, "--help"], capsys)
        assert code == 0
        shown = re.sub(r"\s+", " ", out.replace("│", " "))
        for token in wanted:
            assert token in shown, (path, token)
            checked += 1

    walk(command, [])
    assert checked >= 1  # send's `[routes.NAME]`


def test_no_message_names_an_internal_reference():
    """Seeds, sections of the provider reference and issue numbers mean nothing to a user: no string the
    code prints (docstrings aside) names one."""
    internal = re.compile(r"\bseed \d{3}\b|§\s?\d|providers\.md|shared/|\bissue \d+", re.IGNORECASE)
    found = []
    for package in ("campaigns", "workers", "dispatcher"):
        for path in (ROOT / package).rglob("*.py"):
            tree = ast.parse(path.read_text(encoding="utf-8"))
            docstrings = {
                id(node.body[0].value)
                for node in ast.walk(tree)
                if isinstance(node, ast.Module | ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef)
                and node.body
                and isinstance(node.body[0], ast.Expr)
                and isinstance(node.body[0].value, ast.Constant)
            }
            for node in ast.walk(tree):
                if (
                    isinstance(node, ast.Constant)
                    and isinstance(node.value, str)
                    and id(node) not in docstrings
                    and internal.search(node.value)
                ):
                    found.append(f"{path.relative_to(ROOT)}:{node.lineno}: {node.value[:80]!r}")
    assert found == []


def test_the_readme_says_what_people_need():
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    assert "نام,موبایل,شهر" in readme and "--message '{نام} عزیز" in readme  # a Persian header's placeholder
    assert "/_sandbox/messages" in readme and "/_sandbox/faults" in readme
    assert "smsdispatch poll --until-done" in readme
    assert "--header-row N" in readme and "--wide" in readme


@pytest.mark.usefixtures("cli_env")
def test_the_readmes_persian_example_runs_as_written(tmp_path, capsys):
    """The README's file (a Persian header) and its `send` line: `{نام}` fills in the name."""
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    table = re.search(r"```text\n(نام,موبایل,شهر\n.*?)```", readme, re.DOTALL)
    command = re.search(r"smsdispatch send customers\.csv --provider ghasedak --message '([^']+)'", readme)
    assert table and command, "the README's example is gone"
    (tmp_path / "customers.csv").write_text(table.group(1), encoding="utf-8")
    code, out, err = run_cli(
        ["send", "customers.csv", "-p", "ghasedak", "-m", command.group(1), "--dry-run", "--json"], capsys
    )
    assert code == 0, err
    data = json.loads(out)
    assert data["recipients"] == len(table.group(1).splitlines()) - 1 and data["rejected"] == 0
    assert data["preview"][0]["text"] == "زهرا صادقی عزیز، ۲۰٪ تخفیف. لغو11"


@pytest.mark.usefixtures("cli_env")
def test_a_second_campaign_from_the_same_file_keeps_the_first_ones_rejects(tmp_path, capsys):
    src = tmp_path / "customers.csv"
    src.write_text("mobile,name\n09120000001,a\nbad,b\n", encoding="utf-8")
    shown = []
    for text in ("first", "second"):
        code, out, err = run_cli(
            ["send", str(src), "-p", "ghasedak", "-m", text, "--window", "any", "--json"], capsys
        )
        assert code == 0, err
        shown.append(json.loads(out)["rejects_file"])
    assert shown == [str(tmp_path / f"customers.campaign-{n}.rejects.csv") for n in (1, 2)]
    for path in shown:
        assert Path(path).read_text(encoding="utf-8-sig").splitlines()[1].startswith('3,"bad",')
    code, out, _ = run_cli(["send", str(src), "-p", "ghasedak", "-m", "third", "--window", "any"], capsys)
    assert code == 0 and "(see " + str(tmp_path / "customers.campaign-3.rejects.csv") + ")" in out


def test_contacts_push_folds_arabic_letters_and_says_what_this_run_did(tmp_path, phonebooks):  # noqa: F811
    env = environ(phonebooks, f"sqlite:///{tmp_path / 'store.db'}")
    write_rows(
        tmp_path / "people.csv",
        [
            ("09121110001", "علي", "كريمي", "", ""),  # Arabic ي and ك, as some keyboards type them
            ("09121110002", "سارا", "احمدی", "", ""),
            ("bad", "x", "y", "", ""),
        ],
    )
    args = ("push", "people.csv", "--provider", "ghasedak", "--group", "vip")
    first = run(env, tmp_path, *args)
    assert first.returncode == 0, first.stderr
    added = {a.phone: a.fields for a in book(phonebooks.state).adds}
    assert added["989121110001"]["firstname"] == "علی" and added["989121110001"]["lastname"] == "کریمی"
    assert "2 numbers loaded (1 rejected): 2 new; this run added 2" in first.stdout, first.stdout
    second = run(env, tmp_path, *args)
    assert second.returncode == 0, second.stderr
    lines = second.stdout.splitlines()
    assert "2 numbers loaded (1 rejected): 0 new, 2 known from an earlier run; this run added 0" in lines[1]
    assert lines[2] == "all runs into this group: 2 added, 0 refused, 0 unknown, 0 pending"
    data = json.loads(run(env, tmp_path, *args, "--json").stdout)
    assert data["this_run"] == {"added": 0, "failed": 0} and data["counts"]["added"] == 2
    assert len(book(phonebooks.state).adds) == 2  # never twice


def test_contacts_push_of_a_header_only_file_is_one_line(tmp_path, phonebooks):  # noqa: F811
    env = environ(phonebooks, f"sqlite:///{tmp_path / 'store.db'}")
    (tmp_path / "people.csv").write_text("mobile,first_name\n", encoding="utf-8")
    done = run(env, tmp_path, "push", "people.csv", "--provider", "ghasedak", "--group", "vip")
    assert done.returncode == 2
    assert done.stderr.strip().splitlines() == [
        "error: people.csv has no rows under the header (row 1: mobile, first_name); put one recipient per "
        "row under it and try again"
    ]
    assert book(phonebooks.state).adds == []


def test_the_sandbox_on_port_0_says_the_port_it_got(tmp_path):
    proc = subprocess.Popen(
        [sys.executable, "-m", "dispatcher", "sandbox", "--port", "0"],
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        cwd=tmp_path,
    )
    try:
        first = proc.stderr.readline()
        match = re.fullmatch(r"sandbox on http://127\.0\.0\.1:(\d+); point the clients at it with:\n", first)
        assert match and int(match.group(1)) > 0, first
        assert f"_URL=http://127.0.0.1:{match.group(1)}/" in proc.stderr.readline()
    finally:
        proc.terminate()
        proc.wait(timeout=10)


@pytest.mark.usefixtures("cli_env")
def test_status_and_the_summary_legend_wrap_at_words_at_80_columns(tmp_path, capsys, monkeypatch):
    """`status`'s cost, waiting and sender lines and `summary`'s legend are longer than 80 columns: in a
    terminal they wrap at words, under their label (the terminal cut "the est|imate" before)."""
    campaigns_for_tables(tmp_path, capsys, monkeypatch)
    assert run_cli(["poll", "--until-done", "--timeout", "60"], capsys)[0] == 0  # reported costs too
    for args in (["status", "1"], ["summary"]):
        lines = in_a_terminal(args, 80, tmp_path)
        assert all(cell_len(line) <= 80 for line in lines), "\n".join(lines)
    lines = in_a_terminal(["status", "1"], 80, tmp_path)
    at = next(i for i, line in enumerate(lines) if line.startswith("cost:"))
    cost = " ".join(line.strip() for line in lines[at : at + 4])
    assert "planned 36,000 rial (the estimate); spent so far 36,000 rial (the estimate for the 30" in cost
    assert all(line.startswith(" " * 9) for line in lines[at + 1 : at + 3]), "\n".join(lines)  # under it


@pytest.mark.usefixtures("cli_env")
def test_a_plain_send_and_its_closing_lines_fit_80_columns(tmp_path, capsys, monkeypatch):
    """`send`'s closing lines (the campaign line and what collects its delivery reports) went to the
    terminal unwrapped, and the terminal cut them mid-word at 80 columns."""
    monkeypatch.setenv("SMSDISPATCH_GHASEDAK_PRICE", "1200")
    src = tmp_path / "customers.csv"
    src.write_text("mobile,name\n" + "".join(f"0912{i:07d},n{i}\n" for i in range(30)), encoding="utf-8")
    args = ["send", src.name, "-p", "ghasedak", "-m", "x لغو11", "--window", "any", "--yes"]
    lines = in_a_terminal(args, 80, tmp_path)
    assert all(cell_len(line) <= 80 for line in lines), "\n".join(lines)
    text = " ".join(line.strip() for line in lines)
    assert "its delivery reports are collected by `smsdispatch serve` (keep one running)" in text, text
