"""Who is asking, and may they: the interface the web server (and the CLI) code against.

- Roles and permissions (`Role`, `Permission`, `allows`; the table in `campaigns/identity.py`), `Actor`,
  `require` (or `Forbidden`), `cli_actor` (the command line: an unauthenticated admin).
- `authenticate_key` (a bearer API key -> its Actor, or `Unauthenticated`), `login` (a user's name and
  password -> its Actor, `Unauthenticated`, or `Throttled`), `current_user` (a session's user, still
  enabled). Errors `Unauthenticated` (401), `Forbidden` (403), `Throttled` (429) share `IdentityError`.
- Users and keys (`dispatcher/app/people.py`, re-exported): `add_user`, `list_users`, `disable_user`,
  `set_password`, `set_cap`, `create_key`, `list_keys`, `revoke_key`, `bootstrap_admin`.
- `purge` (dispatcher/app/purge.py, re-exported): remove finished campaigns' numbers and columns.

Login throttling (OWASP ASVS 5.0 6.1.1; shared/research/console.md §8): 10 failed logins for an account,
or 30 from one client address, within 15 minutes refuse further attempts for 15 minutes, the right
password included. The attempts live in the database (`login_attempts`), so every web process sees the
same counts; each attempt is recorded (ok, failed, throttled) and logged without the password.
"""

from __future__ import annotations

import logging
from datetime import datetime

from campaigns.clock import utcnow
from campaigns.identity import (
    PER_ACCOUNT,
    PER_CLIENT,
    ActorKind,
    Permission,
    Role,
    allows,
    locked_for,
    looks_like_key,
    since_for,
)
from dispatcher.app.actors import (
    Actor,
    Forbidden,
    IdentityError,
    Throttled,
    Unauthenticated,
    acting,
    cli_actor,
    identity_store,
    require,
)
from dispatcher.app.hashing import hash_password, key_digest, needs_rehash, verify_password
from dispatcher.app.people import (
    NewKey,
    add_user,
    bootstrap_admin,
    create_key,
    disable_user,
    list_keys,
    list_users,
    revoke_key,
    set_cap,
    set_password,
)
from dispatcher.app.purge import PurgeResult, purge
from dispatcher.config import AppSettings

__all__ = [
    "Actor",
    "ActorKind",
    "Forbidden",
    "IdentityError",
    "NewKey",
    "Permission",
    "PurgeResult",
    "Role",
    "Throttled",
    "Unauthenticated",
    "acting",
    "add_user",
    "allows",
    "authenticate_key",
    "bootstrap_admin",
    "cli_actor",
    "create_key",
    "current_user",
    "disable_user",
    "list_keys",
    "list_users",
    "login",
    "password_changed_at",
    "purge",
    "require",
    "revoke_key",
    "set_cap",
    "set_password",
]

log = logging.getLogger("smsdispatch.identity")
BAD_KEY = "invalid API key: missing, unknown, revoked or expired"
BAD_LOGIN = "wrong user name or password"


def authenticate_key(settings: AppSettings, bearer: str | None) -> Actor:
    """The Actor of a bearer API key (`Authorization: Bearer smsd_…`, the part after "Bearer ").

    Raises Unauthenticated for a missing, malformed, unknown, revoked or expired key; the message is the
    same for all of them and never echoes the key. The key is looked up by its SHA-256 only.
    """
    text = (bearer or "").strip()
    if not looks_like_key(text):
        raise Unauthenticated(BAD_KEY)
    store = identity_store(settings)
    found = store.key_by_hash(key_digest(text))
    now = utcnow()
    if found is None or not found.usable(now):
        raise Unauthenticated(BAD_KEY)
    store.touch_key(found.id, now)
    return Actor(f"key:{found.name}", found.role, ActorKind.KEY, key_id=found.id)


def login(settings: AppSettings, username: str, password: str, client: str | None = None) -> Actor:
    """The Actor of a user who gave the right password.

    `client`: the client's address as the trusted proxy reports it (None: unknown, only the account's
    count applies). Raises Throttled (with `retry_after_seconds`) while the account or the address is
    locked out, whatever the password; Unauthenticated for a wrong name or password or a disabled user
    (one message for all, so it does not tell which names exist).
    """
    store = identity_store(settings)
    name = username.strip().lower()[:64]
    now = utcnow()
    waits = [locked_for(store.failures_since(since_for(now, PER_ACCOUNT), username=name), now, PER_ACCOUNT)]
    if client:
        waits.append(
            locked_for(store.failures_since(since_for(now, PER_CLIENT), client=client), now, PER_CLIENT)
        )
    wait = max((w for w in waits if w is not None), default=None)
    if wait is not None:
        store.record_attempt(name, client, "throttled", now)
        log.warning("login refused (throttled) for %r from %s", name, client or "an unknown address")
        raise Throttled(int(-(-wait // 1)))
    user = store.user(name)
    ok = verify_password(user.password_hash if user else None, password)
    if not ok or user is None or user.disabled:
        store.record_attempt(name, client, "failed", now)
        why = "disabled user" if ok and user is not None else "wrong name or password"
        log.warning("login failed for %r from %s: %s", name, client or "an unknown address", why)
        raise Unauthenticated(BAD_LOGIN)
    store.record_attempt(name, client, "ok", now)
    log.info("login ok for %r from %s", name, client or "an unknown address")
    if needs_rehash(user.password_hash):
        store.rehash_password(user.id, hash_password(password))
    if now.minute % 10 == 0:  # now and then, forget what the throttle no longer looks at
        store.prune_attempts(now - 2 * (PER_ACCOUNT.window + PER_ACCOUNT.lockout))
    return Actor(user.name, user.role, ActorKind.USER, user_id=user.id)


def current_user(settings: AppSettings, user_id: int) -> Actor:
    """A session's user as it is now (its role may have changed). Raises Unauthenticated when the user is
    gone or disabled, so disabling a user ends its sessions at their next request."""
    user = identity_store(settings).user_by_id(user_id)
    if user is None or user.disabled:
        raise Unauthenticated("the session's user is disabled or gone; log in again")
    return Actor(user.name, user.role, ActorKind.USER, user_id=user.id)


def password_changed_at(settings: AppSettings, user_id: int) -> datetime | None:
    """When the user's password last changed (a session opened before it should end); None: no such user."""
    user = identity_store(settings).user_by_id(user_id)
    return user.password_changed_at if user else None
