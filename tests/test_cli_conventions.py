"""CLI conventions (README, "Exit codes" and "Output for people and for scripts"): --version; usage errors exit 2 with one plain line; "did you
mean"; times with their zone (and the Jalali date on request); read-only commands never create a
database and name the one they looked in; an unwritable report path is one line; summaries that
read right. Also: the demo runs on the application layer without touching the environment."""

from __future__ import annotations

import ast
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from dispatcher import __version__
from tests.support.cli import run_cli
from tests.test_e2e import cli_env  # noqa: F401 - cli_env is a fixture

TIME = re.compile(r"\d{4}-\d\d-\d\d \d\d:\d\d \+03:30")
JALALI_TIME = re.compile(r"14\d\d/\d\d/\d\d \d{4}-\d\d-\d\d \d\d:\d\d \+03:30")
CLASS_NAME = re.compile(r"\b[A-Z][A-Za-z]*(Error|Parameter|Option|Exception)\b")


def one_error_line(err: str) -> str:
    lines = [line for line in err.strip().splitlines() if line.strip()]
    assert len(lines) == 1, err
    assert lines[0].startswith("error: ") and "Traceback" not in err
    assert not CLASS_NAME.search(lines[0]), lines[0]
    return lines[0]


def test_version(capsys):
    code, out, _ = run_cli(["--version"], capsys)
    assert code == 0 and out.strip() == f"smsdispatch {__version__}"


