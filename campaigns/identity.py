"""Who may do what, and the pure decisions about people and keys: roles and their permissions, the login
throttle's verdict, the password rule, the API key's shape and a daily spending cap's arithmetic.

Pure: no clock, no database, no randomness. The store keeps users, keys, login attempts and the daily
spend (`campaigns/store/identity.py`, `campaigns/store/caps.py`); the application layer
(`dispatcher/app/identity.py`) hashes, draws random keys and reads the clock.
"""

from __future__ import annotations

from collections.abc import Container, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum

from campaigns.windows import TEHRAN


class Role(StrEnum):
    """Cumulative roles, weakest first: each has every permission of the ones before it."""

    VIEWER = "viewer"
    OPERATOR = "operator"
    SENDER = "sender"
    ADMIN = "admin"


ROLE_ORDER: tuple[Role, ...] = (Role.VIEWER, Role.OPERATOR, Role.SENDER, Role.ADMIN)


class Permission(StrEnum):
    """What an actor may do. READ: campaigns, reports, recipients, providers, the opt-out list. UPLOAD:
    upload files and check drafts. OPTOUT_ADD: add numbers to the suppression list. SEND: send drafts and
    campaigns, test sends, pause, resume, cancel. OPTOUT_REMOVE: take numbers off the suppression list.
    MANAGE: users, API keys, purge."""

    READ = "read"
    UPLOAD = "upload"
    OPTOUT_ADD = "optout_add"
    SEND = "send"
    OPTOUT_REMOVE = "optout_remove"
    MANAGE = "manage"


# The weakest role that holds each permission (roles are cumulative, README "Security").
LEAST_ROLE: dict[Permission, Role] = {
    Permission.READ: Role.VIEWER,
    Permission.UPLOAD: Role.OPERATOR,
    Permission.OPTOUT_ADD: Role.OPERATOR,
    Permission.SEND: Role.SENDER,
    Permission.OPTOUT_REMOVE: Role.ADMIN,
    Permission.MANAGE: Role.ADMIN,
}


class ActorKind(StrEnum):
    """How an actor proved who it is: a logged-in user, a bearer API key, or the (unauthenticated) CLI."""

    USER = "user"
    KEY = "key"
    CLI = "cli"


def allows(role: Role | str, permission: Permission | str) -> bool:
    """True when `role` holds `permission` (its own or a weaker role's). Raises ValueError for a name that
    is not a role or a permission."""
    return ROLE_ORDER.index(Role(role)) >= ROLE_ORDER.index(LEAST_ROLE[Permission(permission)])


def parse_role(text: str) -> Role:
    """`--role sender` -> Role.SENDER (any case); ValueError naming the choices otherwise."""
    try:
        return Role(text.strip().lower())
    except ValueError:
        raise ValueError(f"role {text!r}: choose one of {', '.join(ROLE_ORDER)}") from None


# ---- login throttling -------------------------------------------------------------------------------
@dataclass(frozen=True)
class ThrottleRule:
    """`limit` failed logins within `window` lock out for `lockout` (from the failure that reached the limit)."""

    limit: int
    window: timedelta = timedelta(minutes=15)
    lockout: timedelta = timedelta(minutes=15)


PER_ACCOUNT = ThrottleRule(10)
PER_CLIENT = ThrottleRule(30)


def locked_for(failures: Sequence[datetime], now: datetime, rule: ThrottleRule) -> float | None:
    """Seconds until a lockout ends, or None when not locked out.

    `failures`: the times of failed logins (of one account, or from one client address) since
    `now - window - lockout`, in any order. Refused (throttled) attempts are not failures: counting them
    would let an attacker keep an account locked for ever with one attempt every few minutes. Locked out
    while some failure `t` is the `limit`-th within `(t - window, t]` and `t + lockout` is still ahead.
    """
    times = sorted(failures)
    until: datetime | None = None
    for i in range(rule.limit - 1, len(times)):
        t = times[i]
        if t - times[i - rule.limit + 1] < rule.window and t + rule.lockout > now:
            until = t + rule.lockout if until is None else max(until, t + rule.lockout)
    return None if until is None else max((until - now).total_seconds(), 1.0)


def since_for(now: datetime, rule: ThrottleRule) -> datetime:
    """The oldest failure `locked_for` needs to see."""
    return now - rule.window - rule.lockout


# ---- passwords and keys -----------------------------------------------------------------------------
MIN_PASSWORD = 10


