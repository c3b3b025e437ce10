"""The operator blacklist memory, through the CLI with real delivery reports from the sandbox (which marks
about one number in twenty `blacklisted`, its code 27 in Ghasedak's status call), on SQLite and PostgreSQL.

Numbers a delivery report marked blacklisted on a promotional campaign are skipped by later promotional
campaigns of the same store for SMSDISPATCH_BLACKLIST_MEMORY days: each goes to the rejects file with the
campaign that learnt it, the preflight says how many and what it saves, `--include-blacklisted` sends to
them anyway, and transactional campaigns neither learn nor skip.
"""

from __future__ import annotations

import csv
import json
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import update

from campaigns.clock import utcnow
from campaigns.store import Store, recipients_t
from tests.support.cli import cli_sandbox, run_cli

N = 120
PRICE = 1200  # rial a part (SMSDISPATCH_GHASEDAK_PRICE): one-part texts
FIRST = "سلام {name}، حراج پاییزه. لغو۱۱"
SECOND = "{name} عزیز، حراج زمستانه. لغو۱۱"


@pytest.fixture
def sandboxed(tmp_path, monkeypatch, database_url):
    with cli_sandbox(
        tmp_path, monkeypatch, database_url=database_url, SMSDISPATCH_GHASEDAK_PRICE=str(PRICE)
    ) as running:
        yield running


def write_list(path: Path, n: int = N) -> Path:
    lines = ["mobile,name", *(f"0912{i:07d},name{i}" for i in range(n))]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def send(file: Path, capsys, *extra: str, text: str = SECOND) -> tuple[int, str, str]:
    argv = ["send", str(file), "-p", "ghasedak", "-m", text, "--window", "any", *extra]
    return run_cli(argv, capsys)


def rejects(path: Path) -> list[dict[str, str]]:
    with path.open(encoding="utf-8-sig", newline="") as fh:
        return list(csv.DictReader(fh))


def first_campaign(sandboxed, tmp_path: Path, capsys, *extra: str) -> tuple[Path, set[str]]:
    """A promotional campaign sent to the end, every delivery report in: the file and the numbers its
    reports marked blacklisted (E.164), checked against the sandbox's own decision."""
    file = write_list(tmp_path / "customers.csv")
    code, out, err = send(file, capsys, "--wait", "--json", *extra, text=FIRST)
    assert code == 0, err
    code, out, err = run_cli(["report", "1", "--out", str(tmp_path / "first.csv")], capsys)
    assert code == 0, err
    with (tmp_path / "first.csv").open(encoding="utf-8-sig", newline="") as fh:
        rows = list(csv.DictReader(fh))
    blacklisted = {r["phone"] for r in rows if r["state"] == "blacklisted"}
    decided = {
        "+" + m.phone for m in sandboxed.state.accepted() if sandboxed.state.outcome(m.phone) == "blacklisted"
    }
    assert blacklisted == decided and 0 < len(blacklisted) < N  # the sandbox's own decision, by report
    return file, blacklisted


def test_blacklisted_numbers_are_skipped_by_the_next_promotional_campaign(sandboxed, tmp_path, capsys):
    file, blacklisted = first_campaign(sandboxed, tmp_path, capsys)
    n = len(blacklisted)
    code, out, err = send(file, capsys, "--dry-run")  # what the person sees first
    assert code == 0, err
    seen = " ".join(err.split())
    assert (
        f"{n} recipient{'s' if n != 1 else ''} a delivery report marked blacklisted on campaign 1 "
        f"(promotional, within 30 days): skipped, to the rejects file; saves ≈ {n * PRICE:,} rial ({n} SMS parts)"
    ) in seen, seen
    code, out, err = send(file, capsys, "--wait", "--json")
    assert code == 0, err
    data = json.loads(out.strip().splitlines()[-1])
    assert (data["campaign"], data["recipients"], data["rejected"]) == (2, N - n, n)
    assert data["blacklisted"] == {
        "recipients": n,
        "skipped": True,
        "saves": float(n * PRICE),
        "by_campaign": {"1": n},
    }
    rows = rejects(Path(data["rejects_file"]))  # the campaign's own rejects file
    assert {"+98" + r["value"][1:] for r in rows} == blacklisted
    assert {r["reason"] for r in rows} == {"blacklisted by the operator (campaign 1)"}
    second = [m for m in sandboxed.state.accepted()[N:]]
    assert len(second) == N - n and not {"+" + m.phone for m in second} & blacklisted  # none sent again


def test_include_blacklisted_sends_to_them_and_transactional_is_not_touched(sandboxed, tmp_path, capsys):
    file, blacklisted = first_campaign(sandboxed, tmp_path, capsys)
    n = len(blacklisted)
    code, out, err = send(file, capsys, "--include-blacklisted", "--dry-run", "--json")
    assert code == 0, err
    data = json.loads(out)
    assert (data["recipients"], data["rejected"]) == (N, 0)
    assert data["blacklisted"]["skipped"] is False and data["blacklisted"]["recipients"] == n
    assert "sent anyway (--include-blacklisted)" in " ".join(
        send(file, capsys, "--include-blacklisted", "--dry-run")[2].split()
    )
    code, out, err = send(file, capsys, "--type", "transactional", "--dry-run", "--json")
    assert code == 0, err
    data = json.loads(out)
    assert (data["recipients"], data["rejected"], data["blacklisted"]) == (N, 0, None)


def test_a_transactional_campaign_teaches_nothing(sandboxed, tmp_path, capsys):
    file, blacklisted = first_campaign(sandboxed, tmp_path, capsys, "--type", "transactional")
    code, out, err = send(file, capsys, "--dry-run", "--json")
    assert code == 0, err
    data = json.loads(out)
    assert (data["recipients"], data["blacklisted"]) == (N, None)


def test_the_memory_lasts_its_days(sandboxed, tmp_path, capsys, monkeypatch, database_url):
    file, blacklisted = first_campaign(sandboxed, tmp_path, capsys)
    store = Store.from_url(database_url)
    with store.engine.begin() as conn:  # the reports came 31 days ago
        conn.execute(update(recipients_t).values(updated_at=utcnow() - timedelta(days=31)))
    store.engine.dispose()
    code, out, err = send(file, capsys, "--dry-run", "--json")
    assert code == 0, err
    assert json.loads(out)["blacklisted"] is None  # forgotten after 30 days
    monkeypatch.setenv("SMSDISPATCH_BLACKLIST_MEMORY", "40")  # days
    code, out, err = send(file, capsys, "--dry-run", "--json")
    assert code == 0, err
    assert json.loads(out)["blacklisted"]["recipients"] == len(blacklisted)
    monkeypatch.setenv("SMSDISPATCH_BLACKLIST_MEMORY", "0")  # off
    code, out, err = send(file, capsys, "--dry-run", "--json")
    assert code == 0 and json.loads(out)["blacklisted"] is None
