"""Read models: campaigns with their counts, progress facts, and recipient pages for reports and charts.

Counts come from the maintained counters (`campaigns.store.counts`), never from a scan of a campaign's rows.

Plain reads over the caller's connection, nothing written. A new report query goes here: a function
`(conn, ...) -> records` plus a thin `Store` method that opens the connection (see `Store.campaign`).
Streams are read in pages by id (`recipients_page`, `timeline_page`), each page on its own connection.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Connection, Row, exists, func, select

from campaigns.records import CampaignView
from campaigns.states import FINAL_RECIPIENT, OPEN_CHUNK, ChunkState, RecipientState
from campaigns.store import counts
from campaigns.store.sql import campaigns_t, chunks_t, recipients_t
from campaigns.store.tally import CountKind, counts_t

K, R = ChunkState, RecipientState


def campaign(conn: Connection, campaign_id: int) -> CampaignView | None:
    """The campaign with its recipients and chunks counted by state; None when there is no such campaign.

    Two index reads whatever the campaign's size: its row, and its maintained counters (`counts.tallies`).
    """
    row = conn.execute(select(campaigns_t).where(campaigns_t.c.id == campaign_id)).first()
    if row is None:
        return None
    return counted_view(row, counts.tallies(conn, campaign_id))


def counted_campaigns(conn: Connection, ids: list[int] | None = None) -> list[CampaignView]:
    """The campaigns `ids` (all when None) in id order, each with its counts, as `campaign` gives them: two
    reads whatever the number of campaigns (their rows; their counters, grouped by campaign)."""
    q = select(campaigns_t).order_by(campaigns_t.c.id)
    if ids is not None:
        q = q.where(campaigns_t.c.id.in_(list(ids)))
    rows = conn.execute(q).all()
    counted = counts.tallies_of(conn, ids)
    return [counted_view(row, counted.get(row.id) or counts.CampaignTallies()) for row in rows]


def counted_view(row: Any, counted: counts.CampaignTallies) -> CampaignView:
    """A campaigns row as a CampaignView with its counters: counts, chunks, costs, by provider."""
    found = view(row, counted.counts(), counted.chunk_counts())
    found.cost_actual = counted.cost_actual()
    # failed/blacklisted by a delivery report (recorded by a poll), not refused or failed before sending
    found.reported_failed = counted.reported_failed()
    found.cancelled_parts = counted.parts_of(R.CANCELLED)  # never sent: not in what a summary counts
    found.by_provider = counted.by_provider()
    found.costs = counted.costs(row.estimated_rial)
    return found


def actual_cost(conn: Connection, campaign_id: int) -> float | None:
    """Rial the provider reported for the campaign's messages (summed); None when it reported none."""
    return counts.tallies(conn, campaign_id).cost_actual()


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
    """chunk state -> how many of the campaign's chunks are in it (its counters)."""
    return counts.tallies(conn, campaign_id).chunk_counts()


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
    """Recipients not yet in a final state nor held as unknown (its counters)."""
    settled = {*FINAL_RECIPIENT, R.UNKNOWN}
    return sum(n for state, n in counts.tallies(conn, campaign_id).counts().items() if state not in settled)


def recent_sends(conn: Connection, campaign_id: int, since: datetime) -> tuple[int, datetime]:
    """(sends recorded, since when): the rate's sample from the campaign's per-minute `sent` counters, from the
    start of the minute `since` falls in (up to a minute earlier than `since`). A few counter rows, whatever
    the rate: at 5,000 sends a second the last five minutes are 1.5 M index entries for `sent_since`."""
    n, start = counts.sent_since(conn, campaign_id, since)
    return n, datetime.fromtimestamp(start, UTC)


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
    """(chunks in retry, the earliest next attempt, that chunk's last error) of a campaign: its counters and
    the first entry of ix_chunks_campaign_state_next."""
    k = chunks_t.c
    n = counts.tallies(conn, campaign_id).chunk_counts().get(K.RETRY, 0)
    first = conn.execute(
        select(k.next_attempt_at, k.last_error)
        .where(k.campaign_id == campaign_id, k.state == K.RETRY)
        .order_by(k.next_attempt_at)
        .limit(1)
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
    """Chunks of the campaign with sending still ahead (OPEN_CHUNK, from its counters), plus unknown ones awaiting
    reconciliation (with pending recipients), counted in ONE statement: two reads could miss a chunk that
    reconciliation moved from `unknown` to `queued` between them, and a runner would stop early."""
    k, t = chunks_t.c, counts_t.c
    open_chunks = (
        select(func.coalesce(func.sum(t.n), 0))
        .where(t.kind == CountKind.CHUNK, t.campaign_id == campaign_id, t.state.in_(list(OPEN_CHUNK)))
        .scalar_subquery()
    )
    unknown_pending = (
        select(func.count())
        .select_from(chunks_t)
        .where(k.campaign_id == campaign_id, k.state == K.UNKNOWN, has_pending(k.id))
        .scalar_subquery()
    )
    return int(conn.execute(select(open_chunks + unknown_pending)).scalar_one())


def has_pending(chunk_id: Any) -> Any:
    """EXISTS a pending recipient in the chunk: one lookup of ix_recipients_chunk per chunk asked about (an
    `IN (SELECT chunk_id … WHERE state = 'pending')` could hash every pending recipient of the store)."""
    r = recipients_t.c
    return exists(select(r.id).where(r.chunk_id == chunk_id, r.state == R.PENDING))
