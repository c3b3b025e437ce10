"""Who is acting: the `Actor` every changing use case may be given, the identity errors a front end maps to
401/403/429, `require` (a permission or `Forbidden`) and `cli_actor` (the terminal: an admin).

The CLI is not authenticated: whoever can open the database is an admin (README, "Security").
"""

from __future__ import annotations

import getpass
import socket
from dataclasses import dataclass, replace

from campaigns.identity import ActorKind, Permission, Role, allows
from campaigns.store import CampaignSpec, Store
from dispatcher.app.common import BadInput, open_store
from dispatcher.config import AppSettings


class IdentityError(Exception):
    """Something about who is asking; the message is for the caller and never holds a secret."""


class Unauthenticated(IdentityError):
    """No valid credentials: a missing, unknown, revoked or expired key; a wrong name or password; a
    disabled user (HTTP 401). The message never echoes the key or the password."""


class Forbidden(IdentityError):
    """The actor's role lacks the permission (HTTP 403)."""


class Throttled(IdentityError):
    """Too many failed logins for the account or from the client address (HTTP 429); `retry_after_seconds`
    is how long the refusal lasts (the right password is refused too until then)."""

    def __init__(self, retry_after_seconds: int, message: str | None = None) -> None:
        self.retry_after_seconds = retry_after_seconds
        minutes = max(1, -(-retry_after_seconds // 60))
        super().__init__(message or f"too many failed logins; try again in {minutes} minutes")


@dataclass(frozen=True)
class Actor:
    """Who does something. `who` is what the audit records: "alice" for a user, "key:crm" for an API key,
    "cli:USER@HOST" for the command line. `user_id` / `key_id`: the row of the user or key (None for the CLI)."""

    who: str
    role: Role
    kind: ActorKind
    user_id: int | None = None
    key_id: int | None = None

    @property
    def principal(self) -> str | None:
        """What a daily spending cap is kept for: "key:7" or "user:3"; None for the CLI (no cap)."""
        if self.key_id is not None:
            return f"key:{self.key_id}"
        if self.user_id is not None:
            return f"user:{self.user_id}"
        return None


def cli_actor() -> Actor:
    """The command line: an admin, recorded as `cli:USER@HOST` (the login name and the machine)."""
    try:
        user = getpass.getuser()
    except (KeyError, OSError):  # no login name (a container's uid without a passwd entry)
        user = "unknown"
    return Actor(f"cli:{user}@{socket.gethostname()}", Role.ADMIN, ActorKind.CLI)


def require(actor: Actor, permission: Permission) -> None:
    """Nothing when the actor's role holds `permission`; raises `Forbidden` naming the role needed."""
    if not allows(actor.role, permission):
        from campaigns.identity import LEAST_ROLE

        needed = LEAST_ROLE[Permission(permission)]
        raise Forbidden(f"{actor.who} is a {actor.role}; this needs the {needed} role or above")


def acting(actor: Actor | None) -> Actor:
    """The actor, or the CLI's when none is given."""
    return actor if actor is not None else cli_actor()


def identity_store(settings: AppSettings) -> Store:
    """The store for identity use cases: the process's store of the database (`open_store`, migrated
    once per process and database; a web process authenticates every request)."""
    store = open_store(settings)
    assert store is not None
    return store


def started_by(store: Store, spec: CampaignSpec, actor: Actor | None) -> CampaignSpec:
    """The spec with who starts it (`created_by…`) and the daily spend its claims count against.

    The actor needs the SEND permission (Forbidden). A user or key with a daily cap in rial can only
    start a campaign whose every part is priced (BadInput naming the price setting), as for `--budget`:
    an unpriced chunk would cost 0 against the cap.
    """
    who = acting(actor)
    require(who, Permission.SEND)
    principal = who.principal
    rial_cap = store.caps_of(principal)[0] if principal else None
    if rial_cap is not None and not spec.prices:
        from campaigns.preflight.checks import price_hint

        raise BadInput(
            f"{who.who} has a daily cap in rial, so the campaigns it starts need the price of an SMS part: "
            f"{price_hint(spec.provider)}"
        )
    return replace(
        spec,
        created_by=who.who,
        created_by_user_id=who.user_id,
        created_by_key_id=who.key_id,
        spend_principal=principal,
        needs_prices=rial_cap is not None,
    )
