"""Browser sessions of the web console: opened by a login, found again from the cookie's token, ended at
logout. Kept server-side in the store (campaigns/store/sessions.py), so every `web` process shares them.

- `log_in(settings, username, password, client, previous=None)`: `identity.login` (throttled: raises
  Throttled, or Unauthenticated), then a NEW session; the token the browser had before is ended (the
  session id is rotated at login, OWASP ASVS 5.0 7.2.4).
- `resume(settings, token)`: the session's Actor as its user is now (role changes apply at once) and its
  CSRF token. Raises Unauthenticated, and ends the session, when it is unknown or ended, idle longer than
  SMSDISPATCH_SESSION_IDLE_MINUTES (default 30), older than SMSDISPATCH_SESSION_HOURS (default 12), when
  its user was disabled or removed, or when the password changed after it opened (ASVS 7.3.1, 7.3.2,
  7.4.2).
- `log_out(settings, token)`: ends it on the server (ASVS 7.4.1).

Tokens are 256 random bits (`secrets.token_urlsafe(32)`); only their SHA-256 is stored.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from campaigns.clock import utcnow
from campaigns.store import sessions as kept
from dispatcher.app.actors import Actor, Unauthenticated, identity_store
from dispatcher.app.common import BadInput
from dispatcher.config import AppSettings

ENDED = "your session has ended; log in again"
TOUCH_EVERY = timedelta(seconds=15)  # `seen_at` is written at most this often (the idle clock's grain)


@dataclass(frozen=True)
class SessionPolicy:
    """Timeouts: `idle` without a request, `absolute` since the login."""

    idle: timedelta
    absolute: timedelta

    @classmethod
    def from_env(cls, env: dict[str, str]) -> SessionPolicy:
        """SMSDISPATCH_SESSION_IDLE_MINUTES (default 30) and SMSDISPATCH_SESSION_HOURS (default 12);
        BadInput naming a setting that is not a positive number."""

        def number(name: str, default: float) -> float:
            text = (env.get(name) or "").strip()
            if not text:
                return default
            try:
                value = float(text)
            except ValueError:
                value = -1
            if value <= 0:
                raise BadInput(f"{name}={text!r}: give a positive number")
            return value

        return cls(
            idle=timedelta(minutes=number("SMSDISPATCH_SESSION_IDLE_MINUTES", 30)),
            absolute=timedelta(hours=number("SMSDISPATCH_SESSION_HOURS", 12)),
        )


@dataclass(frozen=True)
class Session:
    """A live session: who (as the user is now), its anti-forgery token, and its row's id."""

    actor: Actor
    csrf: str
    id: int
    created_at: datetime


@dataclass(frozen=True)
class NewSession:
    """What a login hands the browser: the token (the cookie's value, shown nowhere else) and the session."""

    token: str
    session: Session


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def log_in(
    settings: AppSettings, username: str, password: str, client: str | None, previous: str | None = None
) -> NewSession:
    """Check the name and password (`identity.login`: Throttled, Unauthenticated) and open a new session;
    the session of `previous` (the token the browser sent, if any) is ended: a login never keeps an id."""
    from dispatcher.app.identity import login

    actor = login(settings, username, password, client)
    store = identity_store(settings)
    now = utcnow()
    if previous:
        found = kept.find_session(store.engine, token_hash(previous))
        if found is not None:
            kept.end_session(store.engine, found.id, now)
    assert actor.user_id is not None
    token, csrf = secrets.token_urlsafe(32), secrets.token_urlsafe(32)
    session_id = kept.open_session(store.engine, token_hash(token), actor.user_id, csrf, now)
    return NewSession(token, Session(actor, csrf, session_id, now))


def resume(settings: AppSettings, token: str | None, *, now: datetime | None = None) -> Session:
    """The live session of `token` (see the module doc); Unauthenticated when there is none any more."""
    from dispatcher.app.identity import current_user

    if not token:
        raise Unauthenticated("not logged in")
    store = identity_store(settings)
    found = kept.find_session(store.engine, token_hash(token))
    if found is None or found.ended_at is not None:
        raise Unauthenticated(ENDED)
    now = now or utcnow()
    policy = SessionPolicy.from_env(settings.env)
    try:
        if now - found.seen_at > policy.idle or now - found.created_at > policy.absolute:
            raise Unauthenticated(ENDED)
        actor = current_user(settings, found.user_id)  # disabled or gone: Unauthenticated
        user = store.user_by_id(found.user_id)
        if user is not None and user.password_changed_at > found.created_at:
            raise Unauthenticated(ENDED)
    except Unauthenticated:
        kept.end_session(store.engine, found.id, now)
        raise
    if now - found.seen_at >= TOUCH_EVERY:
        kept.touch(store.engine, found.id, now)
    return Session(actor, found.csrf, found.id, found.created_at)


def log_out(settings: AppSettings, token: str | None) -> None:
    """End the token's session on the server (nothing when there is none)."""
    if not token:
        return
    store = identity_store(settings)
    found = kept.find_session(store.engine, token_hash(token))
    if found is not None:
        kept.end_session(store.engine, found.id, utcnow())


def end_sessions_of(settings: AppSettings, user_id: int) -> int:
    """End every session of a user at once (disabled, or a new password); how many were open."""
    return kept.end_user_sessions(identity_store(settings).engine, user_id, utcnow())
