"""The Excel report: a "Summary" sheet first, then "Recipients", streamed (write-only openpyxl).

Summary: the campaign (name, text, sender line, provider), the file's rows rejected (with the rejects
file), created/started/finished in Tehran time with the offset and the Jalali date, the counts by outcome
for all recipients and by operator (an estimate by prefix, `campaigns.operators`; a provider's refusals
are "refused by the provider"; the delivered share of the recipients not cancelled before sending), SMS
parts (of the recipients not cancelled, and the plan's when a cancel kept some from being sent) and cost:
planned and spent so far (rial), and reported by the provider in its unit, or "unit not documented"
(`dispatcher.reports.money`; "not known" until recorded).
The "all" row's counts are `status`'s: recipients by state from `Store.campaign`, sent from
`campaigns.progress.progress_of`.

Recipients: one row per recipient, right-to-left when the campaign's text is Persian; the phone as
people write it (`0912…`) and in E.164; the state with its meaning in English and Persian; the
provider's code with its meaning (`dispatcher.reports.provider_codes`); times in Tehran and Jalali; then the
CSV's own columns. Every recipient cell is a string cell (never a formula: OWASP CSV injection).
Header frozen, autofilter on, column widths fitted to the header and the first `WIDTH_SAMPLE` rows.
"""

from __future__ import annotations

import json
import re
from collections import Counter
from collections.abc import Iterator
from dataclasses import replace
from datetime import datetime
from itertools import chain, islice
from pathlib import Path
from typing import Any

from openpyxl import Workbook
from openpyxl.cell import WriteOnlyCell
from openpyxl.styles import Font
from openpyxl.utils import get_column_letter

from campaigns.operators import ESTIMATE_NOTE, PERSIAN_NAMES, Operator, operator_of
from campaigns.progress import progress_of
from campaigns.records import CampaignCosts
from campaigns.store import CampaignView, Store
from dispatcher.humane import NOT_KNOWN, is_persian, jalali, local_phone, tehran
from dispatcher.reports.money import UNIT_NOT_DOCUMENTED, reported_unit
from dispatcher.reports.outcomes import OUTCOMES, describe
from dispatcher.reports.provider_codes import code_meaning
from dispatcher.reports.summary import sendable, summary_of

WIDTH_SAMPLE = 2000  # rows read ahead to fit the column widths
MAX_WIDTH = 60
RECIPIENT_COLUMNS = [
    "phone",
    "phone (E.164)",
    "operator (estimate)",
    "state",
    "state (English)",
    "وضعیت",
    "provider code",
    "code meaning",
    "provider message id",
    "error",
    "sent (Tehran)",
    "sent (Jalali)",
    "delivered (Tehran)",
    "delivered (Jalali)",
]
# A state's column named for what it means where its name alone misleads: `rejected` recipients are the
# ones a provider refused, not the rows of the file the loader rejected (those are `rows rejected`).
STATE_COLUMN = {"rejected": "refused by the provider"}
COUNT_COLUMNS = [
    "recipients",
    "sent",
    "delivered",
    "delivered %",
    *[STATE_COLUMN.get(str(s), str(s)) for s in OUTCOMES[1:]],
]
_NOT_IN_XML = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f]")
_BOLD = Font(bold=True)


def _text(ws: Any, value: Any, bold: bool = False) -> WriteOnlyCell:
    """A string cell (never a formula, whatever the text starts with)."""
    cell = WriteOnlyCell(ws, _NOT_IN_XML.sub("", "" if value is None else str(value)))
    cell.data_type = "s"
    if bold:
        cell.font = _BOLD
    return cell


def _number(ws: Any, value: int | float, fmt: str = "#,##0") -> WriteOnlyCell:
    cell = WriteOnlyCell(ws, value)
    cell.number_format = fmt
    return cell


