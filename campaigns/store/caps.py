"""Daily spending caps of users and API keys, held like a campaign's budget: charged in the chunk claim's
transaction, given back by a refund.

A campaign started by a user or a key carries `spend_principal` ("key:7", "user:3") and `spend_day` (the
Tehran day it was created). Each claim of one of its chunks adds the chunk's estimated rial and parts to
the `daily_spend` row of (principal, day), in the claim's transaction, on the condition that the user's
or key's caps (read from its row at that moment) still hold: so every campaign a capped key started that
day counts against one cap, and workers racing to claim never cross it together (the upsert's row lock
serialises them, and PostgreSQL re-checks the condition on the newest row; SQLite's BEGIN IMMEDIATE
serialises whole transactions). A claim that would cross the cap raises `DailyCapReached`: the caller
rolls the claim back (its campaign charge and compare-and-set with it) and pauses the campaign with the
reason (`pause_at_daily_cap`). Lock order: campaign, chunk, then the daily row, in claims and refunds
alike, so they cannot deadlock.

A rial cap needs priced chunks: a campaign whose principal has one is created only when every part has a
price (`CampaignSpec.needs_prices`), as for `--budget`.
"""

from __future__ import annotations

from datetime import datetime
from functools import cache
from typing import Any

from sqlalchemy import Connection, and_, bindparam, case, func, or_, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert

from campaigns.identity import cap_holds, daily_cap_reason
from campaigns.states import CampaignTransition
from campaigns.store.identity_tables import api_keys_t, daily_spend_t, users_t
from campaigns.store.sql import campaigns_t, chunks_t
from campaigns.store.transitions import campaign_to

d, k, c = daily_spend_t.c, chunks_t.c, campaigns_t.c


class DailyCapReached(Exception):
    """The claim would cross the daily cap of the campaign's user or key: roll it back, then pause
    `campaign_id` with `reason` (`pause_at_daily_cap`)."""

    def __init__(self, campaign_id: int, reason: str) -> None:
        super().__init__(reason)
        self.campaign_id = campaign_id
        self.reason = reason


def _caps(column: str) -> Any:
    """The cap of the campaign's principal: its key's when a key started it, else its user's."""
    return case((c.created_by_key_id.is_not(None), api_keys_t.c[column]), else_=users_t.c[column]).label(
        column.removeprefix("daily_")
    )


def _info() -> Any:
    """The chunk's principal, day, estimated rial and parts, and the principal's caps (no row: no principal)."""
    return (
        select(
            c.id.label("campaign_id"),
            c.spend_principal.label("principal"),
            c.spend_day.label("day"),
            k.cost_rial.label("cost"),
            k.parts.label("parts"),
            _caps("daily_cap_rial"),
            _caps("daily_cap_parts"),
        )
        .select_from(
            chunks_t.join(campaigns_t, c.id == k.campaign_id)
            .outerjoin(api_keys_t, api_keys_t.c.id == c.created_by_key_id)
            .outerjoin(users_t, users_t.c.id == c.created_by_user_id)
        )
        .where(k.id == bindparam("chunk_id"), c.spend_principal.is_not(None))
    )


@cache
def _pg_charge() -> Any:
    """PostgreSQL, one statement: the chunk's facts, and the upsert of its charge when the caps hold.
    Returns no row (no principal) or the facts with `charged` (1 or 0)."""
    info = _info().cte("info")
    fits = and_(
        or_(info.c.cap_rial.is_(None), info.c.cost <= info.c.cap_rial),
        or_(info.c.cap_parts.is_(None), info.c.parts <= info.c.cap_parts),
    )
    ins = pg_insert(daily_spend_t).from_select(
        ["principal", "day", "spent_rial", "spent_parts", "cap_rial", "cap_parts"],
        select(
            info.c.principal, info.c.day, info.c.cost, info.c.parts, info.c.cap_rial, info.c.cap_parts
        ).where(fits),
    )
    ex = ins.excluded
    upsert = ins.on_conflict_do_update(
        index_elements=[d.principal, d.day],
        set_={
            "spent_rial": d.spent_rial + ex.spent_rial,
            "spent_parts": d.spent_parts + ex.spent_parts,
            "cap_rial": ex.cap_rial,
            "cap_parts": ex.cap_parts,
        },
        where=and_(
            or_(ex.cap_rial.is_(None), d.spent_rial + ex.spent_rial <= ex.cap_rial),
            or_(ex.cap_parts.is_(None), d.spent_parts + ex.spent_parts <= ex.cap_parts),
        ),
    ).returning(d.principal)
    up = upsert.cte("up")
    charged = select(func.count()).select_from(up).scalar_subquery().label("charged")
    return select(*info.c, charged)


