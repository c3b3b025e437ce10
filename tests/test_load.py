"""The recipients loader, on real files written to tmp_path."""

from __future__ import annotations

import codecs
import csv
import io
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from openpyxl import Workbook

from campaigns.load import LoadError, LoadStats, RecipientLoader, find_phone_column
from dispatcher.demo.messy import write as write_messy_csv

ENGINES = ["pyarrow", "pandas"]

HEADER = ["نام", "mobile", "شهر"]
ROWS = [
    ["علی رضایی", "09121234567", "تهران"],
    ["سارا", "+98 935 123 4567", "مشهد"],
    ["بد", "12345", "قم"],
    ["علی دوباره", "۰۹۱۲ ۱۲۳ ۴۵۶۷", "تهران"],
    ["خالی", "", "کرج"],
    ["سوم", "0098 990 111 2222", "یزد"],
]


def write_csv(
    path: Path, rows: list[list[str]], encoding: str = "utf-8", header: list[str] = HEADER, sep: str = ","
) -> Path:
    buffer = io.StringIO()
    csv.writer(buffer, delimiter=sep, lineterminator="\r\n").writerows([header, *rows])
    path.write_bytes(buffer.getvalue().encode(encoding))
    return path


def load(path: Path, **kwargs: object) -> tuple[pd.DataFrame, RecipientLoader]:
    loader = RecipientLoader(path, **kwargs)  # type: ignore[arg-type]
    blocks = list(loader.blocks())
    frame = pd.concat(blocks, ignore_index=True) if blocks else pd.DataFrame()
    return frame, loader


def read_rejects(path: Path) -> list[list[str]]:
    raw = path.read_bytes()
    assert raw.startswith(codecs.BOM_UTF8), "Excel needs the BOM to read Persian"
    return list(csv.reader(io.StringIO(raw[3:].decode("utf-8"))))


# --- encodings and formats ------------------------------------------------------------------------


@pytest.mark.parametrize("engine", ENGINES)
@pytest.mark.parametrize(
    ("encoding", "detected"), [("utf-8", "utf-8"), ("utf-8-sig", "utf-8-sig"), ("cp1256", "cp1256")]
)
def test_encodings_are_detected_and_rows_loaded(
    tmp_path: Path, encoding: str, detected: str, engine: str
) -> None:
    rows = ROWS
    if encoding == "cp1256":  # what Excel writes: the code page has no Farsi yeh and no Persian digits
        excel = str.maketrans({"ی": "ي", **{chr(0x06F0 + i): str(i) for i in range(10)}})
        rows = [[cell.translate(excel) for cell in row] for row in ROWS]
    header = ["نام", "mobile", "شهر"]
    path = write_csv(tmp_path / "r.csv", rows, encoding, header=header)
    frame, loader = load(path, rejects_path=tmp_path / "rejects.csv", engine=engine)
    assert loader.encoding == detected
    assert loader.columns == header
    assert loader.phone_column == "mobile"
    assert frame.columns.tolist() == loader.block_columns == ["row", "phone", "نام", "شهر"]
    assert frame["phone"].tolist() == ["+989121234567", "+989351234567", "+989901112222"]
    assert frame["row"].tolist() == [2, 3, 7]
    assert frame["نام"].tolist() == [rows[0][0], rows[1][0], rows[5][0]]  # Persian text decoded intact
    assert frame["row"].dtype == np.int64
    assert loader.stats == LoadStats(
        rows=6,
        valid=3,
        rejected=3,
        duplicates=1,
        suppressed=0,
        encoding=detected,
        phone_column="mobile",
        columns=header,
    )


def test_cp1256_after_a_long_ascii_start_is_still_detected(tmp_path: Path) -> None:
    filler = [["name", f"0912{i:07d}", "city"] for i in range(60_000)]  # ~1.5 MB of ASCII first
    path = write_csv(tmp_path / "r.csv", [*filler, ["علي", "09351234567", "تهران"]], "cp1256")
    frame, loader = load(path)
    assert loader.encoding == "cp1256"
    assert frame["نام"].iloc[-1] == "علي"


