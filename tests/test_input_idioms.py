"""The input file (README, "The input file"): what the file says is what gets sent. Each example, a tiny handmade file, through the loader
and through the CLI (`send … --dry-run --json`; a real embedded send to the sandbox for number formats)."""

from __future__ import annotations

import csv
import datetime as dt
import json
import os
import subprocess
import sys
import tomllib
from pathlib import Path

import pandas as pd
import pytest
from openpyxl import Workbook

from campaigns.load import LoadError, RecipientLoader
from dispatcher.cli import main
from dispatcher.sandbox.core import SandboxState, sandbox_env
from dispatcher.sandbox.server import start

ROOT = Path(__file__).resolve().parent.parent
ENGINES = ["pyarrow", "pandas"]


def load(path: Path, **kwargs: object) -> tuple[pd.DataFrame, RecipientLoader]:
    loader = RecipientLoader(path, **kwargs)  # type: ignore[arg-type]
    blocks = list(loader.blocks())
    return (pd.concat(blocks, ignore_index=True) if blocks else pd.DataFrame()), loader


def load_error(path: Path, **kwargs: object) -> str:
    with pytest.raises(LoadError) as err:
        list(RecipientLoader(path, **kwargs).blocks())  # type: ignore[arg-type]
    assert "\n" not in str(err.value)
    return str(err.value)


def write(path: Path, text: str) -> Path:
    path.write_bytes(text.encode("utf-8"))
    return path


@pytest.fixture
def cli(tmp_path, monkeypatch, capsys):
    """Run the CLI in process against an in-process sandbox and a SQLite file: (exit code, JSON or out, err)."""
    running = start(SandboxState(seed=3, final_after_s=0.2))
    env = sandbox_env(running.url)
    env["SMSDISPATCH_DATABASE_URL"] = f"sqlite:///{tmp_path / 'idioms.db'}"
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    monkeypatch.delenv("SMSDISPATCH_BROKER_URL", raising=False)
    monkeypatch.chdir(tmp_path)

    def run(*argv: str) -> tuple[int, object, str]:
        try:
            main(list(argv))
            code = 0
        except SystemExit as exc:
            code = int(exc.code or 0)
        captured = capsys.readouterr()
        lines = captured.out.strip().splitlines()
        try:
            out: object = json.loads(lines[-1]) if lines else None
        except json.JSONDecodeError:
            out = captured.out
        return code, out, captured.err

    run.sandbox = running  # type: ignore[attr-defined]
    try:
        yield run
    finally:
        running.stop()


def dry_run(cli, path: Path, *extra: str) -> tuple[int, object, str]:
    return cli("send", str(path), "-p", "ghasedak", "-m", "hello", "--dry-run", "--json", *extra)


# --- 1. an unclosed quote swallows the rest of the file (structural damage) ----------------------

UNCLOSED = 'mobile,name\n09120000001,"Ali\n09120000002,Reza\n09120000003,Sara\n'


@pytest.mark.parametrize("engine", ENGINES)
def test_unclosed_quote_is_refused_naming_its_line(tmp_path: Path, engine: str) -> None:
    message = load_error(write(tmp_path / "list.csv", UNCLOSED), engine=engine)
    assert message.startswith('list.csv line 2 opens a quote (") that never closes')
    assert "close the quote on that line or remove it" in message


@pytest.mark.parametrize("engine", ENGINES)
def test_unclosed_quote_in_a_middle_column_names_its_line(tmp_path: Path, engine: str) -> None:
    text = 'name,mobile,city\na,09120000001,x\n"b,09120000002,y\nc,09120000003,z\n'
    assert load_error(write(tmp_path / "l.csv", text), engine=engine).startswith("l.csv line 3 opens a quote")


@pytest.mark.parametrize("engine", ENGINES)
def test_quoted_field_closing_on_a_later_line_stays_legal(tmp_path: Path, engine: str) -> None:
    text = 'mobile,name\n09120000001,"Ali\nof Tehran"\n09120000002,"Reza ""the"" 2nd"\n09120000003,Sara'
    frame, loader = load(write(tmp_path / "l.csv", text), engine=engine)
    assert frame["name"].tolist() == ["Ali\nof Tehran", 'Reza "the" 2nd', "Sara"]
    assert loader.stats.rows == 3