@cache
def _info_stmt() -> Any:
    return _info()


def charge_daily(conn: Connection, chunk_id: int) -> None:
    """Charge a just-claimed chunk to its campaign's daily spend (nothing when no user or key started it).
    Raises DailyCapReached when the principal's cap would be crossed (the caller rolls back)."""
    if conn.dialect.name == "postgresql":
        row = conn.execute(_pg_charge(), {"chunk_id": chunk_id}).first()
        if row is None or row.charged:
            return
    else:  # SQLite: BEGIN IMMEDIATE serialises the transactions, so read, decide, write
        row = conn.execute(_info_stmt(), {"chunk_id": chunk_id}).first()
        if row is None:
            return
        spent = conn.execute(
            select(d.spent_rial, d.spent_parts).where(d.principal == row.principal, d.day == row.day)
        ).first()
        have_rial, have_parts = (spent.spent_rial, spent.spent_parts) if spent else (0, 0)
        if cap_holds(have_rial, row.cost, row.cap_rial) and cap_holds(have_parts, row.parts, row.cap_parts):
            values = {"cap_rial": row.cap_rial, "cap_parts": row.cap_parts}
            if spent is None:
                conn.execute(
                    daily_spend_t.insert().values(
                        principal=row.principal,
                        day=row.day,
                        spent_rial=row.cost,
                        spent_parts=row.parts,
                        **values,
                    )
                )
            else:
                conn.execute(
                    update(daily_spend_t)
                    .where(d.principal == row.principal, d.day == row.day)
                    .values(
                        spent_rial=d.spent_rial + row.cost, spent_parts=d.spent_parts + row.parts, **values
                    )
                )
            return
    raise DailyCapReached(row.campaign_id, _reason(conn, row))


def _reason(conn: Connection, row: Any) -> str:
    """`daily cap of key crm reached: 10,000 of 10,000 rial`, from the daily row as it stands."""
    kind, _, ident = row.principal.partition(":")
    table = api_keys_t if kind == "key" else users_t
    name = conn.execute(select(table.c.name).where(table.c.id == int(ident))).scalar_one_or_none()
    spent = conn.execute(
        select(d.spent_rial, d.spent_parts).where(d.principal == row.principal, d.day == row.day)
    ).first()
    rial, parts = (spent.spent_rial, spent.spent_parts) if spent else (0, 0)
    return daily_cap_reason(
        f"{kind} {name or ident}", rial, row.cap_rial, parts, row.cap_parts, row.cost, row.parts
    )


@cache
def _refund_stmt() -> Any:
    return (
        update(daily_spend_t)
        .where(
            k.id == bindparam("chunk_id"),
            c.id == k.campaign_id,
            d.principal == c.spend_principal,
            d.day == c.spend_day,
        )
        .values(spent_rial=d.spent_rial - k.cost_rial, spent_parts=d.spent_parts - k.parts)
    )


def refund_daily(conn: Connection, chunk_id: int) -> None:
    """Give a chunk's estimated rial and parts back to its campaign's daily spend (with the campaign's refund)."""
    conn.execute(_refund_stmt(), {"chunk_id": chunk_id})


def pause_at_daily_cap(conn: Connection, campaign_id: int, reason: str, now: datetime) -> bool:
    """Pause a running campaign whose next chunk would cross its user's or key's daily cap (the audit
    records it, by `system`, with the reason)."""
    return campaign_to(conn, campaign_id, CampaignTransition.PAUSE, now, reason)


def spent_today(conn: Connection, principal: str, day: str) -> tuple[int, int]:
    """(rial, parts) committed by the campaigns `principal` started on `day`."""
    row = conn.execute(
        select(d.spent_rial, d.spent_parts).where(d.principal == principal, d.day == day)
    ).first()
    return (row.spent_rial, row.spent_parts) if row else (0, 0)


def caps_of(conn: Connection, principal: str) -> tuple[int | None, int | None]:
    """The daily caps (rial, parts) of "key:7" or "user:3" now; (None, None) when it has none or is gone."""
    kind, _, ident = principal.partition(":")
    table = api_keys_t if kind == "key" else users_t
    row = conn.execute(
        select(table.c.daily_cap_rial, table.c.daily_cap_parts).where(table.c.id == int(ident))
    ).first()
    return (row.daily_cap_rial, row.daily_cap_parts) if row else (None, None)