def test_xlsx_streamed_with_numbers_and_row_numbers(tmp_path: Path) -> None:
    book = Workbook()
    sheet = book.active
    sheet.append(["نام", "Mobile Number", "مبلغ", None])
    sheet.append(["علی", 9121234567, 1000.0])  # Excel keeps phone numbers as numbers
    sheet.append(["سارا", "'09351234567", 2500.5])
    sheet.append([])  # a blank row is skipped (README, "The input file"), but keeps its row number
    sheet.append(["دو", 9121234567.0, 3])
    sheet.append(["ناقص"])
    path = tmp_path / "r.xlsx"
    book.save(path)
    frame, loader = load(path, rejects_path=tmp_path / "rejects.csv", block_rows=2)
    assert loader.encoding == "xlsx"
    assert loader.columns == ["نام", "Mobile Number", "مبلغ"]
    assert frame.to_dict("list") == {
        "row": [2, 3],
        "phone": ["+989121234567", "+989351234567"],
        "نام": ["علی", "سارا"],
        "مبلغ": ["1000", "2500.5"],
    }
    assert read_rejects(tmp_path / "rejects.csv")[1:] == [
        ["5", "9121234567", "duplicate of row 2", "دو", "3"],
        ["6", "", "empty", "ناقص", ""],
    ]


def test_xlsx_under_another_name_is_read_by_content(tmp_path: Path) -> None:
    book = Workbook()
    book.active.append(["phone"])
    book.active.append(["09121234567"])
    path = tmp_path / "export.csv"
    book.save(path)
    frame, loader = load(path)
    assert loader.encoding == "xlsx"
    assert frame["phone"].tolist() == ["+989121234567"]


# --- columns -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("columns", "found"),
    [
        (["name", "Mobile"], "Mobile"),
        (["name", " PHONE "], " PHONE "),
        (["name", "شماره موبایل"], "شماره موبایل"),
        (["name", "تلفن همراه"], "تلفن همراه"),
        (["name", "شماره"], "شماره"),
        (["name", "موبايل"], "موبايل"),  # Arabic yeh
        (["Cell Phone", "name"], "Cell Phone"),
        (["MSISDN"], "MSISDN"),
        (["tel", "name"], "tel"),
        (["phone_number"], "phone_number"),
        (["Customer Mobile", "id"], "Customer Mobile"),
        (["number", "phone", "mobile"], "mobile"),  # the better name wins over the earlier column
        (["شماره حساب", "تلفن"], "تلفن"),
    ],
)
def test_phone_column_found_by_name(columns: list[str], found: str) -> None:
    assert find_phone_column(columns, None, "f.csv") == found


def test_column_option_exact_or_loosely_spelled(tmp_path: Path) -> None:
    path = write_csv(
        tmp_path / "r.csv", [["x", "09121234567", "09351234567"]], header=["name", "mobile", "Other Phone"]
    )
    assert RecipientLoader(path, column="Other Phone").phone_column == "Other Phone"
    assert RecipientLoader(path, column="other phone").phone_column == "Other Phone"
    frame, _ = load(path, column="other phone")
    assert frame["phone"].tolist() == ["+989351234567"]
    assert frame.columns.tolist() == ["row", "phone", "name", "mobile"]


def test_other_column_called_phone_is_kept_under_another_name(tmp_path: Path) -> None:
    path = write_csv(tmp_path / "r.csv", [["02188776655", "09121234567"]], header=["phone", "mobile"])
    frame, loader = load(path, column="mobile")
    assert loader.columns == ["phone.1", "mobile"]
    assert frame.to_dict("list") == {"row": [2], "phone": ["+989121234567"], "phone.1": ["02188776655"]}


def test_semicolon_separated_file(tmp_path: Path) -> None:
    path = write_csv(tmp_path / "r.csv", [["a", "09121234567"]], header=["name", "mobile"], sep=";")
    frame, _ = load(path)
    assert frame.to_dict("list") == {"row": [2], "phone": ["+989121234567"], "name": ["a"]}


# --- dedupe, suppression, rejects ----------------------------------------------------------------