def recipient_row(row: dict[str, Any], provider: str, columns: list[str]) -> list[str]:
    """One "Recipients" row (RECIPIENT_COLUMNS then the CSV's own `columns`) from a `recipients_rows` row;
    `provider`: the campaign's, for a row whose chunk failover did not move."""
    fields = json.loads(row["fields"] or "{}")
    english, persian = describe(row["state"])
    code = row["provider_status"] or ""
    return [
        local_phone(row["phone"]),
        row["phone"],
        str(operator_of(row["phone"])),
        row["state"],
        english,
        persian,
        code,
        code_meaning(row.get("provider") or provider, code, row["state"]),  # the provider that sent it
        row["provider_message_id"] or "",
        row["error"] or "",
        tehran(row["sent_at"]),
        jalali(row["sent_at"]),
        tehran(row["delivered_at"]),
        jalali(row["delivered_at"]),
        *[fields.get(c, "") for c in columns],
    ]


def _counts_row(
    view: CampaignView, counts: Counter[str], now: datetime, sent: int | None = None
) -> list[int | float]:
    """recipients, sent, delivered, delivered share, then the other outcomes (COUNT_COLUMNS). `sent`:
    given for a part of the campaign (an operator: its recipients a provider accepted, `sent_at` set);
    for the whole campaign `status`'s own definition. The delivered share is of the recipients not
    cancelled before sending (a cancel's unsent recipients are not undelivered), as in `summary`."""
    total = sum(counts.values())
    if sent is None:
        sent = progress_of(replace(view, counts=dict(counts), recipients=total), None, None, now).sent
    delivered = counts.get(OUTCOMES[0], 0)
    share_of = sendable(total, counts)
    return [
        total,
        sent,
        delivered,
        delivered / share_of if share_of else 0.0,
        *[counts.get(s, 0) for s in OUTCOMES[1:]],
    ]


def _write_summary(
    ws: Any,
    view: CampaignView,
    by_operator: dict[Operator, Counter[str]],
    sent_by_operator: dict[Operator, int],
    now: datetime,
    by_provider: dict[str, dict[str, int]] | None = None,
    costs: CampaignCosts | None = None,
) -> None:
    summary = summary_of(view, now, costs)
    ws.column_dimensions["A"].width = 22
    for letter in "BCDEFGHIJKLM":
        ws.column_dimensions[letter].width = 14
    ws.column_dimensions["B"].width = 30
    ws.append([_text(ws, f"Campaign {view.id}: {view.name}", bold=True)])
    senders = sorted(by_provider) if by_provider else [view.provider]
    moved = senders != [view.provider]  # failover sent some or all through another provider of the route
    for label, value in (
        ("name", view.name),
        ("text", view.message),
        ("sender line", f"{view.sender} ({view.provider})" if moved else view.sender),
        ("provider", f"{', '.join(senders)} (failover from {view.provider})" if moved else view.provider),
        ("state", view.state + (f" ({view.state_reason})" if view.state_reason else "")),
    ):
        ws.append([_text(ws, label, bold=True), _text(ws, value)])
    ws.append(  # the file's rows the loader (or the preflight) refused, each with its reason in that file
        [_text(ws, "rows rejected", bold=True), _number(ws, view.rejected), _text(ws, view.rejects_file)]
    )
    ws.append([_text(ws, ""), _text(ws, "Tehran time", bold=True), _text(ws, "Jalali (Tehran)", bold=True)])
    for label, at in (
        ("created", view.created_at),
        ("started", view.started_at),
        ("finished", view.finished_at),
    ):
        ws.append([_text(ws, label, bold=True), _text(ws, tehran(at)), _text(ws, jalali(at))])
    ws.append([])
    ws.append([_text(ws, "recipients by outcome", bold=True)])
    ws.append([_text(ws, "operator", bold=True), *[_text(ws, c, bold=True) for c in COUNT_COLUMNS]])
    rows = [("all", Counter(view.counts), None)] + [
        (f"{op} ({PERSIAN_NAMES[op]})", by_operator[op], sent_by_operator.get(op, 0)) for op in Operator
    ]
    for label, counts, sent in rows:
        values = _counts_row(view, counts, now, sent)
        ws.append(
            [_text(ws, label, bold=label == "all")]
            + [_number(ws, v, "0.0%") if i == 3 else _number(ws, v) for i, v in enumerate(values)]
        )
    ws.append([_text(ws, "operators are " + ESTIMATE_NOTE)])
    if by_provider and len(by_provider) > 1:  # a failover route sent through several
        ws.append([])
        ws.append([_text(ws, "recipients by provider", bold=True)])
        ws.append([_text(ws, "provider", bold=True), *[_text(ws, c, bold=True) for c in COUNT_COLUMNS]])
        for name, counts in sorted(by_provider.items()):
            part = replace(view, counts=dict(counts), recipients=sum(counts.values()), reported_failed=0)
            values = _counts_row(view, Counter(counts), now, progress_of(part, None, None, now).sent)
            ws.append(
                [_text(ws, name)]
                + [_number(ws, v, "0.0%") if i == 3 else _number(ws, v) for i, v in enumerate(values)]
            )
    ws.append([])
    parts = [_text(ws, "SMS parts", bold=True), _number(ws, summary.parts)]
    if view.cancelled_parts:  # the plan's parts a cancel kept from being sent are not counted
        parts.append(_text(ws, f"of {view.parts:,} planned; {view.cancelled_parts:,} not sent (cancelled)"))
    ws.append(parts)
    units = {reported_unit(p) for p in (by_provider or {view.provider: {}})}
    unit = units.pop() if len(units) == 1 else None
    for label, amount in (
        ("cost planned (rial, estimate)", summary.cost_estimated),
        ("cost spent so far (rial, estimate for the recipients accepted)", summary.cost_spent),
        (f"cost reported by the provider ({unit or UNIT_NOT_DOCUMENTED})", summary.cost_actual),
    ):
        ws.append(
            [_text(ws, label, bold=True), _number(ws, amount) if amount is not None else _text(ws, NOT_KNOWN)]
        )


