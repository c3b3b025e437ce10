"""`users` (add, list, disable, passwd, cap), `keys` (create, list, revoke, cap) and `purge`: parse, call
`dispatcher.app.identity`, print. The command line is not authenticated: it acts as `cli:USER@HOST`, an
admin (README, "Security")."""

from __future__ import annotations

import sys
from typing import Annotated

import typer
from rich.table import Table

from campaigns.identity import parse_role
from dispatcher.app import BadInput
from dispatcher.app import identity as idn
from dispatcher.cli.common import AsJson, cli, cli_settings, emit, err, out, plural

users_app = typer.Typer(no_args_is_help=True, help="People who log in to the web console and API.")
keys_app = typer.Typer(no_args_is_help=True, help="API keys for other systems (Authorization: Bearer KEY).")
cli.add_typer(users_app, name="users")
cli.add_typer(keys_app, name="keys")

Name = Annotated[str, typer.Argument(metavar="NAME")]
RoleOption = Annotated[str, typer.Option("--role", help="admin, sender, operator or viewer (cumulative)")]
DailyCap = Annotated[
    str | None, typer.Option("--daily-cap", metavar="RIAL", help="spending cap per day, in rial")
]
DailyParts = Annotated[
    str | None, typer.Option("--daily-parts", metavar="N", help="spending cap per day, in SMS parts")
]


def _read_password(from_stdin: bool) -> str:
    """The new password: the first line of stdin (`--password-stdin`), or typed twice on a terminal."""
    if from_stdin:
        line = sys.stdin.readline()
        if not line.strip():
            raise BadInput("--password-stdin: stdin gave no password; pipe it in (one line)")
        return line.rstrip("\r\n")
    if not sys.stdin.isatty():
        raise BadInput("no terminal to type a password on; give --password-stdin and pipe it in")
    first = typer.prompt("password", hide_input=True)
    if typer.prompt("again", hide_input=True) != first:
        raise BadInput("the two passwords differ; run the command again")
    return first


def _cap_text(rial: int | None, parts: int | None) -> str:
    caps = [f"{rial:,} rial" if rial is not None else "", f"{parts:,} parts" if parts is not None else ""]
    return " / ".join(c for c in caps if c) or "-"


# ---- users -------------------------------------------------------------------------------------------
@users_app.command("add")
def users_add(
    name: Name,
    role: RoleOption,
    password_stdin: Annotated[
        bool, typer.Option("--password-stdin", help="read the password from stdin (scripts, compose)")
    ] = False,
    daily_cap: DailyCap = None,
    daily_parts: DailyParts = None,
) -> None:
    """Add a user (a password of 10+ characters, not a common one; typed twice unless --password-stdin)."""
    settings = cli_settings()
    try:
        parse_role(role)  # a wrong role is named before a password is asked for
    except ValueError as exc:
        raise BadInput(f"--role: {exc}") from None
    password = _read_password(password_stdin)
    user = idn.add_user(settings, name, role, password, daily_cap_rial=daily_cap, daily_cap_parts=daily_parts)
    out.print(f"user {user.name} added ({user.role})")


@users_app.command("list")
def users_list(as_json: AsJson = False) -> None:
    """Every user: role, disabled or not, daily cap."""
    settings = cli_settings()
    found = idn.list_users(settings)
    if as_json:
        emit([u.as_json() for u in found])
        return
    table = Table("name", "role", "state", "daily cap", "added")
    for u in found:
        state = "disabled" if u.disabled else "active"
        caps = _cap_text(u.daily_cap_rial, u.daily_cap_parts)
        table.add_row(u.name, str(u.role), state, caps, settings.show_time(u.created_at))
    out.print(table)
    out.print(plural(len(found), "user"))


@users_app.command("disable")
def users_disable(name: Name) -> None:
    """Disable a user: no more logins, and their sessions end."""
    user = idn.disable_user(cli_settings(), name)
    out.print(f"user {user.name} disabled")


@users_app.command("passwd")
def users_passwd(
    name: Name,
    password_stdin: Annotated[
        bool, typer.Option("--password-stdin", help="read the password from stdin")
    ] = False,
) -> None:
    """Set a user's password (typed twice unless --password-stdin); their sessions end."""
    settings = cli_settings()
    idn.set_password(settings, name, _read_password(password_stdin))
    out.print(f"password of {name} changed")


