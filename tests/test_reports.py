"""Reports that spreadsheets open safely (OWASP CSV injection), as CSV and as Excel, from a real store."""

from __future__ import annotations

import csv

import pandas as pd
import pytest
from openpyxl import load_workbook

from campaigns.plan import plan
from campaigns.store import CampaignSpec, RecipientUpdate, Store
from campaigns.text import Template
from dispatcher.reports.recipients import spreadsheet_safe, write_report
from tests.test_store import LEASE

NASTY = [
    '=HYPERLINK("http://evil.example","click")',
    "+SUM(1,2)",
    "-2+3+cmd|' /C calc'!A0",
    "@SUM(1+1)",
    "\t=1+1",
    "\r=1+1",
    "+989121234567",  # a phone number in the CSV's own columns: a plain number, left as it is
    "-1",
    "plain text, سلام",
]


@pytest.mark.parametrize(
    "value, expected",
    [
        ("=1+1", "'=1+1"),
        ("+SUM(1,2)", "'+SUM(1,2)"),
        ("-2+3", "'-2+3"),
        ("@A1", "'@A1"),
        ("\tx", "'\tx"),
        ("\r=x", "'\r'=x"),  # the line break ends a line for a reader that ignores quotes
        ("\n=x", "'\n'=x"),
        ("x;=1+1", "x;'=1+1"),  # Excel in a Persian or European locale splits on ;
        ("x, @SUM(1)", "x,' @SUM(1)"),
        ('x;"=1"', 'x;\'"=1"'),
        ("12,-5;+1.5", "12,'-5;'+1.5"),  # "-5;+1.5" is no number to a reader splitting on ,
        ("+989121234567", "+989121234567"),
        ("-1", "-1"),
        ("+1.5", "+1.5"),
        ("+98 912 123 4567", "'+98 912 123 4567"),  # not a plain number: inert
        ("a=b", "a=b"),
        ("", ""),
        (None, None),
        (12, 12),
    ],
)
def test_spreadsheet_safe(value, expected):
    assert spreadsheet_safe(value) == expected


@pytest.fixture
def nasty_campaign(store: Store) -> int:
    n = len(NASTY)
    df = pd.DataFrame(
        {
            "row": range(2, n + 2),
            "phone": [f"+98912{i:07d}" for i in range(n)],
            "note": NASTY,
            "=col": ["x"] * n,  # a hostile column name too
        }
    )
    spec = CampaignSpec(
        name="nasty",
        provider="ghasedak",
        account="acct",
        sender="1000",
        message="hi",
        personalised=False,
        columns=["note", "=col"],
    )
    cid = store.create_campaign(spec, plan([df], Template("hi"), 100, ["note", "=col"]))
    ((chunk_id, attempt),) = store.claimable_chunks(campaign_id=cid)
    chunk = store.claim_chunk(chunk_id, attempt, LEASE)
    updates = [
        RecipientUpdate(m.recipient_id, "failed", "@mid", "-1", "=provider said: +cmd")
        for m in chunk.messages
    ]
    store.record_send(chunk, updates, requeue=False)
    return cid


def test_csv_report_is_inert_and_keeps_phone_numbers(store: Store, nasty_campaign: int, tmp_path) -> None:
    out = tmp_path / "r.csv"
    write_report(store, nasty_campaign, out)
    with out.open(encoding="utf-8-sig", newline="") as fh:
        rows = list(csv.reader(fh))
    header, body = rows[0], rows[1:]
    assert header[-2:] == ["note", "'=col"]
    assert [r[0] for r in body] == [f"+98912{i:07d}" for i in range(len(NASTY))]  # E.164, untouched
    notes = [r[7] for r in body]
    assert notes == [spreadsheet_safe(v) for v in NASTY]
    assert notes[:4] == ["'" + v for v in NASTY[:4]]
    assert notes[4:6] == ["'\t'=1+1", "'\r'=1+1"]
    assert notes[6:] == ["+989121234567", "-1", "plain text, سلام"]
    for r in body:
        assert (r[2], r[3], r[4]) == ("'@mid", "-1", "'=provider said: +cmd")
        assert not any(cell.startswith(("=", "@", "\t", "\r")) for cell in r)


def test_xlsx_report_holds_text_never_formulas(store: Store, nasty_campaign: int, tmp_path) -> None:
    out = tmp_path / "r.xlsx"
    write_report(store, nasty_campaign, out)
    ws = load_workbook(out)["Recipients"]  # the sheet after "Summary"; columns found by their header
    rows = list(ws.iter_rows())
    header = [c.value for c in rows[0]]
    assert header[-2:] == ["note", "=col"]
    for row in rows:
        assert all(c.data_type == "s" or c.value is None for c in row), [(c.value, c.data_type) for c in row]
    body = [dict(zip(header, [c.value for c in row], strict=True)) for row in rows[1:]]
    assert [r["phone (E.164)"] for r in body] == [f"+98912{i:07d}" for i in range(len(NASTY))]
    # exactly the text, no apostrophe needed (without lxml, openpyxl's writer lets XML read a carriage
    # return back as a line feed; with lxml it is escaped and kept)
    assert [r["note"] for r in body] in (NASTY, [v.replace("\r", "\n") for v in NASTY])
    assert {(r["provider message id"], r["provider code"], r["error"]) for r in body} == {
        ("@mid", "-1", "=provider said: +cmd")
    }
