"""What a campaign costs, by the provider that sent: planned, spent so far, and reported by the provider.

One read, computed per chunk: each chunk's estimate (`chunks.cost_rial`, its SMS parts at its provider's
price) gives a rial-per-part rate that shrinking, splitting and failover all keep (they divide the cost
in proportion to the parts, `campaigns.store.sending._share`); a recipient is worth its parts at its
chunk's rate. `planned` sums every recipient of the provider, `spent` those it accepted (the states of
`campaigns.progress.ACCEPTED`, and failed/blacklisted by a delivery report), `reported` what the
provider itself said, and `unsure` the recipients held `unknown` (it could not say whether it sent them)
(`recipients.cost_rial`, Ghasedak's status `price`, Amoot's `Cost`: each in the
provider's own unit, `workers.providers.base.ProviderClient.cost_unit`).

A campaign cancelled before sending anything has spent nothing, whatever it planned. A function over the
caller's connection, like `reads.py`; `Store.costs` opens it.
"""

from __future__ import annotations

from sqlalchemy import Connection, and_, case, func, literal, or_, select

from campaigns.progress import ACCEPTED
from campaigns.records import CampaignCosts, ProviderCost
from campaigns.states import RecipientState
from campaigns.store.sql import campaigns_t, chunks_t, recipients_t

__all__ = ["costs"]

R = RecipientState


def costs(conn: Connection, campaign_id: int) -> CampaignCosts:
    """The campaign's money by provider (module docstring); empty for a campaign with no recipients.
    `planned` and `spent` are None where no price was known when the campaign was stored."""
    r, k, c = recipients_t.c, chunks_t.c, campaigns_t.c
    accepted = or_(r.state.in_(list(ACCEPTED)), and_(r.state.in_([R.FAILED, R.BLACKLISTED]), r.polls > 0))
    per_chunk = (
        select(
            r.chunk_id.label("chunk_id"),
            func.sum(r.parts).label("parts"),
            func.sum(case((accepted, r.parts), else_=0)).label("accepted_parts"),
            func.sum(case((accepted, 1), else_=0)).label("accepted"),
            func.sum(case((r.state == R.UNKNOWN, r.parts), else_=0)).label("unknown_parts"),
            func.sum(case((r.state == R.UNKNOWN, 1), else_=0)).label("unknown"),
            func.sum(r.cost_rial).label("reported"),
        )
        .where(r.campaign_id == campaign_id)
        .group_by(r.chunk_id)
        .subquery("per_chunk")
    )
    rate = k.cost_rial * literal(1.0) / func.nullif(k.parts, 0)  # rial per SMS part of this chunk
    provider = func.coalesce(k.provider, c.provider)
    rows = conn.execute(
        select(
            provider.label("provider"),
            func.sum(per_chunk.c.parts * rate).label("planned"),
            func.sum(per_chunk.c.accepted_parts * rate).label("spent"),
            func.sum(per_chunk.c.reported).label("reported"),
            func.sum(per_chunk.c.accepted).label("accepted"),
            func.sum(per_chunk.c.unknown_parts * rate).label("unsure"),
            func.sum(per_chunk.c.unknown).label("unknown"),
            func.max(c.estimated_rial).label("estimated"),
        )
        .select_from(
            per_chunk.join(chunks_t, k.id == per_chunk.c.chunk_id).join(campaigns_t, c.id == k.campaign_id)
        )
        .group_by(provider)
    ).all()
    out: dict[str, ProviderCost] = {}
    for row in rows:
        priced = row.estimated is not None or bool(row.planned)
        out[row.provider] = ProviderCost(
            planned=float(row.planned or 0) if priced else None,
            spent=float(row.spent or 0) if priced else None,
            reported=None if row.reported is None else float(row.reported),
            accepted=int(row.accepted or 0),
            unsure=float(row.unsure or 0) if priced else None,
            unknown=int(row.unknown or 0),
        )
    return CampaignCosts(out)