def test_unclosed_quote_exits_2_and_stores_nothing(cli, tmp_path: Path) -> None:
    code, _, err = dry_run(cli, write(tmp_path / "list.csv", UNCLOSED))
    assert code == 2 and "list.csv line 2 opens a quote" in err and "Traceback" not in err
    code, _, err = cli("send", str(tmp_path / "list.csv"), "-p", "ghasedak", "-m", "hi", "--json")
    assert code == 2
    # not even a database: nothing is stored before the checks pass
    assert not (tmp_path / "idioms.db").exists()


def test_nul_byte_is_refused_naming_its_line(tmp_path: Path) -> None:
    path = tmp_path / "list.csv"
    path.write_bytes(b"mobile,name\n09120000001,Ali\n09120000002,Re\x00za\n")
    assert load_error(path) == (
        "list.csv line 3 holds a NUL byte: the file is damaged; "
        "save the file again from the spreadsheet (or fix that line) and try again"
    )


def test_truncated_multibyte_text_names_its_line(tmp_path: Path) -> None:
    path = tmp_path / "list.csv"
    path.write_bytes("mobile,name\n09120000001,علی\n09120000002,رضا\n".encode()[:-2])
    assert "(line 3: " in load_error(path)


def test_a_ragged_row_longer_than_the_header_is_refused_with_its_line(tmp_path: Path) -> None:
    path = write(tmp_path / "l.csv", "mobile,name\n09120000001,Ali\n09120000002,Reza, Tehran\n")
    assert load_error(path).startswith("l.csv: Expected 2 fields in line 3, saw 3")


# --- 2. Excel's display is what is sent ----------------------------------------------------------


def formatted_book(path: Path) -> Path:
    book = Workbook()
    sheet = book.active
    sheet.append(["mobile", "share", "code", "amount", "day", "time", "text"])
    sheet.append(["09120000001", 0.2, 123, 1500000, dt.date(2026, 11, 29), dt.time(9, 30), 9120000001])
    for cell, fmt in zip(sheet[2][1:], ["0%", "00000", "#,##0", "yyyy-mm-dd", "hh:mm", "@"], strict=True):
        cell.number_format = fmt
    book.save(path)
    return path


def test_xlsx_cells_read_as_excel_shows_them(tmp_path: Path) -> None:
    frame, _ = load(formatted_book(tmp_path / "f.xlsx"))
    assert frame.drop(columns=["row", "phone"]).iloc[0].to_dict() == {
        "share": "20%",
        "code": "00123",
        "amount": "1,500,000",
        "day": "2026-11-29",
        "time": "09:30",
        "text": "9120000001",
    }


def test_number_formats_reach_the_provider_as_shown(cli, tmp_path: Path) -> None:
    path = formatted_book(tmp_path / "f.xlsx")
    code, out, err = cli(
        "send", str(path), "-p", "ghasedak", "-m", "{share} off {amount} rial, code {code}", "--json"
    )
    assert code == 0, err
    assert out["recipients"] == 1  # type: ignore[index]
    texts = [m.text for m in cli.sandbox.state.accepted("ghasedak")]
    assert texts == ["20% off 1,500,000 rial, code 00123"]


# --- 3. blank rows never count -------------------------------------------------------------------


def test_formatted_but_empty_xlsx_rows_are_not_rows(tmp_path: Path) -> None:
    book = Workbook()
    sheet = book.active
    sheet.append(["mobile", "name"])
    sheet.append(["09120000001", "Ali"])
    sheet.append(["09120000002", "Reza"])
    for row in range(4, 201):  # formatted, nothing typed
        for col in (1, 2):
            sheet.cell(row, col).number_format = "@"
    sheet.cell(150, 2).value = "   "
    path = tmp_path / "f.xlsx"
    book.save(path)
    frame, loader = load(path, rejects_path=tmp_path / "rejects.csv")
    assert (loader.stats.rows, loader.stats.valid, loader.stats.rejected) == (2, 2, 0)
    assert (tmp_path / "rejects.csv").read_text(encoding="utf-8-sig").splitlines() == [
        "row,value,reason,name"
    ]


