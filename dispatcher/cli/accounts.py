"""`providers check` and `optouts` (list, --collect, add, remove): accounts rather than one campaign."""

from __future__ import annotations

from typing import Annotated

import typer

from dispatcher import app
from dispatcher.app.shapes import suppressions_json
from dispatcher.cli.common import AsJson, cli, cli_settings, emit, err, out, plural
from dispatcher.cli.tables import folding

providers_app = typer.Typer(no_args_is_help=True, help="Provider accounts.")
cli.add_typer(providers_app, name="providers")
optouts_app = typer.Typer(help="The suppression list: numbers that opted out (the loader rejects them).")
cli.add_typer(optouts_app, name="optouts")


@providers_app.command("check")
def providers_check(as_json: AsJson = False) -> None:
    """Credentials and balance of every configured provider."""
    rows = app.check_providers(cli_settings())
    if as_json:
        emit([r.as_json() for r in rows])
    else:
        table = folding("provider", "configured", "ok", "balance", "detail")
        for r in rows:
            table.add_row(
                r.provider,
                "yes" if r.configured else "no",
                "unknown" if not r.checked else ("yes" if r.ok else "no"),
                f"{r.balance:,.0f} {r.unit}" if r.balance is not None else "",
                r.detail
                + (
                    f" (circuit {r.circuit}: {r.circuit_reason})" if r.circuit not in (None, "closed") else ""
                ),
            )
        out.print(table)
    if any(r.configured and not r.ok for r in rows):
        raise typer.Exit(1)


@optouts_app.callback(invoke_without_command=True)
def optouts(
    ctx: typer.Context,
    collect: Annotated[
        bool, typer.Option("--collect", help="read the providers' inboxes for opt-outs now")
    ] = False,
    as_json: AsJson = False,
) -> None:
    """List the suppression list; --collect first reads the inboxes for opt-out replies."""
    if ctx.invoked_subcommand is not None:
        return
    settings = cli_settings()
    found = app.suppressions(settings, collect=collect)
    if collect and not found.collected_from:
        err.print(f"no provider with an inbox is configured ({', '.join(found.inboxes)}): nothing to collect")
    if as_json:
        emit(suppressions_json(found))
        return
    if found.added is not None:
        err.print(f"{plural(found.added, 'new opt-out')} collected")
    table = folding("phone", "reason", "since")
    for s in found.rows:
        table.add_row(s.phone, s.reason, settings.show_time(s.created_at))
    out.print(table)
    out.print(plural(len(found.rows), "suppressed number"))


@optouts_app.command("add")
def optouts_add(
    phones: Annotated[list[str], typer.Argument(metavar="PHONE...")],
    reason: Annotated[str, typer.Option("--reason", help="why (kept with the number)")] = "added by hand",
) -> None:
    """Suppress numbers by hand (an opt-out received by phone, e-mail, in the shop)."""
    done = app.suppress(cli_settings(), phones, reason)
    out.print(f"{done.changed} added, {done.unchanged} already suppressed")


@optouts_app.command("remove")
def optouts_remove(phones: Annotated[list[str], typer.Argument(metavar="PHONE...")]) -> None:
    """Take numbers off the suppression list (they asked to hear from you again)."""
    done = app.unsuppress(cli_settings(), phones)
    out.print(
        f"{done.changed} removed, {done.unchanged} {'was' if done.unchanged == 1 else 'were'} not on the list"
    )