@users_app.command("cap")
def users_cap(name: Name, daily_cap: DailyCap = None, daily_parts: DailyParts = None) -> None:
    """Set a user's daily spending caps (neither option: no cap)."""
    idn.set_cap(cli_settings(), "user", name, daily_cap, daily_parts)
    out.print(f"user {name}: daily cap {_cap_text(*_parsed(daily_cap, daily_parts))}")


# ---- keys --------------------------------------------------------------------------------------------
@keys_app.command("create")
def keys_create(
    name: Annotated[str, typer.Option("--name", help="what the key is for: crm, shop, nightly-job")],
    role: RoleOption,
    expires: Annotated[
        int | None, typer.Option("--expires", metavar="DAYS", help="valid for DAYS days (default: no expiry)")
    ] = None,
    daily_cap: DailyCap = None,
    daily_parts: DailyParts = None,
    as_json: AsJson = False,
) -> None:
    """Create an API key and print it ONCE: only its hash is kept, it cannot be shown again."""
    settings = cli_settings()
    made = idn.create_key(
        settings, name, role, expires_days=expires, daily_cap_rial=daily_cap, daily_cap_parts=daily_parts
    )
    if as_json:
        emit(made.as_json())
        return
    record = made.record
    until = settings.show_time(record.expires_at) if record.expires_at else "never"
    out.print(made.key, soft_wrap=True, highlight=False)
    err.print(f"key {record.name} ({record.role}), expires: {until}. Copy it now: it is not shown again.")
    if made.webhook_secret:
        err.print(
            f"webhook secret (checks the signature of this key's webhooks): {made.webhook_secret}",
            soft_wrap=True,
        )


@keys_app.command("list")
def keys_list(as_json: AsJson = False) -> None:
    """Every key: role, its last characters, expiry, revocation, last use, daily cap."""
    settings = cli_settings()
    found = idn.list_keys(settings)
    if as_json:
        emit([k.as_json() for k in found])
        return

    def when(t) -> str:  # noqa: ANN001
        return settings.show_time(t) if t else "-"

    table = Table("name", "role", "key", "expires", "revoked", "last used", "daily cap")
    for k in found:
        caps = _cap_text(k.daily_cap_rial, k.daily_cap_parts)
        row = (k.name, str(k.role), k.as_json()["key"], when(k.expires_at), when(k.revoked_at))
        table.add_row(*row, when(k.last_used_at), caps)
    out.print(table)
    out.print(plural(len(found), "key"))


@keys_app.command("revoke")
def keys_revoke(name: Name) -> None:
    """Revoke a key at once: every request with it is refused from now on."""
    key = idn.revoke_key(cli_settings(), name)
    out.print(f"key {key.name} revoked")


@keys_app.command("cap")
def keys_cap(name: Name, daily_cap: DailyCap = None, daily_parts: DailyParts = None) -> None:
    """Set a key's daily spending caps (neither option: no cap)."""
    idn.set_cap(cli_settings(), "key", name, daily_cap, daily_parts)
    out.print(f"key {name}: daily cap {_cap_text(*_parsed(daily_cap, daily_parts))}")


def _parsed(rial: str | None, parts: str | None) -> tuple[int | None, int | None]:
    from dispatcher.app.budget import parse_cap

    return parse_cap(rial, "--daily-cap"), parse_cap(parts, "--daily-parts")


# ---- purge -------------------------------------------------------------------------------------------
@cli.command()
def purge(
    older_than: Annotated[
        int,
        typer.Option("--older-than", metavar="DAYS", help="campaigns that finished more than DAYS days ago"),
    ],
    as_json: AsJson = False,
) -> None:
    """Remove the phone numbers and file columns of finished campaigns' recipients (counts, costs and the
    audit stay; the suppression list is never purged)."""
    done = idn.purge(cli_settings(), older_than)
    if as_json:
        emit(done.as_json())
        return
    out.print(
        f"{plural(len(done.campaigns), 'campaign')} purged: {plural(done.recipients, 'recipient')}' numbers and "
        f"columns removed; {plural(len(done.files_removed), 'rejects file')} deleted"
    )