@pytest.mark.parametrize("engine", ENGINES)
def test_blank_csv_lines_and_empty_cell_rows_are_not_rows(tmp_path: Path, engine: str) -> None:
    path = write(tmp_path / "l.csv", "mobile,name,city\n09120000001,a,x\n\n,,\n , ,\n,b,\n09120000002,c,z\n")
    frame, loader = load(path, rejects_path=tmp_path / "r.csv", engine=engine)
    assert frame["row"].tolist() == [2, 7]
    assert (loader.stats.rows, loader.stats.rejected) == (3, 1)  # the row holding only "b" is a reject
    rejects = list(csv.reader((tmp_path / "r.csv").read_text(encoding="utf-8-sig").splitlines()))
    assert rejects[1:] == [["6", "", "empty", "b", ""]]


def test_blank_rows_are_not_counted_by_the_cli(cli, tmp_path: Path) -> None:
    path = write(tmp_path / "l.csv", "mobile,name\n09120000001,a\n,\n\n09120000002,b\n,\n")
    code, out, err = dry_run(cli, path)
    assert code == 0, err
    assert (out["recipients"], out["rejected"]) == (2, 0)  # type: ignore[index]


# --- 4. ="09120000001" ---------------------------------------------------------------------------


@pytest.mark.parametrize("engine", ENGINES)
def test_formula_text_idiom_keeps_the_leading_zero(tmp_path: Path, engine: str) -> None:
    text = 'mobile,name\n="09120000001",="Ali"\n"=""09120000002""",Reza\n'
    frame, loader = load(write(tmp_path / "l.csv", text), engine=engine)
    assert frame["phone"].tolist() == ["+989120000001", "+989120000002"]
    assert frame["name"].tolist() == ["Ali", "Reza"] and loader.stats.rejected == 0


def test_formula_text_idiom_through_the_cli(cli, tmp_path: Path) -> None:
    code, out, err = dry_run(cli, write(tmp_path / "l.csv", 'mobile,name\n="09120000001",Ali\n'))
    assert code == 0, err
    assert (out["recipients"], out["rejected"]) == (1, 0)  # type: ignore[index]


# --- 5. sep=; ------------------------------------------------------------------------------------


@pytest.mark.parametrize("engine", ENGINES)
def test_sep_hint_is_honoured(tmp_path: Path, engine: str) -> None:
    text = "\ufeffsep=;\r\nmobile;name\r\n09120000001;Ali, Reza\r\n09120000002;Sara\r\n"
    frame, loader = load(write(tmp_path / "l.csv", text), engine=engine)
    assert loader.columns == ["mobile", "name"]
    assert frame.to_dict("list") == {
        "row": [2, 3],
        "phone": ["+989120000001", "+989120000002"],
        "name": ["Ali, Reza", "Sara"],
    }


def test_sep_hint_through_the_cli(cli, tmp_path: Path) -> None:
    code, out, err = dry_run(cli, write(tmp_path / "l.csv", "sep=;\nmobile;name\n09120000001;Ali\n"))
    assert code == 0, err
    assert out["recipients"] == 1  # type: ignore[index]


# --- 6. nothing from the host: tzdata ------------------------------------------------------------


def test_time_zone_data_comes_from_a_dependency() -> None:
    deps = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
    assert any(d.split(">")[0].split("=")[0].strip() == "tzdata" for d in deps)
    import importlib.resources

    assert importlib.resources.files("tzdata.zoneinfo.Asia").joinpath("Tehran").is_file()


# --- 7. --dry-run counts what the send would -----------------------------------------------------


def test_dry_run_applies_the_suppression_list(cli, tmp_path: Path) -> None:
    path = write(tmp_path / "l.csv", "mobile,name\n09120000001,a\n09120000002,b\n09120000003,c\n")
    assert cli("optouts", "add", "09120000001", "09120000002")[0] == 0
    code, dry, err = dry_run(cli, path)
    assert code == 0, err
    code, real, err = cli("send", str(path), "-p", "ghasedak", "-m", "hello {name}", "--json")
    assert code == 0, err
    assert dry["recipients"] == real["recipients"] == 1  # type: ignore[index]
    assert dry["rejected"] == real["rejected"] == 2  # type: ignore[index]


