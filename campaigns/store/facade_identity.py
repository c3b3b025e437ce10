"""The `Store` methods of people and keys: users, API keys, login attempts (`identity.py`), the audit
trail (`audit.py`), daily spend (`caps.py`), purging (`purge.py`), and the changes made by someone (pause,
resume, cancel, opt-outs) with their audit event in the same transaction. A mixin of `Store`, kept apart
so the facade stays small; each method is one transaction through the facade's `_read` / `_write`.
`who` is the audit's name of the actor ("alice", "key:crm", "cli:USER@HOST")."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Any

from sqlalchemy import Connection

from campaigns.clock import utcnow
from campaigns.identity import KeyRecord, Role, UserRecord
from campaigns.records import Cancelled
from campaigns.states import CampaignTransition
from campaigns.store import audit, caps, identity, lifecycle, purge, suppressions
from campaigns.store.transitions import campaign_to

Caps = tuple[int | None, int | None]  # daily rial, daily SMS parts; None: no cap


def _suppress_by(conn: Connection, phones: dict[str, str], who: str, now: datetime) -> int:
    added = suppressions.add_suppressions(conn, phones, now)
    if added:
        reason = next(iter(phones.values()), "")
        audit.record(conn, now, who, "opt-out added", f"{', '.join(sorted(phones))} ({reason})")
    return added


def _unsuppress_by(conn: Connection, phones: list[str], who: str, now: datetime) -> int:
    removed = suppressions.unsuppress(conn, phones)
    if removed:
        audit.record(conn, now, who, "opt-out removed", ", ".join(sorted(phones)))
    return removed


def _audit(
    conn: Connection, who: str, action: str, detail: str, campaign_id: int | None, at: datetime
) -> None:
    audit.record(conn, at, who, action, detail, campaign_id)


class IdentityMethods:
    """Mixed into `Store`, which provides `_read(fn, *args)`, `_write(fn, *args)` and `engine`."""

    _read: Any
    _write: Any
    engine: Any

    # ---- users ---------------------------------------------------------------------------------------
    def add_user(self, name: str, role: Role, password_hash: str, caps: Caps, who: str) -> UserRecord:
        """Raises identity.NameTaken."""
        return self._write(identity.add_user, name, role, password_hash, caps, who, utcnow())

    def user(self, name: str) -> UserRecord | None:
        return self._read(identity.user, name)

    def user_by_id(self, user_id: int) -> UserRecord | None:
        return self._read(identity.user_by_id, user_id)

    def users(self) -> list[UserRecord]:
        return self._read(identity.users)

    def has_users(self) -> bool:
        return self._read(identity.count_users) > 0

    def disable_user(self, name: str, who: str) -> bool:
        return self._write(identity.disable_user, name, who, utcnow())

    def set_password(self, name: str, password_hash: str, who: str) -> bool:
        return self._write(identity.set_password, name, password_hash, who, utcnow())

    def rehash_password(self, user_id: int, password_hash: str) -> None:
        self._write(identity.rehash_password, user_id, password_hash, utcnow())

    def set_cap(self, kind: str, name: str, caps: Caps, who: str) -> bool:
        """The daily caps of a user (`kind` "user") or key ("key"); False when there is none of that name."""
        return self._write(identity.set_cap, kind, name, caps, who, utcnow())

    # ---- keys ----------------------------------------------------------------------------------------
    def add_key(
        self,
        name: str,
        role: Role,
        key_hash: str,
        hint: str,
        expires_at: datetime | None,
        caps: Caps,
        who: str,
    ) -> KeyRecord:
        """Raises identity.NameTaken."""
        return self._write(identity.add_key, name, role, key_hash, hint, expires_at, caps, who, utcnow())

    def key_by_hash(self, key_hash: str) -> KeyRecord | None:
        return self._read(identity.key_by_hash, key_hash)

    def key(self, name: str) -> KeyRecord | None:
        return self._read(identity.key, name)

    def keys(self) -> list[KeyRecord]:
        return self._read(identity.keys)

    def revoke_key(self, name: str, who: str) -> bool:
        return self._write(identity.revoke_key, name, who, utcnow())

    def touch_key(self, key_id: int, now: datetime | None = None) -> None:
        self._write(identity.touch_key, key_id, now or utcnow())

    # ---- login attempts ------------------------------------------------------------------------------
    def record_attempt(
        self, username: str, client: str | None, outcome: str, at: datetime | None = None
    ) -> None:
        self._write(identity.record_attempt, at or utcnow(), username, client, outcome)

    def failures_since(
        self, since: datetime, *, username: str | None = None, client: str | None = None
    ) -> list[datetime]:
        return self._read(identity.failures_since, since, username=username, client=client)

    def prune_attempts(self, before: datetime) -> int:
        return self._write(identity.prune_attempts, before)

    # ---- the audit trail -----------------------------------------------------------------------------
    def audit(self, who: str, action: str, detail: str = "", campaign_id: int | None = None) -> None:
        """Record one event now (a change that has no transaction of its own here)."""
        self._write(_audit, who, action, detail, campaign_id, utcnow())

    def campaign_events(self, campaign_id: int) -> list[dict[str, Any]]:
        """`[{"at", "who", "action", "detail"}]` of one campaign, oldest first."""
        return self._read(audit.campaign_events, campaign_id)

    def created_by(self, campaign_id: int) -> str | None:
        return self._read(audit.created_by, campaign_id)

    def events(self, limit: int = 200, before_id: int | None = None) -> list[dict[str, Any]]:
        """The newest events of every kind, newest first."""
        return self._read(audit.events, limit, before_id)

    # ---- changes made by someone ---------------------------------------------------------------------
    def pause_by(self, campaign_id: int, who: str, reason: str = "paused by the user") -> bool:
        return self._write(campaign_to, campaign_id, CampaignTransition.PAUSE, utcnow(), reason, who=who)

    def resume_by(self, campaign_id: int, who: str) -> bool:
        return self._write(lifecycle.resume, campaign_id, utcnow(), who)

    def cancel_by(
        self, campaign_id: int, who: str, reason: str = "cancelled by the user"
    ) -> Cancelled | None:
        return self._write(lifecycle.cancel, campaign_id, reason, utcnow(), who)

    def suppress_by(self, phones: Iterable[str], reason: str, who: str) -> int:
        """`Store.suppress` with its audit event (the numbers and the reason); returns how many were new."""
        return self._write(_suppress_by, {p: reason for p in phones}, who, utcnow())

    def unsuppress_by(self, phones: Iterable[str], who: str) -> int:
        return self._write(_unsuppress_by, list(phones), who, utcnow())

    # ---- daily spend and purging ---------------------------------------------------------------------
    def spent_today(self, principal: str, day: str) -> tuple[int, int]:
        """(rial, parts) committed by the campaigns `principal` ("key:7") started on `day` (Tehran)."""
        return self._read(caps.spent_today, principal, day)

    def caps_of(self, principal: str) -> tuple[int | None, int | None]:
        """The daily caps (rial, parts) of "key:7" or "user:3"; (None, None): none."""
        return self._read(caps.caps_of, principal)

    def purge_due(self, finished_before: datetime) -> list[int]:
        return purge.due(self.engine, finished_before)

    def purge_campaign(self, campaign_id: int, who: str) -> purge.Purged:
        return purge.purge_campaign(self.engine, campaign_id, who, utcnow())

    def rejects_in_use(self) -> set[str]:
        return purge.rejects_in_use(self.engine)
