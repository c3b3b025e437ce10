"""Money shown right, through the CLI against the sandbox over HTTP (SQLite store): what a budget covers at
the preflight, cost split into planned / spent so far / reported by the provider (with its unit, or "unit
not documented"), by the provider that actually sent (after failover, at its price), a campaign cancelled
before sending that spent nothing, the summary's totals, and the xlsx Summary's rejected rows.

The numbers of the trial that found it: 473 recipients at 1,200 rial a part is an estimate of 567,600 rial.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from openpyxl import load_workbook

from tests.support.cli import cli_sandbox, run_cli

N, BAD = 473, 26
PRICE = 1200  # rial a part, SMSDISPATCH_GHASEDAK_PRICE
TEXT = "سلام {name}، حراج پاییزه. لغو۱۱"  # one UCS-2 part


@pytest.fixture
def sandboxed(tmp_path, monkeypatch):
    database_url = f"sqlite:///{tmp_path / 'money.db'}"
    with cli_sandbox(
        tmp_path, monkeypatch, database_url=database_url, SMSDISPATCH_GHASEDAK_PRICE=str(PRICE)
    ) as running:
        yield running


def write_list(path: Path, n: int = N, bad: int = BAD) -> Path:
    """`n` good rows, then `bad` rows whose number is too short (rejected)."""
    lines = [
        "mobile,name",
        *(f"0912{i:07d},name{i}" for i in range(n)),
        *(f"12345,bad{i}" for i in range(bad)),
    ]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


@pytest.fixture
def wide(monkeypatch):
    """The CLI's console as wide as a big terminal: the tables here are read whole."""
    from dispatcher.cli import common

    monkeypatch.setattr(common.out, "_width", 250)


def send(file: Path, capsys, *extra: str, provider: str = "ghasedak") -> tuple[int, str, str]:
    # transactional: no window or opt-out rule in the way of SMSDISPATCH_STRICT, no blacklist memory
    argv = ["send", str(file), "-p", provider, "-m", TEXT, "--type", "transactional", *extra]
    return run_cli(argv, capsys)


def status_json(campaign: int, capsys) -> dict:
    code, out, err = run_cli(["status", str(campaign), "--json"], capsys)
    assert code == 0, err
    return json.loads(out)


def test_the_preflight_says_what_a_budget_covers_and_strict_refuses(sandboxed, tmp_path, capsys, monkeypatch):
    """`--budget 200,000` against 567,600 rial: no word at the preflight, then a pause after 100 of 473."""
    file = write_list(tmp_path / "list.csv")
    code, out, err = send(file, capsys, "--budget", "200,000", "--dry-run")
    assert code == 0, err
    seen = " ".join(err.split())
    assert (
        "warning budget: the budget covers about 166 of 473 recipients; the campaign will pause there" in seen
    )
    assert (
        "(200,000 of the 567,600 rial estimated; charged 100 recipients at a time, it pauses after 100)"
        in seen
    )

    monkeypatch.setenv("SMSDISPATCH_STRICT", "1")
    code, out, err = send(file, capsys, "--budget", "200,000")
    assert code == 3 and out == ""
    (line,) = err.strip().splitlines()
    assert line.startswith(
        "error: refused by preflight check budget: the budget covers about 166 of 473 recipients; "
        "the campaign will pause there"
    )
    assert line.endswith("to send anyway: --budget 567,600 to cover them all, or unset SMSDISPATCH_STRICT")
    assert sandboxed.state.accepted() == []
    monkeypatch.delenv("SMSDISPATCH_STRICT")

    code, out, err = send(file, capsys, "--budget", "200,000", "--json")  # what it said is what happens
    assert code == 0, err
    data = status_json(json.loads(out.strip().splitlines()[-1])["campaign"], capsys)
    assert data["state"] == "paused" and data["progress"]["sent"] == 100
    assert data["cost"]["estimated"] == N * PRICE and data["cost"]["spent"] == 100 * PRICE


def test_a_campaign_cancelled_before_sending_spent_nothing(sandboxed, tmp_path, capsys, wide):
    sandboxed.state.credit["ghasedak"] = 0  # its first call is refused: paused with nothing sent
    code, out, err = send(write_list(tmp_path / "list.csv"), capsys, "--allow-partial")
    assert code == 0, err
    assert run_cli(["cancel", "1"], capsys)[0] == 0
    code, out, err = run_cli(["summary", "--json"], capsys)
    assert code == 0, err
    (row,) = json.loads(out)
    assert (row["cost_estimated"], row["cost_spent"], row["cost_actual"]) == (N * PRICE, 0, None)
    code, out, err = run_cli(["summary"], capsys)
    assert code == 0 and "0 of 567,600" in out and "(estimated)" not in out
    code, out, err = run_cli(["status", "1"], capsys)
    text = " ".join(out.split())
    assert "cost: planned 567,600 rial (the estimate); spent so far 0 rial" in text, out
    assert "reported by ghasedak: none" in text


