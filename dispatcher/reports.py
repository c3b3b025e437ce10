"""Per-recipient reports (CSV or Excel), streamed from the store.

Columns: phone, state, provider_message_id, provider_status, error, sent_at, delivered_at, then the
CSV's own columns. Text that a spreadsheet would run as a formula (=, +, -, @ first) is made inert
with a leading apostrophe; our own E.164 phone column is digits after '+' and left as it is.
"""

from __future__ import annotations

import csv
import json
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from campaigns.store import Store

BASE_COLUMNS = [
    "phone",
    "state",
    "provider_message_id",
    "provider_status",
    "error",
    "sent_at",
    "delivered_at",
]
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def spreadsheet_safe(value: Any) -> Any:
    if isinstance(value, str) and value.startswith(_FORMULA_START):
        return "'" + value
    return value


def report_rows(store: Store, campaign_id: int, columns: list[str]) -> Iterator[list[Any]]:
    for r in store.recipients_rows(campaign_id):
        fields = json.loads(r["fields"] or "{}")
        base = [
            r["phone"],
            r["state"],
            r["provider_message_id"] or "",
            r["provider_status"] or "",
            spreadsheet_safe(r["error"] or ""),
            r["sent_at"].isoformat() if r["sent_at"] else "",
            r["delivered_at"].isoformat() if r["delivered_at"] else "",
        ]
        yield base + [spreadsheet_safe(fields.get(c, "")) for c in columns]


def write_report(store: Store, campaign_id: int, out: Path) -> Counter[str]:
    view = store.campaign(campaign_id)
    if view is None:
        raise KeyError(campaign_id)
    columns = [c for c in view.columns if c not in BASE_COLUMNS]
    header = BASE_COLUMNS + columns
    counts: Counter[str] = Counter()
    if out.suffix.lower() == ".xlsx":
        from openpyxl import Workbook

        wb = Workbook(write_only=True)
        ws = wb.create_sheet("recipients")
        ws.append(header)
        for row in report_rows(store, campaign_id, columns):
            counts[row[1]] += 1
            ws.append(row)
        wb.save(out)
        return counts
    with out.open("w", newline="", encoding="utf-8-sig") as fh:  # BOM: Excel then reads Persian right
        writer = csv.writer(fh)
        writer.writerow(header)
        for row in report_rows(store, campaign_id, columns):
            counts[row[1]] += 1
            writer.writerow(row)
    return counts
