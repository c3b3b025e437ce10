"""Per-recipient reports (CSV or Excel), streamed from the store.

CSV columns (scripts depend on them: add new ones only at the end): phone, state,
provider_message_id, provider_status, error, sent_at, delivered_at, then the CSV's own columns.
The Excel report is for people: a Summary sheet and a Recipients sheet (`dispatcher.reports.xlsx`).
Every cell is made safe for spreadsheets (OWASP "CSV injection"), whichever
column it is in, since the error text and provider codes come from outside as much as the CSV's own
columns do:

- CSV: a text starting with `=`, `+`, `-`, `@`, a tab or a line break gets a leading apostrophe, which
  spreadsheets read as "this is text", and so does every part of it after a `,`, `;`, tab or line break
  that would start a formula once a spreadsheet splits the line there (`x;=1+1` -> `x;'=1+1`: Excel
  in a Persian or European locale splits on `;`). A cell that is a plain signed number
  (`+989121234567`, `-1`, `+1.5`) is left as it is: it cannot call anything, and the E.164 phone column
  stays exact.
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
_PLAIN_NUMBER = re.compile(r"[+-]?\d+(?:\.\d+)?")
# A field a spreadsheet may start at: the cell's start, or after a separator some locale or reader splits
# on (`,`; `;` in Persian and most European locales; a tab; a line break), past spaces and quotes.
_RISKY = re.compile(r"(?:^|[;,\t\r\n])[ \"\u00a0]*[=+\-@]|^[\t\r\n]")
_FIELD = re.compile(r"(^|[;,\t\r\n])([ \"\u00a0]*[=+\-@][^;,\t\r\n]*)")


def spreadsheet_safe(value: Any) -> Any:
    """A CSV cell no spreadsheet will run as a formula, whichever separator it splits on (OWASP "CSV
    injection"): a cell that starts with `=`, `+`, `-`, `@` (after spaces or quotes), a tab or a line
    break gets a leading apostrophe, unless the whole cell is a plain number (`+989121234567`, `-1`),
    and so does every part of it after a `,`, `;`, tab or line break that starts so: `x;=1+1` ->
    `x;'=1+1`, `\\n=1` -> `'\\n'=1`, `12,-5` -> `12,'-5` (a part is a plain number only up to the next
    separator of one kind, so only a whole cell is let through). Anything else is returned as it is."""
    if not isinstance(value, str) or not _RISKY.search(value) or _PLAIN_NUMBER.fullmatch(value):
        return value
    safe = _FIELD.sub(lambda m: f"{m.group(1)}'{m.group(2)}", value)
    return "'" + safe if safe.startswith(("\t", "\r", "\n")) else safe


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
