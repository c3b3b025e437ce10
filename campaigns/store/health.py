"""The circuits of provider accounts (`account_health`; failover's circuits): read, a failure, a success, the probe.

Every write is one conditional statement over the caller's transaction, so racing workers agree:
the row is created on first use (insert, ignored when it exists), and the probe of an open circuit is
taken by compare-and-set (only one worker's update matches).
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime, timedelta

from sqlalchemy import Connection, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from campaigns.circuit import CircuitState, Health
from campaigns.models import AccountHealth

health_t = AccountHealth.__table__
S = CircuitState


def _ensure(conn: Connection, account: str, provider: str, now: datetime) -> None:
    insert = pg_insert if conn.dialect.name == "postgresql" else sqlite_insert
    conn.execute(
        insert(health_t)
        .values(account=account, provider=provider, circuit=S.CLOSED, failures=0, updated_at=now)
        .on_conflict_do_nothing(index_elements=["account"])
    )


def read_health(conn: Connection, accounts: Iterable[str]) -> dict[str, Health]:
    """account -> its circuit; accounts without a row are absent (closed)."""
    wanted = list(set(accounts))
    if not wanted:
        return {}
    h = health_t.c
    rows = conn.execute(select(health_t).where(h.account.in_(wanted))).all()
    return {
        r.account: Health(r.account, r.provider, S(r.circuit), r.failures, r.reason, r.opened_at, r.probe_at)
        for r in rows
    }


def all_health(conn: Connection) -> list[Health]:
    """Every account's circuit (for `providers check` and `status`)."""
    rows = conn.execute(select(health_t).order_by(health_t.c.provider, health_t.c.account)).all()
    return [
        Health(r.account, r.provider, S(r.circuit), r.failures, r.reason, r.opened_at, r.probe_at)
        for r in rows
    ]


def open_circuit(
    conn: Connection, account: str, provider: str, reason: str, cooldown: float, now: datetime
) -> None:
    """An account-level error: the circuit opens (again) with `reason`; a probe is due after `cooldown` s."""
    _ensure(conn, account, provider, now)
    conn.execute(
        update(health_t)
        .where(health_t.c.account == account)
        .values(
            circuit=S.OPEN,
            reason=reason,
            opened_at=now,
            probe_at=now + timedelta(seconds=cooldown),
            updated_at=now,
        )
    )


def record_failure(
    conn: Connection, account: str, provider: str, reason: str, threshold: int, cooldown: float, now: datetime
) -> bool:
    """One more transient failure in a row; the circuit opens at `threshold` (or at once when it was
    half-open: the probe failed). True when it is open now."""
    _ensure(conn, account, provider, now)
    h = health_t.c
    row = conn.execute(
        update(health_t)
        .where(h.account == account)
        .values(failures=h.failures + 1, updated_at=now)
        .returning(h.failures, h.circuit)
    ).one()
    if row.circuit == S.OPEN:
        return True
    if row.failures >= threshold or row.circuit == S.HALF_OPEN:
        open_circuit(
            conn, account, provider, f"{row.failures} transient failures in a row: {reason}", cooldown, now
        )
        return True
    return False


def record_success(conn: Connection, account: str, started: datetime, now: datetime) -> None:
    """A send that began at `started` went through: the run of failures ends, and the circuit closes if
    it opened before that send began (a probe, or a send after the cooldown). A send already in flight
    when another one opened the circuit (credit ran out meanwhile) closes nothing. No write when
    there is nothing to change."""
    h = health_t.c
    stale = (h.circuit != S.CLOSED) & (h.opened_at > started)
    conn.execute(
        update(health_t)
        .where(h.account == account, (h.circuit != S.CLOSED) | (h.failures > 0), ~stale)
        .values(circuit=S.CLOSED, failures=0, reason=None, opened_at=None, probe_at=None, updated_at=now)
    )


def take_probe(conn: Connection, account: str, lease: float, now: datetime) -> bool:
    """Compare-and-set: an open (or stale half-open) circuit whose probe is due -> half-open, the
    probe's next chance `lease` s ahead. True for the one worker that took it."""
    h = health_t.c
    taken = conn.execute(
        update(health_t)
        .where(h.account == account, h.circuit != S.CLOSED, h.probe_at <= now)
        .values(circuit=S.HALF_OPEN, probe_at=now + timedelta(seconds=lease), updated_at=now)
    )
    return taken.rowcount == 1


def probe_now(conn: Connection, providers: Iterable[str], now: datetime) -> int:
    """`resume`: every open circuit of these providers may be probed at once; returns how many."""
    h = health_t.c
    names = list(providers)
    if not names:
        return 0
    return conn.execute(
        update(health_t)
        .where(h.provider.in_(names), h.circuit != S.CLOSED)
        .values(probe_at=now, updated_at=now)
    ).rowcount
