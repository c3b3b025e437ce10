"""Never the same campaign twice by mistake, through the CLI against the sandbox over HTTP (SQLite store).

The same recipients (the numbers as loaded from the file, before the suppression list takes any out) and
the same template as any campaign of this store within SMSDISPATCH_DUPLICATE_WINDOW, finished or not, is
refused with exit 3 naming that campaign, its state and its date; `--allow-duplicate` sends it, and the
`recent` warning then names the campaigns the recipients got messages from, the identical one first.
"""

from __future__ import annotations

import json
import re
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import update

from campaigns.clock import utcnow
from campaigns.store import Store, campaigns_t
from tests.support.cli import cli_sandbox, run_cli

TEXT = "سلام {name}، حراج پاییزه. لغو۱۱"
WHEN = r"\d{4}-\d\d-\d\d \d\d:\d\d \+03:30"  # a time for people: Tehran, with its offset


@pytest.fixture
def sandboxed(tmp_path, monkeypatch):
    with cli_sandbox(tmp_path, monkeypatch, database_url=f"sqlite:///{tmp_path / 'dup.db'}") as running:
        yield running


def write_list(path: Path, n: int, *, start: int = 0) -> Path:
    lines = ["mobile,name", *(f"0912{start + i:07d},name{i}" for i in range(n))]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def send(file: Path, capsys, *extra: str, text: str = TEXT) -> tuple[int, str, str]:
    # transactional: the operator blacklist memory (promotional only) leaves the counts whole here
    argv = ["send", str(file), "-p", "ghasedak", "-m", text, "--type", "transactional", *extra]
    return run_cli(argv, capsys)


def one_line(err: str) -> str:
    lines = [line for line in err.strip().splitlines() if line.strip()]
    assert len(lines) == 1 and "Traceback" not in err, err
    return lines[0]


def test_the_same_file_and_text_after_the_first_finished_is_refused_naming_it(sandboxed, tmp_path, capsys):
    """The example that showed it: the same file and text sent again after the first campaign finished went out
    to all of them again, with only a `recent` warning naming a different campaign."""
    file = write_list(tmp_path / "customers.csv", 40)
    code, out, err = send(file, capsys, "--wait", "--json")
    assert code == 0, err
    assert json.loads(out.strip().splitlines()[-1])["campaign"] == 1
    # a later campaign with another text reached some of the same numbers: the latest sender of those
    code, out, err = send(
        write_list(tmp_path / "some.csv", 10), capsys, "--wait", text="یادآوری {name} لغو11"
    )
    assert code == 0, err
    sent_before = len(sandboxed.state.accepted("ghasedak"))
    assert sent_before == 50

    code, out, err = send(file, capsys)
    assert code == 3 and out == ""
    line = one_line(err)
    assert re.search(
        rf'refused by preflight check duplicate: the same recipients and text as campaign 1 "customers", '
        rf"completed {WHEN} \(created {WHEN}\); its recipients would get it twice; to send anyway: --allow-duplicate$",
        line,
    ), line
    assert len(sandboxed.state.accepted("ghasedak")) == sent_before  # nothing sent, nothing stored
    code, out, _ = run_cli(["list", "--json"], capsys)
    assert [c["campaign"] for c in json.loads(out)] == [1, 2]

    code, out, err = send(file, capsys, "--allow-duplicate", "--dry-run", "--json")
    assert code == 0, err
    warnings = {w["code"]: w["message"] for w in json.loads(out)["warnings"]}
    assert "duplicate" in warnings and "recent" in warnings
    # every campaign the recipients got a message from, the identical one first
    assert warnings["recent"] == (
        "40 recipients got a message from another campaign in the last 24 h "
        "(campaign 1 (the same list and text): 40, campaign 2: 10)"
    )


def test_an_opt_out_between_the_runs_does_not_hide_the_duplicate(sandboxed, tmp_path, capsys):
    file = write_list(tmp_path / "list.csv", 12)
    assert send(file, capsys, "--wait")[0] == 0
    assert run_cli(["optouts", "add", "09120000003"], capsys)[0] == 0
    code, _, err = send(file, capsys)
    assert code == 3 and 'as campaign 1 "list", completed' in one_line(err)