def _fitted_widths(rows: list[list[str]], header: list[str]) -> list[float]:
    widths = [len(h) for h in header]
    for row in rows:
        for i, value in enumerate(row):
            longest = max((len(line) for line in value.splitlines()), default=0)
            widths[i] = max(widths[i], longest)
    return [min(w + 2, MAX_WIDTH) for w in widths]


def write_xlsx(
    store: Store, view: CampaignView, columns: list[str], out: Path, now: datetime
) -> Counter[str]:
    """Write the two-sheet report of `view` to `out`; return the recipients counted per state."""
    wb = Workbook(write_only=True)
    summary_ws = wb.create_sheet("Summary")
    ws = wb.create_sheet("Recipients")
    header = RECIPIENT_COLUMNS + columns
    rows: Iterator[list[str]] = (
        recipient_row(r, view.provider, columns) for r in store.recipients_rows(view.id)
    )
    head = list(islice(rows, WIDTH_SAMPLE))
    for i, width in enumerate(_fitted_widths(head, header), start=1):
        ws.column_dimensions[get_column_letter(i)].width = width
    ws.sheet_view.rightToLeft = is_persian(view.message)
    ws.freeze_panes = "A2"
    ws.append([_text(ws, h, bold=True) for h in header])
    counts: Counter[str] = Counter()
    by_operator: dict[Operator, Counter[str]] = {op: Counter() for op in Operator}
    sent_by_operator: Counter[Operator] = Counter()
    sent_at = header.index("sent (Tehran)")
    n = 1
    for row in chain(head, rows):
        counts[row[3]] += 1
        by_operator[Operator(row[2])][row[3]] += 1
        if row[sent_at]:  # accepted by a provider
            sent_by_operator[Operator(row[2])] += 1
        ws.append([_text(ws, v) for v in row])
        n += 1
    ws.auto_filter.ref = f"A1:{get_column_letter(len(header))}{n}"
    by_provider = store.by_provider(view.id)
    _write_summary(summary_ws, view, by_operator, sent_by_operator, now, by_provider, store.costs(view.id))
    wb.save(out)
    return counts
