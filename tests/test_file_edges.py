"""Files as they arrive in public bug reports, each through the CLI (`send … --dry-run --json`, a real
send to the sandbox, `report`): Excel for Mac's bare-CR lines, blank lines and title rows before the
header, a workbook whose stored size lies, a header-only file, and report cells a spreadsheet must not
run whichever separator it splits on (OWASP CSV injection)."""

from __future__ import annotations

import csv
import io
import json
import re
import sqlite3
import zipfile
from pathlib import Path

import pytest
from openpyxl import Workbook

from campaigns.load import LoadError, RecipientLoader
from campaigns.load.xlsx import Workbook as SheetReader
from tests.test_input_idioms import ENGINES, cli, dry_run, load  # noqa: F401 - cli is a fixture


@pytest.fixture
def run(cli):  # noqa: F811 - the idioms' fixture: the CLI in process, the sandbox, a SQLite store
    return cli


def rows_of(code: int, out: object, err: str) -> tuple[int, int]:
    assert code == 0, err
    assert isinstance(out, dict), out
    return out["recipients"], out["rejected"]


def rejects(path: Path) -> list[list[str]]:
    return list(csv.reader(path.read_text(encoding="utf-8-sig").splitlines()))[1:]


# --- Excel for Mac's "CSV (Macintosh)": bare CR line endings (votingworks/arlo#883, otm-core#1998) ----

MAC = b'mobile,name,note\r09120000001,Ali,"two\rlines"\r09120000002,Reza,\rbad,Sara,\r09120000003,Maryam,x'


@pytest.mark.parametrize("engine", ENGINES)
def test_bare_cr_lines_are_rows(tmp_path: Path, engine: str) -> None:
    path = tmp_path / "mac.csv"
    path.write_bytes(MAC)
    frame, loader = load(path, engine=engine, rejects_path=tmp_path / "r.csv")
    assert frame["phone"].tolist() == ["+989120000001", "+989120000002", "+989120000003"]
    assert frame["row"].tolist() == [2, 3, 5] and frame["note"].tolist() == ["two\rlines", "", "x"]
    assert [r[:2] for r in rejects(tmp_path / "r.csv")] == [["4", "bad"]]


def test_bare_cr_file_through_the_cli(run, tmp_path: Path) -> None:
    path = tmp_path / "mac.csv"
    path.write_bytes(MAC)
    assert rows_of(*dry_run(run, path)) == (3, 1)
    path.write_bytes(b"sep=;\rmobile;name\r09120000001;Ali\r")  # Excel's hint line, bare CR too
    assert rows_of(*dry_run(run, path)) == (1, 0)


def test_bare_cr_damage_names_its_line(run, tmp_path: Path) -> None:
    path = tmp_path / "mac.csv"
    path.write_bytes(b'mobile,name\r09120000001,Ali\r09120000002,"Reza\r09120000003,Sara\r')
    code, _, err = dry_run(run, path)
    assert code == 2 and 'mac.csv line 3 opens a quote (") that never closes' in err


# --- blank lines (django-import-export#1192) and title rows before the header ------------------------


def test_blank_lines_before_the_header(run, tmp_path: Path) -> None:
    path = tmp_path / "list.csv"
    path.write_text("\n\n,,\nmobile,name\n09120000001,Ali\nbad,Reza\n", encoding="utf-8")
    code, out, err = dry_run(run, path)
    assert rows_of(code, out, err) == (1, 1)
    assert "list.csv: the header is row 4 (mobile, name)" in err and "--header-row N" in err
    assert rejects(tmp_path / "list.dry-run.rejects.csv") == [["6", "bad", "not a number", "Reza"]]


def test_a_persian_title_row_above_the_header(run, tmp_path: Path) -> None:
    path = tmp_path / "list.csv"
    path.write_text(
        "لیست مشتریان فروشگاه\n\nنام;موبایل;شهر\nعلی;09120000001;تهران\nسارا;09120000002;شیراز\n",
        encoding="utf-8",
    )
    code, out, err = run(
        "send", str(path), "-p", "ghasedak", "-m", "{نام} عزیز", "--dry-run", "--json", "--window", "any"
    )
    assert rows_of(code, out, err) == (2, 0)  # `;` from the header's own line, not the title's
    assert [p["text"] for p in out["preview"]] == ["علی عزیز", "سارا عزیز"]
    assert [p["row"] for p in out["preview"]] == [4, 5]  # the spreadsheet's rows
    assert "the header is row 3 (نام, موبایل, شهر)" in err and "rows 1-2 above it are skipped" in err
    # --column finds the header it names; --header-row takes the row given and says so
    assert rows_of(*dry_run(run, path, "--column", "موبایل")) == (2, 0)
    code, out, err = dry_run(run, path, "--header-row", "3")
    assert rows_of(code, out, err) == (2, 0) and "as --header-row says" in err
    code, _, err = dry_run(run, path, "--header-row", "1")  # the title is no header: said plainly
    assert code == 2 and "list.csv has no phone column among: لیست مشتریان فروشگاه" in err
    code, _, err = dry_run(run, path, "--header-row", "2")
    assert code == 2 and "--header-row 2: row 2 of list.csv is blank" in err


