"""Read models: campaigns with their counts, progress facts, and recipient pages for reports and charts.

Plain reads over the caller's connection, nothing written. A new report query goes here: a function
`(conn, ...) -> records` plus a thin `Store` method that opens the connection (see `Store.campaign`).
Streams are read in pages by id (`recipients_page`, `timeline_page`), each page on its own connection.
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, Row, and_, func, or_, select

from campaigns.records import CampaignView
from campaigns.states import FINAL_RECIPIENT, OPEN_CHUNK, ChunkState, RecipientState
from campaigns.store.sql import campaigns_t, chunks_t, recipients_t

K, R = ChunkState, RecipientState


def campaign(conn: Connection, campaign_id: int) -> CampaignView | None:
    """The campaign with its recipients and chunks counted by state; None when there is no such campaign."""
    row = conn.execute(select(campaigns_t).where(campaigns_t.c.id == campaign_id)).first()
    if row is None:
        return None
    by_state = conn.execute(  # counts and the reported cost in one pass over the campaign's rows
        select(recipients_t.c.state, func.count(), func.sum(recipients_t.c.cost_rial))
        .where(recipients_t.c.campaign_id == campaign_id)
        .group_by(recipients_t.c.state)
    ).all()
    counts = {state: n for state, n, _ in by_state}
    found = view(row, counts, chunk_counts(conn, campaign_id))
    costs = [cost for _, _, cost in by_state if cost is not None]
    found.cost_actual = sum(costs) if costs else None
    if counts.get(R.FAILED) or counts.get(R.BLACKLISTED):
        # failed/blacklisted by a delivery report (recorded by a poll), not refused or failed before sending
        found.reported_failed = conn.execute(
            select(func.count())
            .select_from(recipients_t)
            .where(
                recipients_t.c.campaign_id == campaign_id,
                recipients_t.c.state.in_([R.FAILED, R.BLACKLISTED]),
                recipients_t.c.polls > 0,
            )
        ).scalar_one()
    return found


def actual_cost(conn: Connection, campaign_id: int) -> float | None:
    """Rial the provider reported for the campaign's messages (summed); None when it reported none."""
    r = recipients_t.c
    return conn.execute(select(func.sum(r.cost_rial)).where(r.campaign_id == campaign_id)).scalar_one()


def campaign_costs(conn: Connection, campaign_id: int) -> tuple[int | None, float | None]:
    """(estimated rial at creation, reported rial) of a campaign; see `Store.campaign_costs`.
    Raises NoResultFound when there is no such campaign."""
    estimated = conn.execute(
        select(campaigns_t.c.estimated_rial).where(campaigns_t.c.id == campaign_id)
    ).scalar_one()
    return estimated, actual_cost(conn, campaign_id)


def campaigns(conn: Connection) -> list[CampaignView]:
    """Every campaign in id order, without counts."""
    return [view(r, {}, {}) for r in conn.execute(select(campaigns_t).order_by(campaigns_t.c.id)).all()]


def campaign_state(conn: Connection, campaign_id: int) -> tuple[str, str | None]:
    """(state, reason) alone. Raises NoResultFound when there is no such campaign."""
    row = conn.execute(
        select(campaigns_t.c.state, campaigns_t.c.state_reason).where(campaigns_t.c.id == campaign_id)
    ).one()
    return row.state, row.state_reason


def chunk_counts(conn: Connection, campaign_id: int) -> dict[str, int]:
    """chunk state -> how many of the campaign's chunks are in it."""
    return dict(
        conn.execute(
            select(chunks_t.c.state, func.count())
            .where(chunks_t.c.campaign_id == campaign_id)
            .group_by(chunks_t.c.state)
        ).all()
    )


def recipients_page(conn: Connection, campaign_id: int, after_id: int, limit: int) -> list[Row[Any]]:
    """Up to `limit` recipients of the campaign with id > after_id, in id order: the report's columns,
    and `provider`, the provider of the recipient's chunk when failover moved it (None: the campaign's)."""
    r = recipients_t.c
    return list(
        conn.execute(
            select(
                chunks_t.c.provider,
                r.id,
                r.row,
                r.phone,
                r.state,
                r.provider_message_id,
                r.provider_status,
                r.error,
                r.sent_at,
                r.delivered_at,
                r.fields,
                r.updated_at,
            )
            .select_from(recipients_t.outerjoin(chunks_t, chunks_t.c.id == r.chunk_id))
            .where(r.campaign_id == campaign_id, r.id > after_id)
            .order_by(r.id)
            .limit(limit)
        ).all()
    )