def test_a_cancelled_campaign_counts_only_what_was_sent(sandboxed, tmp_path, capsys, wide):
    """Paused by its budget after 100 of 473 (one part each), then cancelled: the 373 never sent are not
    "undelivered". `summary` (table and JSON) and the xlsx Summary count the 100 sent: 100 parts (not
    473), delivered % of 100 (not of 473)."""
    code, out, err = send(write_list(tmp_path / "list.csv", N, 0), capsys, "--budget", "200,000")
    assert code == 0, err
    assert run_cli(["cancel", "1"], capsys)[0] == 0
    code, _, err = run_cli(["poll", "--until-done", "--timeout", "60"], capsys)  # the 100's reports
    assert code == 0, err
    code, out, err = run_cli(["summary", "--json"], capsys)
    assert code == 0, err
    (row,) = json.loads(out)
    assert row["state"] == "cancelled" and row["counts"]["cancelled"] == N - 100
    assert row["sent"] == 100 and row["parts"] == 100  # one part each; the cancelled ones' not counted
    assert 0 < row["delivered"] <= 100
    assert row["delivered_pct"] == round(100 * row["delivered"] / 100, 1)
    code, out, err = run_cli(["summary", "--json", "--totals"], capsys)
    assert json.loads(out)["delivered_pct"] == row["delivered_pct"] and json.loads(out)["parts"] == 100
    code, out, err = run_cli(["summary"], capsys)
    assert code == 0 and f"{row['delivered_pct']:.1f}%" in out, out

    report = tmp_path / "r.xlsx"
    assert run_cli(["report", "1", "--out", str(report)], capsys)[0] == 0
    rows = [r for r in load_workbook(report)["Summary"].iter_rows(values_only=True) if r and r[0]]
    header = next(r for r in rows if r[0] == "operator")
    everyone = dict(zip(header, next(r for r in rows if r[0] == "all"), strict=True))
    assert everyone["recipients"] == N and everyone["sent"] == 100 and everyone["cancelled"] == N - 100
    assert everyone["delivered %"] == pytest.approx(row["delivered"] / 100)
    parts = next(r for r in rows if r[0] == "SMS parts")
    assert parts[1] == 100 and parts[2] == f"of {N} planned; {N - 100} not sent (cancelled)"


def test_status_splits_planned_spent_and_reported_with_its_unit(sandboxed, tmp_path, capsys):
    code, out, err = send(write_list(tmp_path / "list.csv"), capsys, "--wait", "--json")
    assert code == 0, err
    data = status_json(1, capsys)
    accepted = data["progress"]["sent"]
    reported = 155 * sum(  # the sandbox's Ghasedak reports `price` 155 per message in its status reply
        n for state, n in data["counts"].items() if state not in ("sent", "pending", "rejected")
    )
    assert data["cost"] == {
        "estimated": N * PRICE,
        "spent": accepted * PRICE,
        "unsure": 0,  # none held unknown
        "actual": reported,
        "currency": "IRR",
    }
    assert data["cost_by_provider"]["ghasedak"]["actual_unit"] is None  # seed 004 gives no unit
    code, out, err = run_cli(["status", "1"], capsys)
    text = " ".join(out.split())
    assert (
        f"planned 567,600 rial (the estimate); spent so far {accepted * PRICE:,} rial "
        f"(the estimate for the {accepted} recipients a provider accepted)"
    ) in text
    assert f"reported by ghasedak: {reported:,} (unit not documented)" in text


def test_after_failover_the_estimate_follows_the_provider_that_sent(sandboxed, tmp_path, capsys):
    """Ghasedak runs out of credit after 250 messages; the rest goes out through Amoot, whose prices are
    read from its own AccountStatus (the sandbox's tariff: 1,000 rial a part), not typed."""
    sandboxed.state.credit["ghasedak"] = 250
    code, out, err = send(write_list(tmp_path / "list.csv"), capsys, "--json", provider="ghasedak,amoot")
    assert code == 0, err
    data = status_json(1, capsys)
    by = {p: sum(c.values()) for p, c in data["by_provider"].items()}
    assert set(by) == {"ghasedak", "amoot"} and by["ghasedak"] + by["amoot"] == N
    costs = data["cost_by_provider"]
    assert costs["ghasedak"]["estimated"] == pytest.approx(by["ghasedak"] * PRICE)
    assert costs["amoot"]["estimated"] == pytest.approx(by["amoot"] * 1000, abs=len(data["chunks"]))
    assert data["cost"]["estimated"] == pytest.approx(
        costs["ghasedak"]["estimated"] + costs["amoot"]["estimated"]
    )
    assert data["cost"]["estimated"] < N * PRICE  # not the first provider's price for everyone


