"""What every command module shares: the Typer app, the consoles, settings, and the ways to print.

A command module registers its commands on `cli` (or a sub-app it adds to `cli`), parses its
arguments, calls one use case in `dispatcher.app`, and prints with the
helpers here. It decides nothing itself.
"""

from __future__ import annotations

import json
from typing import Annotated, Any

import typer
from rich.console import Console, ConsoleDimensions
from rich.table import Table
from rich.text import Text

from campaigns.states import FINAL_CAMPAIGN, CampaignState, RecipientState
from campaigns.store import Store
from campaigns.store.sending import resume_command
from dispatcher import __version__
from dispatcher.app import BadInput, notices
from dispatcher.config import AppSettings, load_config

UNWRAPPED = 1_000_000  # "columns" of a pipe or a file: nothing Rich lays out there is ever wrapped


class PeopleConsole(Console):
    """A Rich console for people that lays out to the terminal's width (`COLUMNS` when set), and never
    wraps, cuts or pads what goes to a pipe or a file: a script reading `send`'s closing line gets it on
    one line whatever the length of a path. Whether it is a terminal is asked at each print, so pytest's
    capture and a redirected stream are seen as what they are (`TTY_COMPATIBLE=1` makes one a terminal)."""

    @property
    def size(self) -> ConsoleDimensions:
        size = super().size
        return size if self.is_terminal else ConsoleDimensions(UNWRAPPED, size.height)

    @size.setter
    def size(self, new_size: tuple[int, int]) -> None:
        self._width, self._height = new_size


out = PeopleConsole()
err = PeopleConsole(stderr=True)


def _show_version(value: bool) -> None:
    if value:
        print(f"smsdispatch {__version__}")
        raise typer.Exit()


cli = typer.Typer(
    add_completion=False,
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    help="Bulk SMS campaigns for Iranian providers.",
)


@cli.callback()
def _root(
    version: Annotated[
        bool,
        typer.Option("--version", is_eager=True, callback=_show_version, help="print the version and exit"),
    ] = False,
) -> None:
    """Bulk SMS campaigns for Iranian providers."""


CampaignId = Annotated[int, typer.Argument(metavar="ID", help="the campaign's number (smsdispatch list)")]
AsJson = Annotated[bool, typer.Option("--json", help="print JSON for machines")]
Wide = Annotated[bool, typer.Option("--wide", help="every column, however wide the terminal")]


def cli_settings() -> AppSettings:
    """The settings from the environment, after `.env`/`smsdispatch.toml` filled in what it leaves unset."""
    return AppSettings.from_env(load_config())


def emit(data: dict[str, Any] | list[Any]) -> None:
    """One JSON document on stdout (times as ISO-8601)."""
    print(json.dumps(data, ensure_ascii=False, default=str))


def print_labelled(console: Console, label: str, text: str, width: int = 8) -> None:
    """`label` (padded to `width`) then `text`: in a terminal the text wraps at words under itself (a
    hanging indent), never cut mid-word by the terminal; to a pipe or a file it stays one line."""
    grid = Table.grid(padding=(0, 1))
    grid.add_column(width=width, no_wrap=True)
    grid.add_column()
    grid.add_row(Text(label), Text(text))
    console.print(grid)


def plural(n: int, noun: str, nouns: str | None = None) -> str:
    """`1 chunk`, `2 chunks`, `0 chunks`, `1,850 recipients` (thousands separated)."""
    return f"{n:,} {noun if n == 1 else (nouns or noun + 's')}"


def resume_hint(campaign_id: int, why: str) -> str:
    """The pause and the command that goes on (`resume_command`: a cap pause needs the cap raised)."""
    if why.startswith("paused by the user"):
        return f"campaign {campaign_id} paused by the user. To go on: {resume_command(campaign_id, why)}"
    command = resume_command(campaign_id, why)
    lead = "To go on, raise it" if command.endswith(("RIAL", " N")) else "Fix the cause, then"
    return f"campaign {campaign_id} paused: {why}. {lead}: {command}"


def followed_exit(store: Store, campaign_id: int) -> None:
    """After --wait or watch: exit 0 only when the campaign completed with every recipient's outcome known.
    Paused, cancelled or failed (or still running): the reason on stderr, and exit 1. Completed with
    recipients held `unknown`: how many, what it means and what to do on stderr (`notices.held_unknown`),
    and exit 1 (README, "Exit codes")."""
    view = store.campaign(campaign_id)
    assert view is not None  # followed, so it exists
    unknown = notices.held_unknown(campaign_id, view.counts.get(RecipientState.UNKNOWN, 0), view.recipients)
    if view.state == CampaignState.COMPLETED:
        if unknown is None:
            return
        err.print(unknown)
        raise typer.Exit(1)
    why = (view.state_reason or "no reason recorded").rstrip(".")
    if view.state == CampaignState.PAUSED:
        err.print(resume_hint(campaign_id, why))
    else:
        err.print(f"campaign {campaign_id} {view.state}: {why}")
    if unknown is not None and view.state in FINAL_CAMPAIGN:
        err.print(unknown)
    raise typer.Exit(1)


def positive(value: float, option: str) -> float:
    if value <= 0:
        raise BadInput(f"{option} is a number of seconds above 0")
    return value