def timeline_page(conn: Connection, campaign_id: int, after_id: int, limit: int) -> list[Row[Any]]:
    """Up to `limit` recipients with id > after_id: (id, state, sent_at, delivered_at, updated_at), for charts."""
    r = recipients_t.c
    return list(
        conn.execute(
            select(r.id, r.state, r.sent_at, r.delivered_at, r.updated_at)
            .where(r.campaign_id == campaign_id, r.id > after_id)
            .order_by(r.id)
            .limit(limit)
        ).all()
    )


def recipient_states(conn: Connection, campaign_id: int) -> dict[str, str]:
    """phone -> state, for tests and small reports."""
    return dict(
        conn.execute(
            select(recipients_t.c.phone, recipients_t.c.state).where(
                recipients_t.c.campaign_id == campaign_id
            )
        ).all()
    )


def unfinished(conn: Connection, campaign_id: int) -> int:
    """Recipients not yet in a final state nor held as unknown."""
    return conn.execute(
        select(func.count())
        .select_from(recipients_t)
        .where(
            recipients_t.c.campaign_id == campaign_id,
            recipients_t.c.state.not_in([*FINAL_RECIPIENT, R.UNKNOWN]),
        )
    ).scalar_one()


def sent_since(conn: Connection, campaign_id: int, since: datetime) -> int:
    """Recipients whose send was recorded at or after `since`: the rate's sample.

    One count over the partial index ix_recipients_campaign_sent (campaign_id, sent_at): it reads
    only the index entries of the last minutes, not the campaign's rows.
    """
    r = recipients_t.c
    return conn.execute(
        select(func.count()).select_from(recipients_t).where(r.campaign_id == campaign_id, r.sent_at >= since)
    ).scalar_one()


def next_retry(conn: Connection, campaign_id: int) -> tuple[int, datetime | None, str | None]:
    """(chunks in retry, the earliest next attempt, that chunk's last error) of a campaign."""
    k = chunks_t.c
    in_retry = and_(k.campaign_id == campaign_id, k.state == K.RETRY)
    n = conn.execute(select(func.count()).select_from(chunks_t).where(in_retry)).scalar_one()
    first = conn.execute(
        select(k.next_attempt_at, k.last_error).where(in_retry).order_by(k.next_attempt_at).limit(1)
    ).first()
    return (n, first.next_attempt_at, first.last_error) if first else (0, None, None)


def view(row: Any, counts: dict[str, int], chunk_counts: dict[str, int]) -> CampaignView:
    """A `campaigns` row as a CampaignView (its `columns` JSON decoded)."""
    return CampaignView(
        id=row.id,
        name=row.name,
        provider=row.provider,
        state=row.state,
        state_reason=row.state_reason,
        recipients=row.recipients,
        rejected=row.rejected,
        chunks=row.chunks,
        parts=row.parts,
        rejects_file=row.rejects_file,
        source_file=row.source_file,
        columns=json.loads(row.columns or "[]"),
        sender=row.sender,
        message=row.message,
        on_unknown=row.on_unknown,
        send_at=row.send_at,
        window=row.window,
        created_at=row.created_at,
        started_at=row.started_at,
        finished_at=row.finished_at,
        counts=counts,
        chunk_counts=chunk_counts,
        test=bool(getattr(row, "test", False)),
        budget_rial=row.budget_rial,
        max_parts=row.max_parts,
        spent_rial=row.spent_rial,
        spent_parts=row.spent_parts,
        cost_estimated=row.estimated_rial,
        campaign_type=getattr(row, "campaign_type", None),
    )


def sending_open(conn: Connection, campaign_id: int) -> int:
    """Chunks of the campaign with sending still ahead (OPEN_CHUNK), plus unknown ones awaiting
    reconciliation (with pending recipients), counted in ONE statement: two reads could miss a chunk
    that reconciliation moved from `unknown` to `queued` between them, and a runner would stop early."""
    k, r = chunks_t.c, recipients_t.c
    unknown_pending = and_(
        k.state == K.UNKNOWN,
        k.id.in_(select(r.chunk_id).where(r.campaign_id == campaign_id, r.state == R.PENDING)),
    )
    return conn.execute(
        select(func.count())
        .select_from(chunks_t)
        .where(k.campaign_id == campaign_id, or_(k.state.in_(list(OPEN_CHUNK)), unknown_pending))
    ).scalar_one()