def test_a_title_that_names_a_phone_word_does_not_win_over_the_header(tmp_path: Path) -> None:
    path = tmp_path / "list.csv"
    path.write_text("Mobile numbers, autumn 1405\nname,mobile\nAli,09120000001\n", encoding="utf-8")
    frame, loader = load(path)
    assert loader.header_row == 2 and frame["row"].tolist() == [3]


def test_a_recipients_row_is_never_taken_for_the_header(tmp_path: Path) -> None:
    path = tmp_path / "list.csv"  # a header with no phone word, and a yes/no column saying "No"
    path.write_text("name,shomare,subscribed\nAli,09120000001,No\n", encoding="utf-8")
    with pytest.raises(LoadError, match="has no phone column among: name, shomare, subscribed"):
        RecipientLoader(path)
    assert RecipientLoader(path, column="shomare").header_row == 1


def test_title_and_blank_rows_in_a_workbook(run, tmp_path: Path) -> None:
    book = Workbook()
    sheet = book.active
    sheet["A1"] = "لیست مشتریان فروشگاه"
    sheet.append([])
    sheet.append(["نام", "موبایل"])
    sheet.append(["علی", "09120000001"])
    sheet.append(["سارا", "09120000002"])
    book.save(tmp_path / "list.xlsx")
    code, out, err = dry_run(run, tmp_path / "list.xlsx")
    assert rows_of(code, out, err) == (2, 0)
    assert out["preview"][0]["row"] == 4 and "the header is row 3" in err
    loader = RecipientLoader(tmp_path / "list.xlsx")
    assert [list(b["row"]) for b in loader.blocks()] == [[4, 5]]
    assert [list(b["row"]) for b in loader.blocks()] == [[4, 5]]  # read again: the same rows


# --- sizes from the data, not the file's metadata ------------------------------------------------------


def with_dimension(src: Path, dst: Path, ref: str) -> Path:
    """`src` with its first sheet's stored dimension replaced by `ref` (what a careless writer stores)."""
    with zipfile.ZipFile(src) as zin, zipfile.ZipFile(dst, "w", zipfile.ZIP_DEFLATED) as zout:
        for item in zin.infolist():
            data = zin.read(item.filename)
            if item.filename == "xl/worksheets/sheet1.xml":
                text = data.decode()
                text = re.sub(r'<dimension ref="[^"]*"\s*/>', f'<dimension ref="{ref}"/>', text)
                assert f'<dimension ref="{ref}"/>' in text
                data = text.encode()
            zout.writestr(item, data)
    return dst


def test_a_workbooks_stored_dimension_is_not_trusted(run, tmp_path: Path) -> None:
    book = Workbook()
    sheet = book.active
    sheet.append(["name", "mobile"])
    for i in range(1, 6):
        sheet.append([f"n{i}", f"0912000000{i}"])
    book.save(tmp_path / "true.xlsx")
    short = with_dimension(tmp_path / "true.xlsx", tmp_path / "short.xlsx", "A1:A2")  # says 1 column, 2 rows
    assert rows_of(*dry_run(run, short)) == (5, 0)
    huge = with_dimension(tmp_path / "true.xlsx", tmp_path / "huge.xlsx", "A1:XFD1048576")
    reader = SheetReader(huge, "huge.xlsx")
    assert [len(cells) for cells in reader.head(100)] == [2] * 6  # not 16,384 empty cells a row
    assert rows_of(*dry_run(run, huge)) == (5, 0)


# --- a header-only file: one line, exit 2 --------------------------------------------------------------


def test_a_header_only_file_is_one_line_and_exit_2(run, tmp_path: Path) -> None:
    path = tmp_path / "list.csv"
    path.write_text("mobile,name\n\n", encoding="utf-8")
    for extra in (("--dry-run",), ()):
        code, out, err = run("send", str(path), "-p", "ghasedak", "-m", "hi", *extra)
        assert code == 2 and out in ("", None)
        assert err.strip().splitlines() == [
            "error: list.csv has no rows under the header (row 1: mobile, name); put one recipient per row "
            "under it and try again"
        ]
    assert not (tmp_path / "idioms.db").exists() or sqlite3.connect(tmp_path / "idioms.db").execute(
        "SELECT count(*) FROM campaigns"
    ).fetchone() == (0,)


