"""Reports people read: the xlsx Summary and Recipients sheets checked against `status --json`,
`summary --json` against `status --json` for every campaign, and the pieces (Tehran/Jalali, rial,
phones, provider code meanings). Real store (SQLite through the CLI; the sandbox over HTTP)."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import jdatetime
from openpyxl import load_workbook
from openpyxl.utils import get_column_letter

from campaigns.store import Store
from campaigns.windows import TEHRAN
from dispatcher.humane import Calendar, calendar_from_env, is_persian, jalali, local_phone, rial, tehran
from dispatcher.reports.provider_codes import code_meaning
from dispatcher.reports.summary import parse_since
from tests.support.campaign_builder import build_campaign
from tests.support.cli import run_cli
from tests.test_status_cli import cli_env, status_json  # noqa: F401 - the fixture

PERSIAN_TEXT = "سلام {name}، ۲۰٪ تخفیف پاییزه"


def _send(cli_env, capsys, *extra: str) -> int:  # noqa: F811
    code, out, err = run_cli(
        ["send", str(cli_env["src"]), "-p", "ghasedak", *extra, "--wait", "--json"], capsys
    )
    assert code == 0, err
    return json.loads(out.strip().splitlines()[-1])["campaign"]


def test_people_see_tehran_time_jalali_dates_rial_and_local_phones():
    at = datetime(2026, 11, 29, 9, 37, 5, tzinfo=UTC)
    assert tehran(at) == "2026-11-29 13:07:05 +03:30"
    assert jalali(at) == "1405/09/08 13:07:05"
    assert tehran(None) == jalali(None) == ""
    assert rial(1234567) == "1,234,567 rial" and rial(None) == "not known"
    assert local_phone("+989121234567") == "09121234567" and local_phone("+14155550100") == "+14155550100"
    assert (
        is_persian("سلام {name}، تخفیف")
        and not is_persian("Hi {name}")
        and not is_persian("Hi سلام there all")
    )
    assert calendar_from_env({"SMSDISPATCH_CALENDAR": "Jalali"}) == Calendar.JALALI
    assert calendar_from_env({}) == Calendar.GREGORIAN


def test_provider_codes_have_their_meaning_from_the_provider_tables():
    assert code_meaning("ghasedak", "27") == "delivery report: blacklisted"
    assert code_meaning("ghasedak", "1") == "delivery report: delivered"
    assert code_meaning("ghasedak", "9") == "account problem"  # a call code: not enough credit
    assert code_meaning("amoot", "35") == "delivery report: blacklisted"
    # 8 is "sent to the operator" in a Ghasedak report and "invalid receptor" in its send reply
    assert code_meaning("ghasedak", "8") == code_meaning("ghasedak", "8", "sent_to_operator")
    assert code_meaning("ghasedak", "8", "sent_to_operator") == "delivery report: sent_to_operator"
    assert code_meaning("ghasedak", "8", "failed") == "refused at send: failed"
    assert code_meaning("negin", "27", "blacklisted") == "refused at send: blacklisted"
    assert (
        code_meaning("ghasedak", "12345")
        == code_meaning("nosuch", "1")
        == code_meaning("ghasedak", None)
        == ""
    )


def test_since_takes_a_time_ago_or_a_date():
    now = datetime(2026, 11, 29, 9, 0, tzinfo=UTC)
    assert parse_since("24h", now) == datetime(2026, 11, 28, 9, 0, tzinfo=UTC)
    assert parse_since("1405/09/08", now) == datetime(2026, 11, 28, 20, 30, tzinfo=UTC)  # Tehran midnight


def test_xlsx_summary_agrees_with_status_and_recipients_read_right_to_left(cli_env, capsys):  # noqa: F811
    campaign = _send(cli_env, capsys, "-m", PERSIAN_TEXT, "--name", "پاییز")
    status = status_json(campaign, capsys)
    out = cli_env["tmp"] / "r.xlsx"
    code, _, err = run_cli(["report", str(campaign), "--out", str(out)], capsys)
    assert code == 0, err
    wb = load_workbook(out)
    assert wb.sheetnames == ["Summary", "Recipients"]
    rows = [list(r) for r in wb["Summary"].iter_rows(values_only=True)]
    by_label = {r[0]: r[1:] for r in rows if r and r[0]}
    assert by_label["name"][0] == "پاییز" and by_label["provider"][0] == "ghasedak"
    created = datetime.fromisoformat(status["created_at"])
    assert tuple(by_label["created"][:2]) == (tehran(created), jalali(created))
    jy, jm, jd = (int(x) for x in by_label["created"][1][:10].split("/"))
    assert jdatetime.date(jy, jm, jd).togregorian() == created.astimezone(TEHRAN).date()
    header = rows[[r[0] for r in rows].index("operator")]
    table = {r[0]: dict(zip(header[1:], r[1:], strict=True)) for r in rows if r and r[0]}
    every = table["all"]
    counts = status["counts"]
    assert every["recipients"] == status["recipients"]
    assert every["sent"] == status["progress"]["sent"]
    assert every["delivered"] == counts.get("delivered", 0)
    assert every["delivered %"] == counts.get("delivered", 0) / status["recipients"]
    for state in ("undelivered", "blacklisted", "failed", "expired", "cancelled", "unknown"):
        assert every[state] == counts.get(state, 0), state
    assert every["refused by the provider"] == counts.get("rejected", 0)  # not the file's rejected rows
    assert by_label["rows rejected"][0] == status["rejected"] > 0  # those: the file's own
    operators = [k for k in table if k.split(" ")[0] in ("MCI", "Irancell", "Rightel", "other")]
    assert len(operators) == 4
    for col in ("recipients", "sent", "delivered", "failed", "blacklisted"):
        assert sum(table[k][col] for k in operators) == every[col], col
    for k in operators:  # an operator with no recipients sent nothing (the campaign's failures stay its own)
        assert table[k]["sent"] <= table[k]["recipients"], (k, table[k])
    assert by_label["SMS parts"][0] > 0 and by_label["cost planned (rial, estimate)"][0] == "not known"
    assert by_label["cost reported by the provider (unit not documented)"][0] == status["cost"]["actual"]

    ws = wb["Recipients"]
    assert ws.sheet_view.rightToLeft is True  # the text is Persian
    assert (
        ws.freeze_panes == "A2"
        and ws.auto_filter.ref == f"A1:{get_column_letter(ws.max_column)}{status['recipients'] + 1}"
    )
    names = [c.value for c in ws[1]]
    body = [dict(zip(names, r, strict=True)) for r in ws.iter_rows(min_row=2, values_only=True)]
    assert len(body) == status["recipients"]
    for r in body:
        assert r["phone"] == "0" + r["phone (E.164)"][3:] and r["phone"].startswith("09")
        assert r["state (English)"] and r["وضعیت"]
        if r["sent (Tehran)"]:
            assert r["sent (Tehran)"].endswith("+03:30") and r["sent (Jalali)"].startswith("140")
    delivered = [r for r in body if r["state"] == "delivered"]
    assert delivered and all(r["code meaning"] == "delivery report: delivered" for r in delivered)
    assert ws.column_dimensions["B"].width == len("+989121234567") + 2  # fitted to the E.164 numbers


def test_latin_text_reads_left_to_right(cli_env, capsys):  # noqa: F811
    campaign = _send(cli_env, capsys, "-m", "Hi {name}")
    out = cli_env["tmp"] / "r.xlsx"
    assert run_cli(["report", str(campaign), "--out", str(out)], capsys)[0] == 0
    assert not load_workbook(out)["Recipients"].sheet_view.rightToLeft


def test_summary_json_agrees_with_status_for_every_campaign(cli_env, capsys, monkeypatch):  # noqa: F811
    sent = _send(cli_env, capsys, "-m", "Hi {name}")
    store = Store.from_url(cli_env["db"])
    built = build_campaign(store, 50, state="cancelled", name="کمپین")  # created in the past (START)
    code, out, err = run_cli(["summary", "--json"], capsys)
    assert code == 0, err
    rows = json.loads(out)
    assert [r["campaign"] for r in rows] == [sent, built]
    for row in rows:
        status = status_json(row["campaign"], capsys)
        assert row["name"] == status["name"] and row["state"] == status["state"]
        assert row["recipients"] == status["recipients"]
        assert row["sent"] == status["progress"]["sent"]
        for state in ("delivered", "failed", "blacklisted"):
            assert row[state] == status["counts"].get(state, 0)
        assert row["started_at"] == status["started_at"]
        assert row["delivered_pct"] == round(100 * row["delivered"] / row["recipients"], 1)
        assert row["cost_estimated"] is None and row["parts"] > 0
    code, out, _ = run_cli(["summary", str(built), "--json"], capsys)
    assert [r["campaign"] for r in json.loads(out)] == [built]
    code, out, _ = run_cli(["summary", "--since", "1h", "--json"], capsys)
    assert [r["campaign"] for r in json.loads(out)] == [sent]  # the built one was created in 2026-11-26
    monkeypatch.setenv("SMSDISPATCH_CALENDAR", "jalali")  # the table for people, Jalali dates on request
    monkeypatch.setenv("COLUMNS", "250")
    code, out, err = run_cli(["summary", str(built)], capsys)
    assert code == 0, err
    assert (
        "1405/09/05 2026-11-26 11:30 +03:30" in out
    )  # started 2026-11-26 08:00 UTC: the CLI's one time format


def test_summary_of_an_unknown_campaign_is_exit_2(cli_env, capsys):  # noqa: F811
    code, _, err = run_cli(["summary", "99", "--json"], capsys)
    assert code == 2 and "no campaign 99" in err
    code, _, err = run_cli(["summary", "--since", "soon"], capsys)
    assert code == 2 and "--since 'soon'" in err


def test_after_failover_the_xlsx_names_the_provider_that_sent_and_reads_its_codes(cli_env, capsys):  # noqa: F811
    """Ghasedak refuses every send (HTTP 503) and the route moves every recipient to Media Payamak: the
    Summary sheet said "provider: ghasedak", and the Recipients sheet read Media Payamak's codes in
    Ghasedak's tables ("9" failed, "7" blacklisted: "account problem")."""
    from dispatcher.sandbox.core import Fault

    cli_env["state"].add_fault(Fault("ghasedak", op="send", kind="http", status=503, times=1000))
    code, out, err = run_cli(
        ["send", str(cli_env["src"]), "-p", "ghasedak,mediapayamak", "-m", "Hi {name}", "--wait", "--json"],
        capsys,
    )
    assert code == 0, err
    campaign = json.loads(out.strip().splitlines()[-1])["campaign"]
    assert set(status_json(campaign, capsys)["by_provider"]) == {"mediapayamak"}
    out_file = cli_env["tmp"] / "report.xlsx"
    assert run_cli(["report", str(campaign), "--out", str(out_file)], capsys)[0] == 0
    book = load_workbook(out_file)
    labels = {row[0]: row[1] for row in book["Summary"].iter_rows(values_only=True) if row and row[0]}
    assert labels["provider"] == "mediapayamak (failover from ghasedak)", labels["provider"]
    rows = list(book["Recipients"].iter_rows(values_only=True))
    head = rows[0]
    code_at, meaning_at, state_at = (
        head.index("provider code"),
        head.index("code meaning"),
        head.index("state"),
    )
    checked = 0
    for row in rows[1:]:
        if row[code_at]:
            assert row[meaning_at] == code_meaning("mediapayamak", row[code_at], row[state_at]), row
            checked += 1
    assert checked and not any(r[meaning_at] == "account problem" for r in rows[1:])
