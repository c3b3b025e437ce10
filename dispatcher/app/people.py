"""Users and API keys: the use cases behind `smsdispatch users …` and `keys …` (and the API's admin
endpoints). Each takes the acting `Actor` (None: the command line, an admin) and needs the MANAGE
permission, but for a user changing their own password; each change is recorded in the audit trail.

Errors: `BadInput` (a bad name, role, password or cap; a name taken; no such user or key), `Forbidden`.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

from campaigns.clock import utcnow
from campaigns.identity import KEY_HINT, KeyRecord, Permission, Role, UserRecord, parse_role
from campaigns.store.identity import NameTaken
from dispatcher.app.actors import Actor, acting, identity_store, require
from dispatcher.app.budget import BudgetError, parse_cap
from dispatcher.app.common import BadInput
from dispatcher.app.hashing import check_password, hash_password, key_digest, new_key
from dispatcher.config import AppSettings
from workers.errors import ConfigurationError
from workers.webhooks import key_secret

log = logging.getLogger("smsdispatch.identity")
_NAME = re.compile(r"[a-z0-9][a-z0-9._@-]{0,63}")
ADMIN_PASSWORD_FILE = "SMSDISPATCH_ADMIN_PASSWORD_FILE"
ADMIN_USER = "SMSDISPATCH_ADMIN_USER"


@dataclass(frozen=True)
class NewKey:
    """A key just created: `key` is the only time the key exists in clear (show it once, store it nowhere)."""

    key: str
    record: KeyRecord
    # Signs the webhooks of the campaigns this key starts (workers/webhooks.py: derived from
    # SMSDISPATCH_WEBHOOK_SECRET and the key's id, never stored); None when that setting is unset.
    webhook_secret: str | None = None

    def as_json(self) -> dict[str, Any]:
        """`keys create --json`: {"key", "name", "role", "expires_at"}."""
        expires = self.record.expires_at
        return {
            "key": self.key,
            "name": self.record.name,
            "role": str(self.record.role),
            "expires_at": expires.isoformat() if expires else None,
            "webhook_secret": self.webhook_secret,
        }


def _name(text: str, what: str) -> str:
    name = text.strip().lower()
    if not _NAME.fullmatch(name):
        raise BadInput(
            f"{what} name {text!r}: use 1-64 lower-case letters, digits, '.', '_', '-' or '@', "
            "starting with a letter or digit"
        )
    return name


def _role(text: str | Role) -> Role:
    try:
        return parse_role(str(text))
    except ValueError as exc:
        raise BadInput(f"--role: {exc}") from None


def _caps(rial: str | int | None, parts: str | int | None) -> tuple[int | None, int | None]:
    try:
        return parse_cap(rial, "--daily-cap"), parse_cap(parts, "--daily-parts")
    except BudgetError as exc:
        raise BadInput(str(exc).replace("--daily-cap", "--daily-cap (rial)")) from None


def _password(password: str) -> str:
    problem = check_password(password)
    if problem:
        raise BadInput(problem)
    return hash_password(password)


# ---- users -------------------------------------------------------------------------------------------
def add_user(
    settings: AppSettings,
    name: str,
    role: str | Role,
    password: str,
    *,
    daily_cap_rial: str | int | None = None,
    daily_cap_parts: str | int | None = None,
    actor: Actor | None = None,
) -> UserRecord:
    """A new user with an argon2 hash of `password` (10+ characters, not a common password)."""
    who = acting(actor)
    require(who, Permission.MANAGE)
    user_name, user_role, caps = _name(name, "user"), _role(role), _caps(daily_cap_rial, daily_cap_parts)
    try:
        return identity_store(settings).add_user(user_name, user_role, _password(password), caps, who.who)
    except NameTaken as exc:
        raise BadInput(f"{exc}; choose another name, or see smsdispatch users list") from None


def list_users(settings: AppSettings, *, actor: Actor | None = None) -> list[UserRecord]:
    require(acting(actor), Permission.MANAGE)
    return identity_store(settings).users()


def _user(settings: AppSettings, name: str) -> UserRecord:
    found = identity_store(settings).user(name.strip().lower())
    if found is None:
        raise BadInput(f"no user named {name!r}; see smsdispatch users list")
    return found


def disable_user(settings: AppSettings, name: str, *, actor: Actor | None = None) -> UserRecord:
    """Disable a user: no more logins, and its sessions end (`identity.current_user` refuses it)."""
    who = acting(actor)
    require(who, Permission.MANAGE)
    user = _user(settings, name)
    identity_store(settings).disable_user(user.name, who.who)
    _end_sessions(settings, user.id)
    return _user(settings, name)


def set_password(settings: AppSettings, name: str, password: str, *, actor: Actor | None = None) -> None:
    """A new password for a user (an admin, or the user themself); sessions opened before it end."""
    who = acting(actor)
    user = _user(settings, name)
    if who.user_id != user.id:
        require(who, Permission.MANAGE)
    identity_store(settings).set_password(user.name, _password(password), who.who)
    _end_sessions(settings, user.id)


def _end_sessions(settings: AppSettings, user_id: int) -> None:
    """The user's web console sessions end now (not only at their next request)."""
    from dispatcher.app.sessions import end_sessions_of

    end_sessions_of(settings, user_id)


