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
from campaigns.preflight import PreflightSummary

__all__ = ["confirm", "render_summary"]


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
    else:
        head.add_row("credit", "not reported by this provider (credentials not proven before sending)")
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


def confirm(console: Console, *, assume_yes: bool, interactive: bool) -> bool:
    """Ask "Send? [y/N]" in a terminal; `--yes` or no terminal (scripts, CI) answers yes without asking."""
    if assume_yes or not interactive:
        return True
    try:
        answer = console.input(Text("Send this campaign? [y/N] "))  # a Text: no markup, no highlighting
    except EOFError:  # Ctrl-D: no answer is no
        return False
    return answer.strip().lower() in ("y", "yes", "بله", "ب")
