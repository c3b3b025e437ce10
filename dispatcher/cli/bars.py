"""Progress on the terminal: two Rich bars (sending, delivery).

One rendering for every caller: `smsdispatch watch ID`, `send --wait` in distributed mode (the
workers send; `dispatcher.app.following.follow` reads the database and feeds the bars), and the
embedded runner's `send`/`run` (which feeds the same bars from its progress callback). What the numbers mean is decided in
`campaigns.progress`; this module only draws them.
"""

from __future__ import annotations

from types import TracebackType

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TaskID, TextColumn, TimeElapsedColumn
from rich.table import Column

from campaigns.progress import CampaignProgress
from campaigns.states import CampaignState


def info_line(p: CampaignProgress) -> str:
    """Rate and ETA, or what the campaign waits for, in one short line (the delivery bar says what
    awaits a report)."""
    if p.finished:
        return f"{p.state}; {p.cancelled} cancelled" if p.cancelled else p.state
    if p.waiting is not None:
        return p.waiting.detail
    if p.pending == 0 and p.state == CampaignState.RUNNING:
        return "all sent"
    rate = f"{p.rate:.1f}/s" if p.rate is not None else "-/s"
    return f"{rate}, ETA {p.eta_text}"


def bar_width(columns: int) -> int:
    """The bar's length on a terminal of `columns`: 40 from 130 columns, down to 10 from 100 (the
    counts, the time and the words beside it keep their room; the words wrap under themselves)."""
    return max(10, min(40, columns - 90))


class ProgressBars:
    """`sending`: recipients a provider accepted, of all (campaigns.progress's `sent`: never the
    cancelled, refused or failed before sending); `delivery` (optional): sent recipients with a final
    report, of those sent, with how many await one and when the next check is due. Readable at 80
    columns: the label, the counts and the time are never cut; the words after them wrap."""

    def __init__(self, console: Console, *, delivery: bool = True) -> None:
        self.delivery = delivery
        whole = Column(no_wrap=True)
        self.bars = Progress(
            TextColumn("{task.description:<8}", table_column=whole),
            BarColumn(bar_width=bar_width(console.width), table_column=whole),
            MofNCompleteColumn(table_column=whole),
            TimeElapsedColumn(table_column=whole),
            TextColumn("{task.fields[info]}", table_column=Column(overflow="fold")),
            console=console,
            transient=False,
        )
        self._tasks: dict[str, TaskID] = {}

    def __enter__(self) -> ProgressBars:
        self.bars.__enter__()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.bars.__exit__(exc_type, exc, tb)

    def show(self, p: CampaignProgress) -> None:
        rows = [("sending", p.sent, p.total, info_line(p))]
        if self.delivery:
            info = f"{p.awaiting} awaiting a report{p.next_check_text}" if p.awaiting > 0 else ""
            rows.append(("delivery", p.sent - p.awaiting, p.sent, info))
        for name, done, total, info in rows:
            if name not in self._tasks:
                self._tasks[name] = self.bars.add_task(name, total=total, info="")
            self.bars.update(self._tasks[name], total=total, completed=done, info=info)