def set_cap(
    settings: AppSettings,
    kind: str,
    name: str,
    daily_cap_rial: str | int | None = None,
    daily_cap_parts: str | int | None = None,
    *,
    actor: Actor | None = None,
) -> None:
    """Set the daily caps of a user (`kind` "user") or key ("key"); both None removes them."""
    who = acting(actor)
    require(who, Permission.MANAGE)
    if not identity_store(settings).set_cap(
        kind, name.strip().lower(), _caps(daily_cap_rial, daily_cap_parts), who.who
    ):
        raise BadInput(f"no {kind} named {name!r}; see smsdispatch {kind}s list")


# ---- keys --------------------------------------------------------------------------------------------
def create_key(
    settings: AppSettings,
    name: str,
    role: str | Role,
    *,
    expires_days: int | None = None,
    daily_cap_rial: str | int | None = None,
    daily_cap_parts: str | int | None = None,
    actor: Actor | None = None,
) -> NewKey:
    """A new API key (`smsd_` + 32 random bytes), stored as its SHA-256 and last characters; the returned
    `NewKey.key` is the one time it is seen. `expires_days`: None, never."""
    who = acting(actor)
    require(who, Permission.MANAGE)
    key_name, key_role, caps = _name(name, "key"), _role(role), _caps(daily_cap_rial, daily_cap_parts)
    if expires_days is not None and expires_days <= 0:
        raise BadInput(f"--expires {expires_days}: give a number of days above 0, or leave it out for none")
    expires = utcnow() + timedelta(days=expires_days) if expires_days is not None else None
    key = new_key()
    try:
        record = identity_store(settings).add_key(
            key_name, key_role, key_digest(key), key[-KEY_HINT:], expires, caps, who.who
        )
    except NameTaken as exc:
        raise BadInput(f"{exc}; choose another name, or revoke it first (names stay taken)") from None
    server = settings.dispatch.webhook_secret
    return NewKey(key, record, key_secret(server.reveal(), record.id) if server else None)


def list_keys(settings: AppSettings, *, actor: Actor | None = None) -> list[KeyRecord]:
    require(acting(actor), Permission.MANAGE)
    return identity_store(settings).keys()


def revoke_key(settings: AppSettings, name: str, *, actor: Actor | None = None) -> KeyRecord:
    """Revoke a key at once (every request with it is refused from now on)."""
    who = acting(actor)
    require(who, Permission.MANAGE)
    store = identity_store(settings)
    key_name = name.strip().lower()
    if store.key(key_name) is None:
        raise BadInput(f"no key named {name!r}; see smsdispatch keys list")
    store.revoke_key(key_name, who.who)
    found = store.key(key_name)
    assert found is not None
    return found


# ---- the first admin ---------------------------------------------------------------------------------
def bootstrap_admin(settings: AppSettings) -> str | None:
    """The web process calls this at start: when `SMSDISPATCH_ADMIN_PASSWORD_FILE` names a file (a compose
    secret) and the database has no user yet, create the admin `SMSDISPATCH_ADMIN_USER` (default `admin`)
    with the file's first line as password. Returns the name created, or None (no file set, or users
    exist: an existing password is never reset from the file). Raises ConfigurationError naming the file
    (never its content) when it cannot be read or the password is too weak. Safe when several processes
    start at once: one creates the user, the others find it.
    """
    path = (settings.env.get(ADMIN_PASSWORD_FILE) or "").strip()
    if not path:
        return None
    store = identity_store(settings)
    if store.has_users():
        return None
    try:
        password = Path(path).read_text(encoding="utf-8").splitlines()[0].strip()
    except (OSError, IndexError, UnicodeDecodeError):
        raise ConfigurationError(f"{ADMIN_PASSWORD_FILE}={path}: cannot read a password from it") from None
    problem = check_password(password)
    if problem:
        raise ConfigurationError(f"{ADMIN_PASSWORD_FILE}={path}: {problem}")
    name = _name(settings.env.get(ADMIN_USER) or "admin", "user")
    try:
        store.add_user(name, Role.ADMIN, hash_password(password), (None, None), "system")
    except NameTaken:
        return None
    except Exception:  # a process starting beside us inserted it first (unique name)
        if store.user(name) is not None:
            return None
        raise
    log.info("created the first admin %r from %s", name, ADMIN_PASSWORD_FILE)
    return name