@pytest.mark.parametrize("engine", ENGINES)
@pytest.mark.parametrize("block_rows", [1, 2, 3, 1000])
def test_dedupe_across_block_boundaries(tmp_path: Path, block_rows: int, engine: str) -> None:
    numbers = [
        "09121111111",
        "09122222222",
        "+989121111111",
        "09123333333",
        "۰۹۱۲۲۲۲۲۲۲۲",
        "9121111111",
        "09124444444",
    ]
    path = write_csv(tmp_path / "r.csv", [[f"n{i}", n, "c"] for i, n in enumerate(numbers)])
    frame, loader = load(path, rejects_path=tmp_path / "rejects.csv", block_rows=block_rows, engine=engine)
    assert frame["row"].tolist() == [2, 3, 5, 8]
    assert frame["phone"].tolist() == ["+989121111111", "+989122222222", "+989123333333", "+989124444444"]
    assert [r[:3] for r in read_rejects(tmp_path / "rejects.csv")] == [
        ["row", "value", "reason"],
        ["4", "+989121111111", "duplicate of row 2"],
        ["6", "۰۹۱۲۲۲۲۲۲۲۲", "duplicate of row 3"],
        ["7", "9121111111", "duplicate of row 2"],
    ]
    assert (loader.stats.valid, loader.stats.duplicates, loader.stats.rejected) == (4, 3, 3)


def test_dedupe_matches_pandas_on_many_random_numbers(tmp_path: Path) -> None:
    rng = np.random.default_rng(7)
    numbers = [f"0912{n:07d}" for n in rng.integers(0, 3000, size=5000)]
    path = write_csv(tmp_path / "r.csv", [["x", n, "y"] for n in numbers])
    frame, loader = load(path, rejects_path=tmp_path / "rejects.csv", block_rows=777)
    series = pd.Series(numbers)
    expected_rows = (np.flatnonzero(~series.duplicated().to_numpy()) + 2).tolist()
    assert frame["row"].tolist() == expected_rows
    first = {n: i + 2 for i, n in reversed(list(enumerate(numbers)))}
    rejects = read_rejects(tmp_path / "rejects.csv")[1:]
    assert all(r[2] == f"duplicate of row {first[r[1]]}" for r in rejects)
    assert len(rejects) == loader.stats.duplicates == len(numbers) - len(expected_rows)


def test_rejects_file_has_every_refused_row_with_its_columns(tmp_path: Path) -> None:
    rows = [
        ["a", "09121234567", "x"],
        ["b", "abc", "y"],
        ["c", "09351234567", "z"],
        ["d", "+14155552671", "w"],
        ["e", "0912 123 4567", "v"],
        ["f", "09901112222", "u"],
    ]
    path = write_csv(tmp_path / "r.csv", rows, header=["name", "Mobile", "note"])
    frame, loader = load(path, rejects_path=tmp_path / "rejects.csv", suppressed=["+989351234567", "junk"])
    assert frame["row"].tolist() == [2, 7]
    assert read_rejects(tmp_path / "rejects.csv") == [
        ["row", "value", "reason", "name", "note"],
        ["3", "abc", "not a number", "b", "y"],
        ["4", "09351234567", "opted out", "c", "z"],
        ["5", "+14155552671", "not an Iranian number", "d", "w"],
        ["6", "0912 123 4567", "duplicate of row 2", "e", "v"],
    ]
    assert loader.stats == LoadStats(6, 2, 4, 1, 1, "utf-8", "Mobile", ["name", "Mobile", "note"])


def test_no_rejects_file_without_a_path(tmp_path: Path) -> None:
    path = write_csv(tmp_path / "r.csv", ROWS)
    frame, loader = load(path)
    assert len(frame) == 3 and loader.stats.rejected == 3


def test_blocks_hold_text_without_nan(tmp_path: Path) -> None:
    path = write_csv(tmp_path / "r.csv", [["", "09121234567", ""]])
    frame, _ = load(path)
    assert frame.loc[0, "نام"] == "" and frame.loc[0, "شهر"] == ""
    assert frame["phone"].dtype == "str"


def test_header_only_file_is_one_line_naming_the_header(tmp_path: Path) -> None:
    path = write_csv(tmp_path / "r.csv", [])
    path.write_bytes(path.read_bytes() + b"\r\n,,\r\n")  # blank rows are not rows
    assert load_error(path, rejects_path=tmp_path / "rejects.csv") == (
        "r.csv has no rows under the header (row 1: نام, mobile, شهر); put one recipient per row under it "
        "and try again"
    )