def test_summary_totals_for_people_and_for_scripts(sandboxed, tmp_path, capsys, wide):
    assert send(write_list(tmp_path / "a.csv", 30, 0), capsys, "--wait")[0] == 0
    assert send(write_list(tmp_path / "b.csv", 20, 0), capsys, "--wait")[0] == 0
    code, out, err = run_cli(["summary", "--json"], capsys)
    assert code == 0, err
    rows = json.loads(out)
    assert isinstance(rows, list) and {"cost_estimated", "cost_actual", "cost_spent"} <= set(rows[0])
    code, out, err = run_cli(["summary", "--json", "--totals"], capsys)
    assert code == 0, err
    total = json.loads(out)
    assert isinstance(total, dict) and total["campaigns"] == len(rows)
    for key in (
        "recipients",
        "sent",
        "delivered",
        "failed",
        "blacklisted",
        "parts",
        "cost_estimated",
        "cost_spent",
    ):
        assert total[key] == sum(r[key] for r in rows), key
    code, out, err = run_cli(["summary"], capsys)
    assert code == 0 and "total" in out and f"{len(rows)} campaigns" in out
    assert "unit not documented" in out  # what "reported" means


def test_the_xlsx_summary_counts_the_files_rejected_rows(sandboxed, tmp_path, capsys):
    assert send(write_list(tmp_path / "list.csv", 40, BAD), capsys, "--wait")[0] == 0
    out = tmp_path / "r.xlsx"
    assert run_cli(["report", "1", "--out", str(out)], capsys)[0] == 0
    rows = [r for r in load_workbook(out)["Summary"].iter_rows(values_only=True) if r and r[0]]
    by_label = {r[0]: r[1:] for r in rows}
    assert by_label["rows rejected"][0] == BAD
    header = next(r for r in rows if r[0] == "operator")
    assert "refused by the provider" in header and "rejected" not in header
    assert "cost reported by the provider (unit not documented)" in by_label
    assert by_label["cost planned (rial, estimate)"][0] == 40 * PRICE


def test_status_without_a_price_says_the_cost_is_not_known_not_not_known_rial(
    sandboxed, tmp_path, capsys, monkeypatch
):
    """No price set (the README's own example): status said "planned not known rial (the estimate); spent
    so far not known rial"."""
    monkeypatch.delenv("SMSDISPATCH_GHASEDAK_PRICE")
    code, _, err = send(write_list(tmp_path / "list.csv", 5, 0), capsys, "--wait")
    assert code == 0, err
    code, out, err = run_cli(["status", "1"], capsys)
    text = " ".join(out.split())
    assert "not known rial" not in text, text
    assert (
        "cost: planned: not known (no price for ghasedak: SMSDISPATCH_GHASEDAK_PRICE); spent so far: not known"
        in text
    )


def test_recipients_held_unknown_are_money_that_may_have_gone_out(sandboxed, tmp_path, capsys, monkeypatch):
    """Media Payamak accepts the chunk, its reply never comes, and its sent box cannot be read: the 12
    recipients are held `unknown` (the sandbox did send them). status said "spent so far 0 rial" while
    the budget kept the chunk's 14,400 rial as committed: an answer we cannot read is not evidence that
    nothing was spent. It now says what may have gone out, and the JSON keeps it as `cost.unsure`."""
    from dispatcher.sandbox.core import Fault, Rename

    monkeypatch.setenv("SMSDISPATCH_MEDIAPAYAMAK_PRICE", str(PRICE))
    monkeypatch.setenv("SMSDISPATCH_MEDIAPAYAMAK_TIMEOUT", "1,0.5")
    monkeypatch.setenv("SMSDISPATCH_MEDIAPAYAMAK_RECONCILE_GRACE", "0")
    monkeypatch.setenv("SMSDISPATCH_RECONCILE_MAX_AGE", "3")
    state = sandboxed.state
    state.add_fault(Fault("mediapayamak", op="send", kind="accept_then_hang", seconds=3, times=1))
    state.add_rename(Rename("mediapayamak", "GetMessagesByDateRange", {"receiver": "receptor"}))
    file = write_list(tmp_path / "list.csv", 12, 0)
    argv = ["send", str(file), "-p", "mediapayamak", "-m", "حراج پاییزه. لغو۱۱", "--type", "transactional"]
    code, _, err = run_cli([*argv, "--wait"], capsys)  # one text for all: one chunk of 12
    assert code == 1, err  # completed, but no outcome known: said, and not exit 0
    assert "all 12 recipients are unknown" in " ".join(err.split()), err
    assert len(state.accepted("mediapayamak")) == 12  # they went out
    data = status_json(1, capsys)
    assert data["counts"] == {"unknown": 12}
    assert data["cost"]["spent"] == 0 and data["cost"]["unsure"] == 12 * PRICE
    assert data["budget"]["spent_rial"] == 12 * PRICE
    code, out, _ = run_cli(["status", "1"], capsys)
    text = " ".join(out.split())
    assert (
        "spent so far 0 rial (the estimate for the 0 recipients a provider accepted); "
        "14,400 rial more may have gone out (12 recipients unknown: the provider could not say)"
    ) in text, text
