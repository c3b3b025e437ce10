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

from campaigns.progress import CampaignProgress


def info_line(p: CampaignProgress) -> str:
    """Rate and ETA, or what the campaign waits for, in one short line."""
    if p.finished:
        return f"{p.state}; {p.cancelled} cancelled" if p.cancelled else p.state
    if p.waiting is not None:
        return p.waiting.detail
    rate = f"{p.rate:.1f}/s" if p.rate is not None else "-/s"
    return f"{rate}, ETA {p.eta_text}"


class ProgressBars:
    """`sending`: recipients a provider accepted, of all (campaigns.progress's `sent`: never the
    cancelled, refused or failed before sending); `delivery` (optional): sent recipients with a final
    report, of those sent, with how many await one and when the next check is due."""

    def __init__(self, console: Console, *, delivery: bool = True) -> None:
        self.delivery = delivery
        self.bars = Progress(
            TextColumn("{task.description:<9}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            TextColumn("{task.fields[info]}"),
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