def test_engines_agree_on_the_bench_file(tmp_path: Path) -> None:
    path = write_messy_csv(tmp_path / "messy.csv", 3000, seed=5)
    results = {}
    for engine in ENGINES:
        frame, loader = load(path, rejects_path=tmp_path / f"{engine}.csv", block_rows=700, engine=engine)
        results[engine] = (frame, loader.stats, read_rejects(tmp_path / f"{engine}.csv"))
    (a, stats_a, rejects_a), (b, stats_b, rejects_b) = results.values()
    pd.testing.assert_frame_equal(a, b)
    assert stats_a == stats_b and rejects_a == rejects_b
    assert 0.03 < (stats_a.rejected - stats_a.duplicates) / stats_a.rows < 0.07  # ~5% invalid
    assert 0.015 < stats_a.duplicates / stats_a.rows < 0.045  # ~3% duplicates
    assert a["phone"].str.fullmatch(r"\+989[0-9]{9}").all() and a["phone"].is_unique


# --- row numbers in awkward files ----------------------------------------------------------------


@pytest.mark.parametrize("engine", ENGINES)
def test_blank_lines_and_quoted_newlines_keep_spreadsheet_row_numbers(tmp_path: Path, engine: str) -> None:
    text = 'name,"mobile\nnumber",city\n"two\nlines",09121234567,a\n\n"x",09351234567,b\r\n'
    path = tmp_path / "r.csv"
    path.write_text(text, encoding="utf-8")
    frame, loader = load(path, rejects_path=tmp_path / "rejects.csv", engine=engine)
    assert loader.phone_column == "mobile\nnumber"
    assert frame["row"].tolist() == [2, 4]
    assert frame["name"].tolist() == ["two\nlines", "x"]
    assert read_rejects(tmp_path / "rejects.csv") == [
        ["row", "value", "reason", "name", "city"]
    ]  # blank: skipped
    assert loader.stats.rows == 2


def test_short_rows_are_padded(tmp_path: Path) -> None:
    path = tmp_path / "r.csv"
    path.write_text("name,mobile,city\na,09121234567,x\nb,09351234567\nc,09901112222,z\n", encoding="utf-8")
    frame, _ = load(path, block_rows=1)
    assert frame.to_dict("list") == {
        "row": [2, 3, 4],
        "phone": ["+989121234567", "+989351234567", "+989901112222"],
        "name": ["a", "b", "c"],
        "city": ["x", "", "z"],
    }


# --- bad input: one line, naming the problem and the fix ------------------------------------------


def load_error(path: Path, **kwargs: object) -> str:
    with pytest.raises(LoadError) as err:
        loader = RecipientLoader(path, **kwargs)  # type: ignore[arg-type]
        list(loader.blocks())
    message = str(err.value)
    assert "\n" not in message
    assert isinstance(err.value, ValueError)
    return message


@pytest.mark.parametrize("content", [b"", codecs.BOM_UTF8, b"\r\n\r\n  \n"])
def test_empty_file(tmp_path: Path, content: bytes) -> None:
    path = tmp_path / "list.csv"
    path.write_bytes(content)
    assert (
        load_error(path)
        == "list.csv is empty; give a file with a header row (e.g. mobile) and one recipient per row"
    )


def test_no_phone_column_lists_the_columns_and_the_option(tmp_path: Path) -> None:
    path = write_csv(tmp_path / "list.csv", [["a", "b", "c"]], header=["name", "city", "amount"])
    assert (
        load_error(path)
        == "list.csv has no phone column among: name, city, amount; name it with --column COLUMN"
    )


def test_unknown_column_option(tmp_path: Path) -> None:
    path = write_csv(tmp_path / "list.csv", ROWS)
    assert (
        load_error(path, column="cell") == "list.csv has no column 'cell'; its columns are: نام, mobile, شهر"
    )


def test_file_without_header_row(tmp_path: Path) -> None:
    path = tmp_path / "list.csv"
    path.write_text("09121234567\n09351234567\n", encoding="utf-8")
    assert load_error(path) == (
        "list.csv has no header row (row 1 holds the number 09121234567); insert a first row with column names, e.g. mobile"
    )