@pytest.mark.parametrize(
    "argv, fragment",
    [
        (["send"], "Missing argument 'file'"),
        (["send", "x.csv"], "Missing option '--provider'"),
        (["send", "x.csv", "-p", "ghasedak", "--bogus"], "No such option: --bogus"),
        (["status"], "Missing argument 'ID'"),
        (["status", "abc"], "'ID'"),
        (["status", "1", "--bogus"], "--bogus"),
        (["report", "1"], "Missing option '--out'"),
        (["sned", "x.csv"], "Did you mean 'send'?"),
        (["optouts", "ad", "0912"], "Did you mean 'add'?"),
    ],
)
def test_usage_errors_are_one_plain_line_exit_2(argv, fragment, capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    code, _, err = run_cli(argv, capsys)
    assert code == 2
    assert fragment in one_error_line(err)
    assert not list(tmp_path.iterdir())  # nothing written, no database


@pytest.fixture
def bare_dir(tmp_path, monkeypatch):
    """A folder with no database in it, and no SMSDISPATCH_* settings."""
    for key in [k for k in os.environ if k.startswith("SMSDISPATCH_")]:
        monkeypatch.delenv(key)
    monkeypatch.chdir(tmp_path)
    return tmp_path


@pytest.mark.parametrize(
    "argv",
    [["status", "1"], ["status", "1", "--json"], ["watch", "1"], ["report", "1", "--out", "r.csv"]],
)
def test_read_only_commands_never_create_a_database(argv, bare_dir, capsys):
    code, _, err = run_cli(argv, capsys)
    assert code == 2
    line = one_error_line(err)
    assert f"no campaign 1 in sqlite:///{bare_dir / 'smsdispatch.db'}" in line
    assert not (bare_dir / "smsdispatch.db").exists()


def test_list_without_a_database_says_where_it_looked(bare_dir, capsys):
    code, out, err = run_cli(["list", "--json"], capsys)
    assert code == 0 and json.loads(out) == []
    assert str(bare_dir / "smsdispatch.db") in err
    assert not (bare_dir / "smsdispatch.db").exists()


def _one_recipient(tmp_path: Path) -> Path:
    src = tmp_path / "one.csv"
    src.write_text("mobile,name\n09121234567,Sara\n", encoding="utf-8")
    return src


@pytest.mark.usefixtures("cli_env")
def test_provider_names_are_case_insensitive_and_typos_get_a_suggestion(tmp_path, capsys):
    src = _one_recipient(tmp_path)
    code, _, err = run_cli(["send", str(src), "-p", "ghasedk", "-m", "hi"], capsys)
    assert code == 2
    assert "did you mean ghasedak?" in one_error_line(err)
    code, out, err = run_cli(["send", str(src), "-p", "GhaseDak", "-m", "hi", "--json"], capsys)
    assert code == 0, err
    summary = json.loads(out.strip().splitlines()[-1])
    code, out, _ = run_cli(["status", str(summary["campaign"]), "--json"], capsys)
    assert json.loads(out)["provider"] == "ghasedak"


@pytest.mark.usefixtures("cli_env")
def test_summaries_count_in_the_singular_and_never_say_none(tmp_path, capsys):
    src = _one_recipient(tmp_path)
    code, out, err = run_cli(["send", str(src), "-p", "ghasedak", "-m", "hi", "--dry-run"], capsys)
    assert code == 0, err
    assert "None" not in out and "dry run" in out
    assert "1 recipient," in out and "1 chunk," in out and "1 SMS part;" in out
    code, out, err = run_cli(["send", str(src), "-p", "ghasedak", "-m", "hi"], capsys)
    assert code == 0, err
    assert out.startswith("campaign 1: 1 recipient, 0 rejected") and "1 chunk, 1 SMS part;" in out
    code, out, err = run_cli(["report", "1", "--out", str(tmp_path / "r.csv")], capsys)
    assert code == 0, err
    assert out.startswith("1 recipient written to")


@pytest.mark.usefixtures("cli_env")
def test_an_unwritable_report_path_is_one_line_exit_2(tmp_path, capsys):
    code, _, err = run_cli(["send", str(_one_recipient(tmp_path)), "-p", "ghasedak", "-m", "hi"], capsys)
    assert code == 0, err
    for out_path in ("/no/such/dir/r.xlsx", str(tmp_path / "missing" / "r.csv")):
        code, _, err = run_cli(["report", "1", "--out", out_path], capsys)
        assert code == 2
        assert out_path in one_error_line(err)


@pytest.mark.usefixtures("cli_env")
def test_times_carry_their_zone_and_the_jalali_date_on_request(tmp_path, capsys):
    code, _, err = run_cli(["send", str(_one_recipient(tmp_path)), "-p", "ghasedak", "-m", "hi"], capsys)
    assert code == 0, err
    code, out, _ = run_cli(["status", "1"], capsys)
    assert re.search(r"created: +" + TIME.pattern, out), out
    assert re.search(r"started: +" + TIME.pattern, out), out
    env = {**os.environ, "COLUMNS": "200"}
    listed = subprocess.run(
        [sys.executable, "-m", "dispatcher", "list"], env=env, capture_output=True, text=True, timeout=60
    )
    assert listed.returncode == 0, listed.stderr
    assert TIME.search(listed.stdout) and "+00:00" not in listed.stdout, listed.stdout
    env["SMSDISPATCH_CALENDAR"] = "jalali"
    listed = subprocess.run(
        [sys.executable, "-m", "dispatcher", "list"], env=env, capture_output=True, text=True, timeout=60
    )
    assert JALALI_TIME.search(listed.stdout), listed.stdout


def test_the_demo_runs_on_the_application_layer_and_leaves_the_environment_alone(tmp_path):
    from dispatcher.demo.run import run_demo

    before = dict(os.environ)
    first = run_demo(tmp_path / "a", 120, "GHASEDAK")
    again = run_demo(tmp_path / "a", 80, "ghasedak")  # a fresh database each time
    assert dict(os.environ) == before
    assert (first.state, again.state) == ("completed", "completed")
    assert first.twice == 0 and first.accepted == first.numbers > 0
    assert first.report.exists() and again.campaign == 1
    tree = ast.parse(Path(sys.modules["dispatcher.demo.run"].__file__).read_text(encoding="utf-8"))
    imported = {n.module for n in ast.walk(tree) if isinstance(n, ast.ImportFrom)}
    imported |= {a.name for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names}
    assert not any(m and m.startswith("dispatcher.cli") for m in imported) and "os" not in imported


def test_show_time_carries_the_offset_and_the_jalali_date_on_request():
    from datetime import UTC, datetime
    from zoneinfo import ZoneInfo

    from dispatcher.humane import Calendar, show_time

    moment = datetime(2026, 11, 29, 9, 35, tzinfo=UTC)
    assert show_time(moment) == "2026-11-29 13:05 +03:30"
    assert show_time(moment.replace(tzinfo=None)) == "2026-11-29 13:05 +03:30"  # naive is UTC
    assert show_time(moment, calendar=Calendar.JALALI) == "1405/09/08 2026-11-29 13:05 +03:30"
    assert show_time(moment, ZoneInfo("America/St_Johns")) == "2026-11-29 06:05 -03:30"


def test_a_message_file_that_cannot_be_read_says_why_without_class_names(tmp_path, capsys, monkeypatch):
    """`--message-file` saved by Notepad in Windows-1256, mistyped, or a folder: one plain line with the
    fix (it said "cannot read it as UTF-8 text (FileNotFoundError)" for a missing file)."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / "list.csv").write_text("mobile\n09121234567\n", encoding="utf-8")
    (tmp_path / "ansi.txt").write_bytes("سلام لغو11".replace("ی", "ي").encode("cp1256"))
    (tmp_path / "folder").mkdir()
    cases = {
        "nope.txt": "--message-file nope.txt: no such file; check the path",
        "folder": "--message-file folder: is a folder; give the text file in it",
        "ansi.txt": "--message-file ansi.txt: not UTF-8 text; save it as UTF-8 (in Notepad: Save as, Encoding UTF-8)",
    }
    for name, line in cases.items():
        code, out, err = run_cli(
            ["send", "list.csv", "-p", "ghasedak", "--message-file", name, "--dry-run"], capsys
        )
        assert code == 2 and out == ""
        assert one_error_line(err) == f"error: {line}"


def test_help_names_the_rejects_file_each_command_really_writes(capsys, monkeypatch):
    """`send --help` said the rejects file defaults to FILE.rejects.csv; a stored campaign's is named with
    its id (FILE.campaign-7.rejects.csv), and `contacts push` writes FILE.contacts.rejects.csv."""
    monkeypatch.setenv("COLUMNS", "250")
    code, out, _ = run_cli(["send", "--help"], capsys)
    shown = re.sub(r"\s+", " ", out.replace("│", " "))
    assert code == 0 and "default FILE.campaign-ID.rejects.csv" in shown, shown
    code, out, _ = run_cli(["contacts", "push", "--help"], capsys)
    shown = re.sub(r"\s+", " ", out.replace("│", " "))
    assert code == 0 and "default FILE.contacts.rejects.csv" in shown, shown


def test_send_help_is_whole_at_80_columns(capsys, monkeypatch):
    """`COLUMNS=80 smsdispatch send --help` cut some option help with "…" (a setting's or a file's name
    longer than the help column) and squeezed the rest into a column a few words wide. The options are
    grouped in panels (each its own table, so each gets the width its own options leave), and every word
    of every option's help is shown whole, on lines no wider than the terminal."""
    import typer

    from dispatcher.cli import app

    monkeypatch.setenv("COLUMNS", "80")
    code, out, _ = run_cli(["send", "--help"], capsys)
    assert code == 0
    assert "…" not in out and max(len(line) for line in out.splitlines()) <= 80, out
    shown = set(out.replace("│", " ").split())
    send = typer.main.get_command(app).commands["send"]  # type: ignore[attr-defined]
    for param in send.params:
        for word in (param.help or "").replace("\\[", "[").split():
            assert word in shown, (param.name, word)
    panels = re.findall(r"╭─ (.+?) ─", out)
    assert panels == ["Arguments", "Options", "The file", "When", "Checks and caps", "How to run it"]
    assert all("--help" in line for line in out.splitlines() if "<bool>" in line)  # a flag takes no value