# --- 8. multi-sheet workbooks --------------------------------------------------------------------


def two_sheets(path: Path) -> Path:
    book = Workbook()
    book.active.title = "Old"
    book.active.append(["mobile"])
    book.active.append(["09120000001"])
    new = book.create_sheet("Customers")
    new.append(["mobile"])
    new.append(["09120000002"])
    new.append(["09120000003"])
    book.save(path)
    return path


def test_sheet_chosen_by_name_or_number_and_the_default_is_said(tmp_path: Path) -> None:
    path = two_sheets(tmp_path / "b.xlsx")
    frame, loader = load(path)
    assert frame["phone"].tolist() == ["+989120000001"] and loader.sheet == "Old"
    assert loader.notice == (
        "b.xlsx has 2 sheets (Old, Customers); read 'Old', the one the workbook opens on; "
        "choose another with --sheet NAME|NUMBER"
    )
    for wanted in ("Customers", "customers", "2", 2):
        frame, loader = load(path, sheet=wanted)
        assert frame["phone"].tolist() == ["+989120000002", "+989120000003"] and loader.notice is None
    assert load_error(path, sheet="Archive") == (
        "b.xlsx has no sheet 'Archive'; its sheets are: 1 Old, 2 Customers; give --sheet NAME or NUMBER"
    )


def test_sheet_option_and_notice_through_the_cli(cli, tmp_path: Path) -> None:
    path = two_sheets(tmp_path / "b.xlsx")
    code, out, err = dry_run(cli, path)
    assert code == 0 and out["recipients"] == 1  # type: ignore[index]
    assert "read 'Old'" in " ".join(err.split())
    code, out, err = dry_run(cli, path, "--sheet", "2")
    assert code == 0 and out["recipients"] == 2 and "sheets" not in err  # type: ignore[index]
    code, _, err = dry_run(cli, path, "--sheet", "Nope")
    assert code == 2 and "has no sheet 'Nope'" in " ".join(err.split())


# --- truncated files -----------------------------------------------------------------------------


@pytest.mark.parametrize("engine", ENGINES)
def test_a_row_cut_off_by_the_end_of_the_file_is_rejected_with_the_reason(
    tmp_path: Path, engine: str
) -> None:
    text = "mobile,name,city\n09120000001,Ali,Tehran\n09120000002,Reza\n09120000003,Sa"
    frame, loader = load(write(tmp_path / "l.csv", text), rejects_path=tmp_path / "r.csv", engine=engine)
    assert frame["phone"].tolist() == ["+989120000001", "+989120000002"]  # a short row inside is padded
    rejects = list(csv.reader((tmp_path / "r.csv").read_text(encoding="utf-8-sig").splitlines()))
    assert rejects[1:] == [
        [
            "4",
            "09120000003",
            "cut off: the file ends inside this row (2 of the header's 3 cells); "
            "save the file again from the spreadsheet",
            "Sa",
            "",
        ]
    ]
    assert (loader.stats.rows, loader.stats.rejected) == (3, 1)


def test_a_complete_last_row_without_a_line_break_is_fine(tmp_path: Path) -> None:
    frame, loader = load(write(tmp_path / "l.csv", "mobile,name\n09120000001,Ali\n09120000002,Reza"))
    assert frame["name"].tolist() == ["Ali", "Reza"] and loader.stats.rejected == 0


def test_a_truncated_workbook_is_refused(tmp_path: Path) -> None:
    path = formatted_book(tmp_path / "f.xlsx")
    path.write_bytes(path.read_bytes()[:-200])
    assert load_error(path).startswith("f.xlsx is not a readable .xlsx workbook (")