# --- a report no spreadsheet runs, whichever separator it splits on ------------------------------------

NASTY = [
    "x;=1+1",  # Excel in a Persian or European locale splits on ;
    "\n=1+1",  # a line feed, then a formula
    'a,=HYPERLINK("http://evil.example","click")',
    "ok; -2+3+cmd|' /C calc'!A0",
    'q;"@SUM(1+1)"',
    "+SUM(1;2)",
    "12,-5;+1.5",  # split on , alone, "-5;+1.5" is no plain number
    "سلام، خوبی؟",
]
FORMULA = ("=", "+", "-", "@")
PLAIN_NUMBER = re.compile(r"[+-]?\d+(?:\.\d+)?")


def starts_a_formula(field: str) -> bool:
    text = field.strip(' "\t\r\n')
    return text.startswith(FORMULA) and not PLAIN_NUMBER.fullmatch(text)


def test_report_cells_are_inert_whichever_separator_a_spreadsheet_uses(run, tmp_path: Path) -> None:
    path = tmp_path / "list.csv"
    buffer = io.StringIO()
    csv.writer(buffer).writerows(
        [["mobile", "note"], *([f"0912000000{i}", note] for i, note in enumerate(NASTY))]
    )
    path.write_text(buffer.getvalue(), encoding="utf-8")
    code, out, err = run("send", str(path), "-p", "ghasedak", "-m", "hi", "--json", "--window", "any")
    assert code == 0, err
    code, _, err = run("report", str(out["campaign"]), "--out", str(tmp_path / "report.csv"))
    assert code == 0, err
    raw = (tmp_path / "report.csv").read_text(encoding="utf-8-sig")
    rows = list(csv.reader(io.StringIO(raw)))
    notes = {r[0]: r[7] for r in rows[1:]}
    assert notes["+989120000000"] == "x;'=1+1" and notes["+989120000006"] == "12,'-5;'+1.5"
    assert notes["+989120000007"] == "سلام، خوبی؟"
    for row in rows[1:]:
        for cell in row:
            assert not cell.startswith(("\t", "\r", "\n")), cell
            for field in re.split(r"[;,\t\r\n]", cell):  # a spreadsheet that splits inside the cell
                assert not starts_a_formula(field), (cell, field)
    for separator in (";", ","):  # the whole file read as a spreadsheet of either locale reads it
        for record in csv.reader(io.StringIO(raw), delimiter=separator):
            for i, field in enumerate(record):
                if i == 0 and separator == ";" and re.match(r"\+98\d{10},", field):
                    continue  # the line's start: our own E.164 phone, then our fixed columns
                assert not starts_a_formula(field), (separator, record)
        for line in raw.splitlines():  # and a reader that knows no quotes at all
            for i, field in enumerate(line.split(separator)):
                if i == 0 and separator == ";" and re.match(r"\+98\d{10},", field):
                    continue
                assert not starts_a_formula(field), (separator, line)
    assert json.dumps(notes, ensure_ascii=False)  # the rest of the report is what it was


def test_the_rejects_file_ends_every_line_the_same_way(run, tmp_path: Path) -> None:
    """Its header ended in CRLF (the csv module), the loader's rows in LF (pyarrow) and the rows the
    preflight moved there (--skip-recent, the blacklist memory) in CRLF again: one file, three endings."""
    path = tmp_path / "list.csv"
    path.write_text("mobile,name\n09120000001,Ali\nbad,Reza\n09120000002,Sara\n", encoding="utf-8")
    assert run("send", str(path), "-p", "ghasedak", "-m", "hello", "--window", "any", "--yes")[0] == 0
    path.write_text("mobile,name\n09120000001,Ali\nbad,Reza\n09120000003,Maryam\n", encoding="utf-8")
    code, out, err = dry_run(run, path, "--skip-recent")  # 0912…01 got campaign 1 just now
    assert rows_of(code, out, err) == (1, 2)
    data = (tmp_path / "list.dry-run.rejects.csv").read_bytes()
    assert data.count(b"\n") == 3 and b"\r" not in data, data
    assert [r[:2] for r in rejects(tmp_path / "list.dry-run.rejects.csv")] == [
        ["3", "bad"],
        ["2", "09120000001"],
    ]
