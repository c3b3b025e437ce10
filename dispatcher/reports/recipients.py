"""Per-recipient reports (CSV or Excel), streamed from the store.

CSV columns (scripts depend on them: add new ones only at the end): phone, state,
provider_message_id, provider_status, error, sent_at, delivered_at, then the CSV's own columns.
The Excel report is for people: a Summary sheet and a Recipients sheet (`dispatcher.reports.xlsx`).
Every cell is made safe for spreadsheets (OWASP "CSV injection"), whichever
column it is in, since the error text and provider codes come from outside as much as the CSV's own
columns do:

- CSV: a text starting with `=`, `+`, `-`, `@`, tab or carriage return gets a leading apostrophe,
  which spreadsheets read as "this is text". A plain signed number (`+989121234567`, `-1`, `+1.5`)
  is left as it is: it cannot call anything, and the E.164 phone column stays exact.
- Excel: every recipient value is written as a string cell (`t="inlineStr"`), which a spreadsheet never
  evaluates, so the text is kept exactly, apostrophe-free; characters XML cannot hold are dropped.
"""

from __future__ import annotations

import csv
import json
import re
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from campaigns.clock import utcnow
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
_PLAIN_NUMBER = re.compile(r"[+-]?\d+(?:\.\d+)?")


def spreadsheet_safe(value: Any) -> Any:
    """A CSV cell a spreadsheet will not run as a formula (a leading apostrophe when needed)."""
    if isinstance(value, str) and value.startswith(_FORMULA_START) and not _PLAIN_NUMBER.fullmatch(value):
        return "'" + value
    return value


def report_rows(store: Store, campaign_id: int, columns: list[str]) -> Iterator[list[Any]]:
    """The report's rows as they are stored (not yet made safe: that depends on the file type)."""
    for r in store.recipients_rows(campaign_id):
        fields = json.loads(r["fields"] or "{}")
        base = [
            r["phone"],
            r["state"],
            r["provider_message_id"] or "",
            r["provider_status"] or "",
            r["error"] or "",
            r["sent_at"].isoformat() if r["sent_at"] else "",
            r["delivered_at"].isoformat() if r["delivered_at"] else "",
        ]
        yield base + [fields.get(c, "") for c in columns]


def write_report(store: Store, campaign_id: int, out: Path) -> Counter[str]:
    """Write the report of a campaign to `out` (.csv, else .xlsx: `dispatcher.reports.xlsx`).

    Returns recipients per state. Raises KeyError(campaign_id) when there is no such campaign.
    """
    view = store.campaign(campaign_id)
    if view is None:
        raise KeyError(campaign_id)
    columns = [c for c in view.columns if c not in BASE_COLUMNS]
    header = BASE_COLUMNS + columns
    counts: Counter[str] = Counter()
    if out.suffix.lower() == ".xlsx":
        from dispatcher.reports.xlsx import write_xlsx

        return write_xlsx(store, view, columns, out, utcnow())
    with out.open("w", newline="", encoding="utf-8-sig") as fh:  # BOM: Excel then reads Persian right
        writer = csv.writer(fh)
        writer.writerow([spreadsheet_safe(h) for h in header])
        for row in report_rows(store, campaign_id, columns):
            counts[row[1]] += 1
            writer.writerow([spreadsheet_safe(v) for v in row])
    return counts