def test_commands_run_without_the_hosts_time_zone_data(tmp_path: Path) -> None:
    env = {**os.environ, "PYTHONTZPATH": str(tmp_path), "PYTHONPATH": str(ROOT)}  # no system zoneinfo
    done = subprocess.run(
        [sys.executable, "-m", "dispatcher", "--help"], env=env, capture_output=True, text=True, check=False
    )
    assert done.returncode == 0, done.stderr
    probe = "from campaigns.windows import TEHRAN; import zoneinfo; print(zoneinfo.TZPATH, TEHRAN)"
    done = subprocess.run([sys.executable, "-c", probe], env=env, capture_output=True, text=True, check=False)
    assert done.stdout.split() == [f"('{tmp_path}',)", "Asia/Tehran"], done.stderr


def test_a_workbook_read_twice_gives_the_same_rows(tmp_path: Path) -> None:
    loader = RecipientLoader(two_sheets(tmp_path / "b.xlsx"), sheet="Customers")
    first = pd.concat(list(loader.blocks()))
    pd.testing.assert_frame_equal(first, pd.concat(list(loader.blocks())))
    assert loader.stats.rows == 2


def test_sheet_option_on_a_csv_file_is_refused(tmp_path: Path) -> None:
    path = write(tmp_path / "l.csv", "mobile\n09120000001\n")
    assert load_error(path, sheet="1") == (
        "l.csv is CSV text, which has no sheets; drop --sheet (it is for .xlsx workbooks)"
    )


def test_formula_text_idiom_in_a_workbook_cell(tmp_path: Path) -> None:
    book = Workbook()
    book.active.append(["mobile", "name"])
    book.active.append(["x", "Ali"])
    book.active["A2"].value = '="09120000001"'
    book.active["A2"].data_type = "s"  # the idiom stored as text, as an import tool leaves it
    path = tmp_path / "f.xlsx"
    book.save(path)
    frame, _ = load(path)
    assert frame["phone"].tolist() == ["+989120000001"]


def test_dry_run_applies_the_suppression_list_in_the_distributed_mode(tmp_path: Path) -> None:
    """With a broker the send only stores and publishes (no worker here): its count against the dry run's."""
    broker = os.environ.get("SMSDISPATCH_TEST_REDIS_URL", "redis://127.0.0.1:6379/15")
    running = start(SandboxState(seed=3))
    try:
        env = {
            **os.environ,
            **sandbox_env(running.url),
            "SMSDISPATCH_DATABASE_URL": f"sqlite:///{tmp_path / 'd.db'}",
            "SMSDISPATCH_BROKER_URL": broker,
            "PYTHONPATH": str(ROOT),
        }

        def run(*argv: str) -> dict[str, object]:
            done = subprocess.run(
                [sys.executable, "-m", "dispatcher", *argv],
                env=env,
                capture_output=True,
                text=True,
                timeout=120,
            )
            assert done.returncode == 0, done.stderr
            return json.loads(done.stdout.strip().splitlines()[-1]) if "--json" in argv else {}

        path = write(tmp_path / "l.csv", "mobile,name\n09120000001,a\n09120000002,b\n09120000003,c\n")
        run("optouts", "add", "09120000003")
        dry = run("send", str(path), "-p", "ghasedak", "-m", "hi", "--dry-run", "--json")
        real = run("send", str(path), "-p", "ghasedak", "-m", "hi", "--json")
        assert (dry["recipients"], dry["rejected"]) == (real["recipients"], real["rejected"]) == (2, 1)
        assert dry["campaign"] is None and real["state"] == "running"
    finally:
        running.stop()


def test_damage_found_after_the_first_block_still_stores_nothing(cli, tmp_path: Path) -> None:
    rows = "".join(f"0912{i:07d},n{i}\n" for i in range(60_000))  # more than one block of 50,000
    path = write(tmp_path / "big.csv", "mobile,name\n" + rows + '09350000001,"open\n09350000002,x\n')
    code, _, err = cli("send", str(path), "-p", "ghasedak", "-m", "hi", "--json")
    assert code == 2 and "big.csv line 60002 opens a quote" in " ".join(err.split())
    assert not (tmp_path / "idioms.db").exists()  # no campaign, no recipient, not even a database
