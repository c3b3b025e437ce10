"""How a person sees the preflight summary (Rich), and the confirmation question.

Rial with thousands separators; operator counts carry the estimate note; previews show the spreadsheet
row. `send` prints `render_summary(summary)` on stderr (stdout stays for `--json`), then `confirm`.
"""

from __future__ import annotations

from rich.console import Console, Group, RenderableType
from rich.markup import escape
from rich.table import Table
from rich.text import Text

from campaigns.operators import PERSIAN_NAMES
from campaigns.preflight import Blacklisted, PreflightSummary
from campaigns.when import Start

__all__ = ["blacklist_line", "confirm", "render_start", "render_summary"]


def _n(value: float) -> str:
    return f"{value:,.0f}"


def render_summary(s: PreflightSummary) -> RenderableType:
    """The summary as Rich renderables: counts, operators, parts, cost and credit, previews, findings."""
    head = Table.grid(padding=(0, 2))
    head.add_column(style="bold")
    head.add_column()
    head.add_row("provider", escape(f"{s.provider} (line {s.sender or 'default'})"))
    rejected = ", ".join(f"{reason} {_n(n)}" for reason, n in s.rejected.items()) or "none"
    head.add_row("recipients", escape(f"{_n(s.recipients)}; rejected: {rejected}"))
    ops = ", ".join(f"{op.value} ({PERSIAN_NAMES[op]}) {_n(n)}" for op, n in s.operators.items() if n)
    head.add_row("operators", f"{ops or 'none'} [dim]({escape(s.operators_note)})[/dim]")
    hist = ", ".join(
        f"{parts} part{'s' if parts != 1 else ''}: {_n(n)}" for parts, n in s.parts_histogram.items()
    )
    head.add_row("SMS parts", f"{_n(s.total_parts)} in all, {s.alphabet or '-'}; {hist or 'none'}")
    if s.cost is not None:
        by = ", ".join(f"{op.value} {_n(v)}" for op, v in s.cost.by_operator.items() if v)
        head.add_row("cost", escape(f"≈ {_n(s.cost.estimate)} rial ({by}; prices: {s.cost.source})"))
    else:
        head.add_row("cost", f"[yellow]unknown[/yellow]: {escape(s.cost_hint or '')}")
    if s.credit is not None:
        unit = "SMS" if s.credit.unit.lower() == "sms" else s.credit.unit
        verdict = {True: "[green]enough[/green]", False: "[red]NOT enough[/red]", None: "cannot compare"}[
            s.credit.enough
        ]
        head.add_row("credit", f"{_n(s.credit.balance)} {unit}: {verdict}")
    elif s.credit_note:  # e.g. a dry run offline: "not checked: ghasedak unreachable"
        head.add_row("credit", f"[yellow]{escape(s.credit_note)}[/yellow]")
    else:
        head.add_row("credit", "not reported by this provider (credentials not proven before sending)")
    if s.blacklisted is not None:  # the operator blacklist memory (README, "Preflight")
        head.add_row("blacklisted", escape(blacklist_line(s.blacklisted)))
    previews = Table("row", "parts", "text", title="previews", title_justify="left", show_lines=True)
    for p in s.previews:
        previews.add_row(f"{p.row}\n[dim]{escape(p.why)}[/dim]", str(p.parts), Text(p.text))
    lines: list[RenderableType] = [head, previews]
    for f in sorted(s.findings, key=lambda f: not f.refuses):
        label = "[red]REFUSED[/red]" if f.refuses else "[yellow]warning[/yellow]"
        line = Text.from_markup(f"{label} {f.code.value}: ")
        line.append(f"{f.message} ({f.override})")
        lines.append(line)
    return Group(*lines)


def blacklist_line(b: Blacklisted) -> str:
    """How many recipients the operator blacklist memory knows, which campaigns learnt it, and what
    skipping them saves (or costs, when `--include-blacklisted` keeps them)."""
    by = ", ".join(
        f"campaign {c}" + (f" ({_n(n)})" if len(b.by_campaign) > 1 else "") for c, n in b.by_campaign.items()
    )
    known = (
        f"{_n(b.count)} recipient{'s' if b.count != 1 else ''} a delivery report marked blacklisted on {by} "
        f"(promotional, within {b.memory_days:g} days)"
    )
    money = f"≈ {_n(b.saves)} rial" if b.saves is not None else "cost not known"
    if b.skipped:
        return f"{known}: skipped, to the rejects file; saves {money} ({_n(b.parts)} SMS parts); --include-blacklisted sends to them"
    return f"{known}: sent anyway (--include-blacklisted), {money} ({_n(b.parts)} SMS parts)"


def render_start(start: Start) -> RenderableType:
    """When it goes out: the start (both calendars, weekday, time with its offset) and the send window
    (open then, or when the first message goes), as `campaigns.when.Start` words them."""
    grid = Table.grid(padding=(0, 2))
    grid.add_column(style="bold")
    grid.add_column()
    grid.add_row("start", Text(start.start_text()))
    grid.add_row("window", Text(start.window_text()))
    return grid


def confirm(console: Console, *, assume_yes: bool, interactive: bool, starts: str | None = None) -> bool:
    """Ask "Send this campaign? It starts … [y/N]" in a terminal (`starts`: `Start.question()`); `--yes`
    or no terminal (scripts, CI) answers yes without asking."""
    if assume_yes or not interactive:
        return True
    asked = f"Send this campaign? It {starts}. [y/N] " if starts else "Send this campaign? [y/N] "
    try:
        answer = console.input(Text(asked))  # a Text: no markup, no highlighting
    except EOFError:  # Ctrl-D: no answer is no
        return False
    return answer.strip().lower() in ("y", "yes", "بله", "ب")
