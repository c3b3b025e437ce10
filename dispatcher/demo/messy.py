"""Write an N-row messy recipients CSV, the way real Persian spreadsheets arrive.

The one generator of test data: the demo (`smsdispatch demo`), the tests and the benchmarks all use it,
so the spellings the loader is measured on are the ones it is tested and shown on. It lives in
`dispatcher` (the top package: the demo imports it, and tests and bench/ can) rather than in `campaigns`,
which holds campaign logic only; nothing in campaigns or workers imports it.

Usage: python -m dispatcher.demo.messy N PATH [--cp1256] [--seed S]   (`write_xlsx`: the same rows as .xlsx)

Columns: name (Persian), mobile (every spelling people use), city (Persian), amount.
About 5% of the rows are invalid and about 3% repeat an earlier number in another spelling.
With --cp1256 the file is Windows-1256, as Excel saves "CSV" on a Persian Windows: that code page
has no Persian digits and no Farsi yeh, so those are written as ASCII digits and Arabic yeh, as Excel does.
"""

from __future__ import annotations

import argparse
import csv
import random
from collections.abc import Callable
from pathlib import Path

# Real mobile prefixes (MCI 91x/990-994, Irancell 90x/93x, Rightel 92x), enough variety for the bench.
PREFIXES = (
    "912",
    "913",
    "919",
    "990",
    "991",
    "901",
    "902",
    "903",
    "930",
    "933",
    "935",
    "936",
    "937",
    "938",
    "939",
    "920",
    "921",
    "922",
)
FIRST = (
    "علی",
    "محمد",
    "زهرا",
    "فاطمه",
    "حسین",
    "مریم",
    "رضا",
    "سارا",
    "نگار",
    "امیر",
    "کیوان",
    "یاسمین",
    "پریسا",
    "مهدی",
)
LAST = ("احمدی", "محمدی", "حسینی", "رضایی", "کریمی", "موسوی", "جعفری", "کاظمی", "یزدانی", "قاسمی", "صادقی")
CITIES = ("تهران", "مشهد", "اصفهان", "شیراز", "تبریز", "کرج", "قم", "اهواز", "کرمانشاه", "رشت", "یزد", "کیش")

PERSIAN = str.maketrans("0123456789", "۰۱۲۳۴۵۶۷۸۹")
ARABIC = str.maketrans("0123456789", "٠١٢٣٤٥٦٧٨٩")
# What Excel's Windows-1256 export does to characters the code page lacks.
CP1256_FALLBACK = str.maketrans(
    {"ی": "ي", **{chr(0x06F0 + i): str(i) for i in range(10)}, **{chr(0x0660 + i): str(i) for i in range(10)}}
)

# National number n = "9XXXXXXXXX" -> one spelling.
SPELLINGS: tuple[Callable[[str], str], ...] = (
    lambda n: "0" + n,
    lambda n: "0" + n,
    lambda n: "0" + n,
    lambda n: n,
    lambda n: "+98" + n,
    lambda n: "0098" + n,
    lambda n: "98" + n,
    lambda n: ("0" + n).translate(PERSIAN),
    lambda n: ("0" + n).translate(ARABIC),
    lambda n: f"0{n[:3]} {n[3:6]} {n[6:]}",
    lambda n: f"0{n[:3]}-{n[3:6]}-{n[6:]}",
    lambda n: f"0{n[:3]}.{n[3:6]}.{n[6:]}",
    lambda n: f"(0{n[:3]}) {n[3:6]} {n[6:]}",
    lambda n: "'0" + n,
    lambda n: n + ".0",
    lambda n: f"+98 ({n[:3]}) {n[3:6]}-{n[6:]}",
    lambda n: f"0 {n[:3]} {n[3:6]} {n[6:]}",
    lambda n: "\u200f0" + n + "\u200e",
    lambda n: f" +98 {n[:3]} {n[3:]} ".translate(PERSIAN),
)

INVALID: tuple[Callable[[random.Random], str], ...] = (
    lambda r: "",
    lambda r: "0912" + str(r.randrange(10**5, 10**6)),  # too short
    lambda r: "0912" + str(r.randrange(10**8, 10**9)),  # too long
    lambda r: "021" + str(r.randrange(10**7, 10**8)),  # Tehran landline
    lambda r: "+1415" + str(r.randrange(10**6, 10**7)),  # not Iranian
    lambda r: "0960" + str(r.randrange(10**6, 10**7)),  # unassigned 9xx prefix
    lambda r: "ندارد",
    lambda r: "9.12123E+09",  # Excel's scientific notation: digits lost
    lambda r: "abc" + str(r.randrange(1000)),
)


def national(r: random.Random) -> str:
    """A random valid national mobile number, 9XXXXXXXXX."""
    return r.choice(PREFIXES) + f"{r.randrange(10**7):07d}"


def rows(n: int, seed: int) -> list[tuple[str, str, str, str]]:
    """`n` rows of (name, mobile, city, amount): ~5 % invalid numbers, ~3 % repeats spelled another way."""
    r = random.Random(seed)
    made: list[str] = []
    out: list[tuple[str, str, str, str]] = []
    for _ in range(n):
        roll = r.random()
        if roll < 0.05:
            phone = r.choice(INVALID)(r)
        elif roll < 0.08 and made:
            phone = r.choice(SPELLINGS)(r.choice(made))  # the same person again, spelled differently
        else:
            nat = national(r)
            made.append(nat)
            phone = r.choice(SPELLINGS)(nat)
        name = f"{r.choice(FIRST)} {r.choice(LAST)}"
        out.append((name, phone, r.choice(CITIES), str(r.randrange(1, 500) * 1000)))
    return out


def write(path: Path, n: int, seed: int = 1405, *, cp1256: bool = False) -> Path:
    """Write `n` rows (plus the header) to `path`; the same seed gives the same file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    data = rows(n, seed)
    encoding = "cp1256" if cp1256 else "utf-8"
    with path.open("w", encoding=encoding, newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(("name", "mobile", "city", "amount"))
        if cp1256:
            writer.writerows(tuple(cell.translate(CP1256_FALLBACK) for cell in row) for row in data)
        else:
            writer.writerows(data)
    return path


def write_xlsx(path: Path, n: int, seed: int = 1405) -> Path:
    """The same `n` rows as `write`, as an Excel workbook (one sheet, every cell text as typed), the way a
    marketer saves the list from Excel."""
    from openpyxl import Workbook

    path.parent.mkdir(parents=True, exist_ok=True)
    book = Workbook(write_only=True)
    sheet = book.create_sheet("مشتریان")
    sheet.append(["name", "mobile", "city", "amount"])
    for row in rows(n, seed):
        sheet.append(list(row))
    book.save(path)
    return path


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("n", type=int, help="number of data rows")
    parser.add_argument("path", type=Path)
    parser.add_argument("--cp1256", action="store_true", help="write Windows-1256 (Excel's Persian CSV)")
    parser.add_argument("--seed", type=int, default=1405)
    args = parser.parse_args(argv)
    write(args.path, args.n, args.seed, cp1256=args.cp1256)
    print(f"wrote {args.n} rows to {args.path}")


if __name__ == "__main__":
    main()