def test_only_campaigns_within_the_window_count(sandboxed, tmp_path, capsys, monkeypatch):
    file = write_list(tmp_path / "list.csv", 8)
    assert send(file, capsys, "--wait")[0] == 0
    store = Store.from_url(f"sqlite:///{tmp_path / 'dup.db'}")
    eight_days_ago = utcnow() - timedelta(days=8)
    with store.engine.begin() as conn:  # the first campaign, eight days older
        conn.execute(update(campaigns_t).values(created_at=eight_days_ago, finished_at=eight_days_ago))
    store.engine.dispose()
    code, out, err = send(file, capsys, "--dry-run", "--json")  # outside the default 7 days
    assert code == 0, err
    assert "duplicate" not in [w["code"] for w in json.loads(out)["warnings"]]
    monkeypatch.setenv("SMSDISPATCH_DUPLICATE_WINDOW", "10d")
    code, _, err = send(file, capsys)
    assert code == 3 and "refused by preflight check duplicate" in one_line(err)
    monkeypatch.setenv("SMSDISPATCH_DUPLICATE_WINDOW", "soon")
    code, _, err = send(file, capsys)
    assert code == 2 and "SMSDISPATCH_DUPLICATE_WINDOW='soon'" in one_line(err)


def test_a_cancelled_campaign_counts_and_names_its_state(sandboxed, tmp_path, capsys):
    file = write_list(tmp_path / "list.csv", 5)
    sandboxed.state.credit["ghasedak"] = 0  # the first call is refused: paused with nothing sent
    assert send(file, capsys)[0] == 0
    assert run_cli(["cancel", "1"], capsys)[0] == 0  # cancelled before sending anything
    assert sandboxed.state.accepted("ghasedak") == []
    code, _, err = send(file, capsys)
    assert code == 3
    assert re.search(rf'as campaign 1 "list", cancelled {WHEN}', one_line(err)), err


def test_a_second_send_while_the_first_is_asked_is_refused_at_creation(
    sandboxed, tmp_path, capsys, monkeypatch
):
    """Two sends of the same list and text that both passed the preflight (the first one waiting at its
    question while a colleague, or another terminal, sends the same file): the one stored second is
    refused (exit 3, nothing stored), so no number gets the campaign twice. Without the check at
    creation both were stored and the sandbox accepted every number twice."""
    import dispatcher.cli.campaign as cli_campaign

    file = write_list(tmp_path / "customers.csv", 30)
    asked = cli_campaign.confirm
    second: list[tuple[int, str, str]] = []
    calls = []

    def meanwhile(*args, **kwargs):  # the first send's question: before it is answered, another send
        calls.append(1)
        if len(calls) == 1:
            second.append(send(file, capsys, "--yes"))
        return asked(*args, **kwargs)

    monkeypatch.setattr(cli_campaign, "confirm", meanwhile)
    code, out, err = send(file, capsys, "--yes")
    assert second and second[0][0] == 0, second  # the second one went out first
    assert code == 3 and out == "" and "Traceback" not in err, err
    assert re.search(  # its last line (the storing bar had begun)
        r'^error: refused by preflight check duplicate: the same recipients and text as campaign 1 "customers", '
        r"running \(created .*\) and not finished; .*to send anyway: --allow-duplicate$",
        err.strip().splitlines()[-1],
    ), err
    phones = [m.phone for m in sandboxed.state.accepted("ghasedak")]
    assert len(phones) == len(set(phones)) == 30  # every number once
    assert (
        run_cli(["list", "--json"], capsys)[1].count('"campaign"') == 1
    )  # nothing stored for the refused one

    # --allow-duplicate still sends it, knowingly
    monkeypatch.setattr(cli_campaign, "confirm", asked)
    code, _, err = send(file, capsys, "--yes", "--allow-duplicate")
    assert code == 0, err
