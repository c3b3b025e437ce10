"""`contacts push`, `contacts groups`, `contacts list`: recipient lists in provider phonebooks.

Parses and prints over `dispatcher.app.contacts`; the progress bar is on stderr.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

from dispatcher import app
from dispatcher.cli.common import AsJson, cli, cli_settings, emit, err, out, plural
from dispatcher.cli.tables import folding
from workers.providers import phones

contacts_app = typer.Typer(no_args_is_help=True, help="Recipient lists in the providers' phonebooks.")
cli.add_typer(contacts_app, name="contacts")

Provider = Annotated[str, typer.Option("--provider", "-p", help="amoot or ghasedak")]


@contacts_app.command("push")
def contacts_push(
    file: Annotated[Path, typer.Argument(help="CSV or .xlsx recipients file, loaded as send loads it")],
    provider: Provider,
    group: Annotated[
        str | None, typer.Option("--group", help="Ghasedak: the group (made if missing)")
    ] = None,
    label: Annotated[
        list[str] | None, typer.Option("--label", help="Amoot: a label (repeat for more)")
    ] = None,
    mapping: Annotated[
        list[str] | None,
        typer.Option("--map", help="field=column, e.g. FName=name (repeat); else by column name"),
    ] = None,
    column: Annotated[str | None, typer.Option("--column", help="the phone column")] = None,
    sheet: Annotated[str | None, typer.Option("--sheet", help="a workbook's sheet (name or number)")] = None,
    header_row: Annotated[
        int | None,
        typer.Option(
            "--header-row", metavar="N", help="the header's row (default: the first with a phone column)"
        ),
    ] = None,
    rejects: Annotated[
        Path | None, typer.Option("--rejects", help="rejects file (default FILE.contacts.rejects.csv)")
    ] = None,
    retry_unknown: Annotated[
        bool, typer.Option("--retry-unknown", help="add again numbers held unknown (may add them twice)")
    ] = False,
    as_json: AsJson = False,
) -> None:
    """Add a file's numbers to a phonebook; a rerun continues where a stopped one ended."""
    request = app.PushRequest(
        file=file,
        provider=provider,
        group=group,
        labels=tuple(label or ()),
        mapping=tuple(mapping or ()),
        column=column,
        sheet=sheet,
        header_row=header_row,
        rejects=rejects,
        retry_unknown=retry_unknown,
    )
    bar = Progress(
        TextColumn("pushing"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn(), console=err
    )
    task = bar.add_task("push", total=None)

    def started(total: int) -> None:  # the bar appears once the file is loaded and the ledger settled
        bar.update(task, total=total)
        bar.start()

    try:
        summary = app.push_contacts(
            cli_settings(), request, on_total=started, on_done=lambda n: bar.advance(task, n)
        )
    except KeyboardInterrupt:
        bar.stop()
        done = int(bar.tasks[0].completed)
        err.print(f"interrupted after {plural(done, 'number')}: run the same command again to continue")
        raise
    finally:
        bar.stop()
    if as_json:
        emit(summary.as_json())
    else:
        c = summary.counts
        for notice in summary.notices:
            err.print(notice, soft_wrap=True)
        mapped = ", ".join(f"{k}={v}" for k, v in summary.mapped.items()) or "none"
        out.print(f"{summary.provider} {summary.book}: fields {mapped}")
        before = summary.loaded - summary.new
        out.print(
            f"{plural(summary.loaded, 'number')} loaded ({summary.rejected} rejected): {summary.new} new"
            + (f", {before:,} known from an earlier run" if before else "")
            + f"; this run added {summary.added_now:,}"
            + (f", refused {summary.failed_now:,}" if summary.failed_now else "")
            + (f", found {summary.found:,} already in the listing" if summary.found else "")
        )
        out.print(
            f"all runs into this {'group' if summary.book.startswith('group') else 'phonebook'}: "
            f"{c['added']:,} added, {c['failed']:,} refused, {c['unknown']:,} unknown, {c['pending']:,} pending"
        )
        if c["failed"] or summary.rejected:
            out.print(f"rejects: {summary.rejects_file}")
    if not summary.complete:
        counts = summary.counts
        left = counts["pending"] + counts["pushing"]
        if left:
            err.print(
                f"not finished: {plural(left, 'number')} left; run the same command again", soft_wrap=True
            )
        if counts["unknown"]:
            err.print(
                f"{plural(counts['unknown'], 'number')} unknown: an add was interrupted and {summary.provider} "
                "has no listing to check it; --retry-unknown adds them again (perhaps twice)",
                soft_wrap=True,
            )
        raise typer.Exit(1)


@contacts_app.command("groups")
def contacts_groups(provider: Provider, as_json: AsJson = False) -> None:
    """The provider's contact groups."""
    groups = app.contact_groups(cli_settings(), provider)
    if as_json:
        emit([{"id": g.id, "name": g.name, "parent": g.parent} for g in groups])
        return
    table = folding("id", "name", "parent")
    for g in groups:
        table.add_row(g.id, g.name, g.parent)
    out.print(table)
    out.print(plural(len(groups), "group"))


@contacts_app.command("list")
def contacts_list(
    provider: Provider,
    group: Annotated[str, typer.Option("--group", help="the group's name")],
    as_json: AsJson = False,
) -> None:
    """The numbers of one contact group."""
    found, rows = app.contact_list(cli_settings(), provider, group)
    if as_json:
        emit(
            {
                "group": found.id,
                "name": found.name,
                "contacts": [{"phone": r.phone, **r.fields} for r in rows],
            }
        )
        return
    table = folding("phone", "first name", "last name", "email")
    for r in rows:
        f = r.fields
        table.add_row(
            phones.national(r.phone), f.get("firstname", ""), f.get("lastname", ""), f.get("email", "")
        )
    out.print(table)
    out.print(f"group {found.name} (id {found.id}): {plural(len(rows), 'number')}")
