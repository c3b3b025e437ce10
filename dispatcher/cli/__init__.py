"""The `smsdispatch` command (shared/DESIGN.md, "The user's interface": a contract).

Exit codes: 0 ok; 2 bad input or usage (a key the provider rejects included), with one plain line on
stderr; 3 refused by a preflight check (`app.Refused`: one line naming the check and its override,
nothing stored; README, "Preflight: before a rial is spent"); 1 anything else (a provider that cannot be
reached: one line naming its URL and setting; "no" to send's question; `--wait` and `watch` when the
campaign did not complete, or completed with recipients held `unknown`); 130 Ctrl-C.
The commands live in modules by group (`campaign`: send, run; `views`: status, watch, list, report, summary;
`control`: pause, resume, cancel; `accounts`: providers, optouts; `ops`: serve, poll, worker, beat,
sandbox, demo; `contacts`: push, groups, list; `people`: users, keys, purge). They only parse and print over `dispatcher.app`; a
new command is a function in the module of its group (or a new module imported below).
"""

from __future__ import annotations

import os
import sys

import typer

from dispatcher.app import BAD_INPUT, ProviderUnreachable, Refused
from dispatcher.cli import accounts, campaign, contacts, control, ops, people, views, web  # noqa: F401 - registers the commands
from dispatcher.cli.common import cli

app = cli  # the Typer application, under its old name


def _usage_line(exc: Exception) -> str:
    """A usage error as one plain line: no exception class name, the command's --help named."""
    text = " ".join(exc.format_message().split())  # type: ignore[attr-defined]
    ctx = getattr(exc, "ctx", None)
    if ctx is not None and getattr(ctx, "command_path", ""):
        text += f" (see: {ctx.command_path} --help)"
    return f"error: {text}"


class CurrentStderr:
    """`sys.stderr` as it is at each write, not as it was at start: while the progress bars are live
    on a terminal, Rich puts its own stream there, which prints a log line above the bars instead of
    into them."""

    def write(self, text: str) -> int:
        return sys.stderr.write(text)

    def flush(self) -> None:
        sys.stderr.flush()


def _quiet_repeats() -> None:
    """Warnings and errors of the libraries below go to stderr once, with a count when they repeat
    (dispatcher.engine.eventlog): a provider down for minutes is one line, not one a round. `serve` sets its
    own, at INFO; Celery's worker and beat set theirs."""
    import logging

    from dispatcher.engine.eventlog import DedupHandler
    from workers.logs import configure

    root = logging.getLogger()
    if not root.handlers:  # JSON lines instead with SMSDISPATCH_LOG_FORMAT=json; redacted either way
        handler = DedupHandler(CurrentStderr())  # type: ignore[arg-type]
        handler.setLevel(logging.WARNING)
        configure("cli", handler, level=logging.WARNING)


def main(argv: list[str] | None = None) -> None:
    """Run the command line; always ends with SystemExit carrying the exit code."""
    _quiet_repeats()
    try:
        rv = cli(args=argv, standalone_mode=False, prog_name="smsdispatch")
    except typer.Exit as exc:
        sys.exit(exc.exit_code)
    except typer.Abort:
        sys.exit(1)
    except BAD_INPUT as exc:
        print(f"error: {exc}", file=sys.stderr)
        sys.exit(2)
    except Refused as exc:
        print(f"error: {exc}", file=sys.stderr)
        sys.exit(3)
    except ProviderUnreachable as exc:  # one plain line: the URL, what happened, the setting
        print(f"error: {exc}", file=sys.stderr)
        sys.exit(1)
    except KeyboardInterrupt:
        sys.exit(130)
    except Exception as exc:  # noqa: BLE001 - one line, not a traceback; SMSDISPATCH_DEBUG=1 shows it
        # Typer's usage errors (click's, or its vendored copy's) carry exit_code 2 and format_message.
        if getattr(exc, "exit_code", None) == 2 and hasattr(exc, "format_message"):
            if type(exc).__name__ == "NoArgsIsHelpError":  # the help is already on stdout
                pass
            else:
                print(_usage_line(exc), file=sys.stderr)
            sys.exit(2)
        if os.environ.get("SMSDISPATCH_DEBUG"):
            raise
        print(f"error: {type(exc).__name__}: {exc}", file=sys.stderr)
        sys.exit(1)
    sys.exit(rv if isinstance(rv, int) else 0)