def test_binary_file(tmp_path: Path) -> None:
    path = tmp_path / "photo.csv"
    path.write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + bytes(range(256)) * 4)
    assert (
        load_error(path)
        == "photo.csv is not a CSV text file (it holds binary data); give a .csv or .xlsx file"
    )


def test_old_xls_workbook(tmp_path: Path) -> None:
    path = tmp_path / "list.xls"
    path.write_bytes(b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + b"\x00" * 512)
    assert (
        load_error(path)
        == "list.xls is an old Excel .xls workbook; save it as .xlsx or 'CSV UTF-8' and try again"
    )


def test_utf16_text(tmp_path: Path) -> None:
    path = write_csv(tmp_path / "list.csv", ROWS, "utf-16")
    assert load_error(path) == "list.csv is UTF-16 text; save it as 'CSV UTF-8' and try again"


def test_undecodable_encoding(tmp_path: Path) -> None:
    rows = [["山田太郎", "09121234567", "東京"], ["鈴木花子", "09351234567", "大阪"]] * 50
    path = write_csv(tmp_path / "list.csv", rows, "shift_jis", header=["名前", "mobile", "都市"])
    message = load_error(path)
    assert message.startswith("list.csv is neither UTF-8 nor Windows-1256 text")
    assert message.endswith("; save it as 'CSV UTF-8' and try again")


def test_broken_utf8_further_down(tmp_path: Path) -> None:
    good = "name,mobile\n" + "علی,09121234567\n" * 70_000  # more than the 1 MiB sniffed
    path = tmp_path / "list.csv"
    path.write_bytes(good.encode("utf-8") + "علي,09351234567\n".encode("cp1256"))
    message = load_error(path)
    assert message.startswith("list.csv has text that is not valid utf-8 further down (")
    assert message.endswith("); save it as 'CSV UTF-8' and try again")


def test_too_many_cells_in_a_row(tmp_path: Path) -> None:
    path = tmp_path / "list.csv"
    path.write_text("name,mobile\na,09121234567\nb,0912,123\n", encoding="utf-8")
    assert load_error(path) == (
        "list.csv: Expected 2 fields in line 3, saw 3 but the header has 2; "
        "quote values that contain ',', or save the file again from Excel"
    )


@pytest.mark.parametrize("engine", ENGINES)
def test_every_row_longer_than_the_header(tmp_path: Path, engine: str) -> None:
    path = tmp_path / "list.csv"
    path.write_text("name,mobile\na,09121234567,x\nb,09351234567,y\n", encoding="utf-8")
    assert load_error(path, engine=engine) == (
        "list.csv: rows have more cells than the header's 2; "
        "quote values that contain ',', or save the file again from Excel"
    )


def test_not_a_workbook(tmp_path: Path) -> None:
    path = tmp_path / "list.xlsx"
    path.write_bytes(b"PK\x03\x04" + b"\x00" * 100)
    message = load_error(path)
    assert message.startswith("list.xlsx is not a readable .xlsx workbook (")
    assert message.endswith("); save it again from Excel")


def test_missing_file(tmp_path: Path) -> None:
    assert load_error(tmp_path / "nope.csv") == f"{tmp_path / 'nope.csv'} does not exist; check the file name"


def test_rejects_file_shows_the_reason_a_number_was_suppressed(tmp_path: Path) -> None:
    rows = [["a", "09121234567"], ["b", "۰۹۳۵ ۱۲۳ ۴۵۶۷"], ["c", "09901112222"], ["d", "09121112233"]]
    path = write_csv(tmp_path / "r.csv", rows, header=["name", "Mobile"])
    suppressed = {
        "+989351234567": "opted out: replied 'لغو ۱۱' via ghasedak",
        "+989901112222": "called the shop",
        "+989121112233": "",
        "junk": "ignored",
    }
    frame, loader = load(path, rejects_path=tmp_path / "rejects.csv", suppressed=suppressed)
    assert frame["row"].tolist() == [2]
    assert loader.stats.suppressed == 3
    assert read_rejects(tmp_path / "rejects.csv")[1:] == [
        ["3", "۰۹۳۵ ۱۲۳ ۴۵۶۷", "opted out: replied 'لغو ۱۱' via ghasedak", "b"],
        ["4", "09901112222", "opted out: called the shop", "c"],
        ["5", "09121112233", "opted out", "d"],
    ]