def password_problem(password: str, common: Container[str]) -> str | None:
    """Why `password` may not be used (too short, or in the list of common passwords, compared in lower
    case), or None. Never repeats the password."""
    if len(password) < MIN_PASSWORD:
        return f"a password needs at least {MIN_PASSWORD} characters"
    if password.lower() in common or password.strip().lower() in common:
        return "that password is in the list of the most common passwords; choose another"
    return None


KEY_PREFIX = "smsd_"  # visible, so a key found in a log or a repository is recognised (and revoked)
KEY_HINT = 5  # the last characters stored beside the hash, so people can tell their keys apart


def key_hint(key: str) -> str:
    """How a key is shown after its creation: `smsd_…AbC12` (the prefix and its last characters)."""
    return f"{KEY_PREFIX}…{key[-KEY_HINT:]}"


def looks_like_key(text: str) -> bool:
    return text.startswith(KEY_PREFIX) and len(text) > len(KEY_PREFIX) + KEY_HINT


# ---- daily spending caps ----------------------------------------------------------------------------
def spend_day(moment: datetime) -> str:
    """The Tehran date of an aware moment, `YYYY-MM-DD`: a daily cap's day (the day a campaign was started)."""
    return moment.astimezone(TEHRAN).date().isoformat()


def cap_holds(spent: int, more: int, cap: int | None) -> bool:
    """A cap (None: none) still holds once `more` is committed on top of `spent`."""
    return cap is None or spent + more <= cap


def daily_cap_reason(
    principal: str,
    spent_rial: int,
    cap_rial: int | None,
    spent_parts: int,
    cap_parts: int | None,
    cost_rial: int,
    parts: int,
) -> str:
    """`daily cap of key crm reached: 10,000 of 10,000 rial` (or `... 400 of 450 parts`): the cap the next
    chunk (`cost_rial`, `parts`) would cross, rial first. `principal`: `key crm` or `user alice`."""
    if not cap_holds(spent_rial, cost_rial, cap_rial) or cap_parts is None:
        return f"daily cap of {principal} reached: {spent_rial:,} of {cap_rial or 0:,} rial"
    return f"daily cap of {principal} reached: {spent_parts:,} of {cap_parts:,} parts"


DAILY_CAP_REACHED = "daily cap of "  # how a pause at a daily cap begins


# ---- the records the store hands out ----------------------------------------------------------------
@dataclass(frozen=True)
class UserRecord:
    """A user as stored; `password_hash` is argon2's PHC string (never shown). Caps: None = no cap."""

    id: int
    name: str
    role: Role
    password_hash: str
    disabled_at: datetime | None
    daily_cap_rial: int | None
    daily_cap_parts: int | None
    password_changed_at: datetime
    created_at: datetime

    @property
    def disabled(self) -> bool:
        return self.disabled_at is not None

    def as_json(self) -> dict[str, object]:
        """For `users list --json` and the API: everything but the hash."""
        return {
            "name": self.name,
            "role": str(self.role),
            "disabled": self.disabled,
            "daily_cap_rial": self.daily_cap_rial,
            "daily_cap_parts": self.daily_cap_parts,
            "created_at": self.created_at.isoformat(),
        }


@dataclass(frozen=True)
class KeyRecord:
    """An API key as stored: its name, role, last characters (`hint`), expiry and revocation; never the key."""

    id: int
    name: str
    role: Role
    hint: str
    expires_at: datetime | None
    revoked_at: datetime | None
    last_used_at: datetime | None
    daily_cap_rial: int | None
    daily_cap_parts: int | None
    created_by: str
    created_at: datetime

    def usable(self, now: datetime) -> bool:
        """Neither revoked nor expired at `now`."""
        return self.revoked_at is None and (self.expires_at is None or self.expires_at > now)

    def as_json(self) -> dict[str, object]:
        def iso(t: datetime | None) -> str | None:
            return t.isoformat() if t else None

        return {
            "name": self.name,
            "role": str(self.role),
            "key": f"{KEY_PREFIX}…{self.hint}",
            "expires_at": iso(self.expires_at),
            "revoked_at": iso(self.revoked_at),
            "last_used_at": iso(self.last_used_at),
            "daily_cap_rial": self.daily_cap_rial,
            "daily_cap_parts": self.daily_cap_parts,
            "created_by": self.created_by,
            "created_at": self.created_at.isoformat(),
        }
