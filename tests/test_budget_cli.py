"""`send --budget` / `--max-parts` and `resume --budget` from the command line (embedded mode, SQLite, the
sandbox over HTTP as the witness): the campaign pauses before crossing its cap with the reason, status
shows what was committed, and a raised cap finishes it with every number sent once."""

from __future__ import annotations

import json
from collections import Counter

from tests.support.cli import run_cli
from tests.test_status_cli import cli_env  # noqa: F401 - the fixture


def _accepted(state) -> Counter:  # noqa: ANN001 - SandboxState
    return Counter(m.phone for m in state.accepted())


def test_budget_pauses_before_the_cap_and_resume_raises_it(cli_env, capsys, monkeypatch):  # noqa: F811
    monkeypatch.setenv("SMSDISPATCH_GHASEDAK_PRICE", "1000")  # rial per SMS part
    argv = ["send", str(cli_env["src"]), "-p", "ghasedak", "-m", "hello", "--budget", "150,000", "--json"]
    code, out, err = run_cli(argv, capsys)
    assert code == 0, err
    summary = json.loads(out.strip().splitlines()[-1])
    campaign, recipients = summary["campaign"], summary["recipients"]
    assert summary["state"] == "paused" and recipients > 150
    accepted = _accepted(cli_env["state"])
    assert sum(accepted.values()) * 1000 <= 150_000  # the sandbox's own ledger: the cap was never crossed
    assert "budget reached" in err and f"smsdispatch resume {campaign} --budget" in err

    code, out, err = run_cli(["status", str(campaign), "--json"], capsys)
    data = json.loads(out)
    assert data["reason"].startswith("budget reached:") and "of 150,000 rial" in data["reason"]
    assert data["budget"]["budget_rial"] == 150_000 and data["budget"]["spent_rial"] <= 150_000
    assert data["cost"]["estimated"] == recipients * 1000
    assert data["counts"]["pending"] == recipients - sum(accepted.values())

    code, out, err = run_cli(["resume", str(campaign), "--budget", "1,000,000"], capsys)
    assert code == 0, err
    accepted = _accepted(cli_env["state"])
    assert sum(accepted.values()) == recipients and max(accepted.values()) == 1  # each number once


def test_budget_without_a_price_is_bad_input_and_nothing_is_stored(cli_env, capsys):  # noqa: F811
    code, out, err = run_cli(
        ["send", str(cli_env["src"]), "-p", "ghasedak", "-m", "hello", "--budget", "50000"], capsys
    )
    assert (
        code == 2 and err.startswith("error: --budget needs the price") and len(err.strip().splitlines()) == 1
    )
    code, out, err = run_cli(["list", "--json"], capsys)
    assert json.loads(out) == []
    assert not cli_env["state"].accepted()


def test_max_parts_caps_without_a_price(cli_env, capsys):  # noqa: F811
    code, out, err = run_cli(
        ["send", str(cli_env["src"]), "-p", "ghasedak", "-m", "hello", "--max-parts", "120", "--json"], capsys
    )
    assert code == 0, err
    summary = json.loads(out.strip().splitlines()[-1])
    assert summary["state"] == "paused"
    assert 0 < len(cli_env["state"].accepted()) <= 120
    assert "part cap reached" in err


def test_the_summary_prints_the_price_hint_as_written(cli_env, capsys):  # noqa: F811
    """Rich markup must not eat `[prices]` from the hint (a person copies it into smsdispatch.toml)."""
    code, out, err = run_cli(
        ["send", str(cli_env["src"]), "-p", "ghasedak", "-m", "hello", "--dry-run"], capsys
    )
    assert code == 0, err
    assert "[prices]" in " ".join(err.split()) and "1,850" not in out  # 500 rows: no separator needed
    assert "recipients" in out


def test_window_any_is_a_choice_not_a_warning(cli_env, capsys):  # noqa: F811
    argv = ["send", str(cli_env["src"]), "-p", "ghasedak", "-m", "hello", "--dry-run", "--json"]
    code, out, err = run_cli(argv, capsys)
    assert "no-window" in {w["code"] for w in json.loads(out.strip().splitlines()[-1])["warnings"]}
    code, out, err = run_cli([*argv, "--window", "any"], capsys)
    assert code == 0, err
    assert "no-window" not in {w["code"] for w in json.loads(out.strip().splitlines()[-1])["warnings"]}


def test_a_budget_below_one_chunk_is_bad_input(cli_env, capsys, monkeypatch):  # noqa: F811
    monkeypatch.setenv("SMSDISPATCH_GHASEDAK_PRICE", "1000")  # a chunk of 100 costs about 100,000 rial
    argv = ["send", str(cli_env["src"]), "-p", "ghasedak", "-m", "hello", "--budget", "50,000"]
    code, out, err = run_cli(argv, capsys)
    assert code == 2 and "less than one chunk" in err and len(err.strip().splitlines()) == 1, err
    assert not cli_env["state"].accepted()


def test_the_phone_column_fills_in_as_people_write_it(cli_env, capsys):  # noqa: F811
    """`{mobile}` (the file's phone column) is the number as written locally, 09…; an unknown
    placeholder's error lists the file's columns, not the loader's own `row`."""
    argv = ["send", str(cli_env["src"]), "-p", "ghasedak", "--dry-run", "--json", "--window", "any"]
    code, out, err = run_cli([*argv, "-m", "{mobile}: hi"], capsys)
    assert code == 0, err
    text = json.loads(out.strip().splitlines()[-1])["preview"][0]["text"]
    assert text.startswith("09") and len(text.split(":")[0]) == 11
    code, out, err = run_cli([*argv, "-m", "{nosuch}"], capsys)
    assert code == 2 and "row," not in err and "name" in err


def test_status_names_the_resume_that_raises_the_cap(cli_env, capsys, monkeypatch):  # noqa: F811
    monkeypatch.setenv("SMSDISPATCH_GHASEDAK_PRICE", "1000")
    argv = ["send", str(cli_env["src"]), "-p", "ghasedak", "-m", "hello", "--budget", "150,000", "--json"]
    code, out, err = run_cli(argv, capsys)
    campaign = json.loads(out.strip().splitlines()[-1])["campaign"]
    code, out, err = run_cli(["status", str(campaign)], capsys)
    assert f"to continue: smsdispatch resume {campaign} --budget RIAL" in out
    code, out, err = run_cli(
        ["send", str(cli_env["src"]), "-p", "ghasedak", "-m", "hi", "--max-parts", "120"], capsys
    )
    code, out, err = run_cli(["status", str(campaign + 1)], capsys)
    assert f"to continue: smsdispatch resume {campaign + 1} --max-parts N" in out
