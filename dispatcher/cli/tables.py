"""Tables for people that a terminal of 80 columns shows whole: every column when the table fits (and
always off a terminal, or with `--wide`); on a narrower terminal the columns that matter least are left
out, in a fixed order, until the rest fits, long cells wrap (a word longer than its column is folded,
never cut to `…`), and one line says what was left out and that `--wide` shows it (every column at
its own width: the lines run on past the terminal's edge).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from rich.cells import cell_len
from rich.console import Console
from rich.table import Table
from rich.text import Text

MIN_WRAPPED = 10  # columns a wrapping column keeps at the least (a word longer than that is folded)


@dataclass(frozen=True)
class Column:
    """A column of a people's table. `drop`: 0 = always shown; otherwise, when the table does not fit,
    the column with the highest `drop` is left out first. `wrap`: long cells wrap (names, reasons,
    amounts with words); otherwise a cell stays on one line (numbers, times)."""

    name: str
    drop: int = 0
    wrap: bool = False
    right: bool = False


def _widths(header: str, cells: Sequence[str], wrap: bool) -> int:
    """The columns a column needs at the least: its longest line, or for a wrapping column its longest
    word (between MIN_WRAPPED and its longest line)."""
    lines = [line for text in (header, *cells) for line in text.splitlines() or [""]]
    natural = max((cell_len(line) for line in lines), default=0)
    if not wrap:
        return natural
    longest_word = max((cell_len(w) for line in lines for w in line.split()), default=0)
    return min(natural, max(longest_word, MIN_WRAPPED))


def fit(
    console: Console,
    columns: Sequence[Column],
    rows: Sequence[Sequence[str]],
    *,
    wide: bool = False,
    title: str | None = None,
    totals: Sequence[str] | None = None,
) -> tuple[Table, list[str]]:
    """A Rich table of `rows` (cells in `columns` order) that fits the console's width, and the names of
    the columns left out to make it fit (empty: every column is shown). `totals`: a last row, in bold
    under a rule."""
    shown = list(range(len(columns)))
    if console.is_terminal and not wide:
        every = [*rows, totals] if totals is not None else rows
        need = [_widths(c.name, [r[i] for r in every], c.wrap) for i, c in enumerate(columns)]

        def width(keep: list[int]) -> int:  # cells, one space of padding on each side, and the rules
            return sum(need[i] for i in keep) + 3 * len(keep) + 1

        for i in sorted((i for i, c in enumerate(columns) if c.drop), key=lambda i: -columns[i].drop):
            if width(shown) <= console.width:
                break
            shown.remove(i)
    table = Table(title=title, title_justify="left")
    for i in shown:
        c = columns[i]
        table.add_column(c.name, justify="right" if c.right else "left", no_wrap=not c.wrap, overflow="fold")
    for row in rows:
        table.add_row(*(row[i] for i in shown))
    if totals is not None:
        table.add_section()
        table.add_row(*(totals[i] for i in shown), style="bold")
    hidden = [c.name for i, c in enumerate(columns) if i not in shown]
    return table, hidden


def print_fitted(
    console: Console,
    columns: Sequence[Column],
    rows: Sequence[Sequence[str]],
    *,
    wide: bool = False,
    title: str | None = None,
    totals: Sequence[str] | None = None,
) -> None:
    """`fit`, printed, with the line naming the columns left out; `wide`: every column at its own width,
    however wide the terminal (its lines run on past the edge rather than squeeze a cell to `…`)."""
    table, hidden = fit(console, columns, rows, wide=wide, title=title, totals=totals)
    if wide:
        natural = console.measure(table, options=console.options.update_width(10_000)).maximum
        before = console._width  # noqa: SLF001 - Rich lays out no wider than the console: widen it once
        console.width = max(natural, console.width)
        try:
            console.print(table, crop=False)
        finally:
            console._width = before  # noqa: SLF001
    else:
        console.print(table)
    if hidden:
        note = f"not shown at this width: {', '.join(hidden)} (--wide shows every column)"
        console.print(Text(note, style="dim"))


def folding(*names: str) -> Table:
    """A plain table whose long words fold onto the next line instead of being cut to `…` when the
    terminal is narrow (an error text, a URL, a long name)."""
    table = Table()
    for name in names:
        table.add_column(name, overflow="fold")
    return table


def columns_for(names: Sequence[str], known: Mapping[str, Column]) -> list[Column]:
    """The columns of `names`, from `known` (a name it does not know: wrapping, among the first left out)."""
    return [known.get(n) or Column(n, drop=50, wrap=True) for n in names]
