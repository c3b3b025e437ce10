"""Reads of the maintained counters (`campaign_counts`, written by `campaigns.store.tally`), the recount from
the rows they must always equal, and folding the writers' shards.

Every read here is an index range over `campaign_counts`' primary key (kind, campaign, bucket, provider,
state, shard) or over the campaigns table, never over a campaign's recipients or chunks: its cost grows with
the number of states, providers, minutes and writers, not with the campaign's size (`bench/reads.py`).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, case, func, literal_column, select, text

from campaigns.progress import ACCEPTED
from campaigns.records import CampaignCosts, ProviderCost
from campaigns.states import AWAITING_REPORT, ChunkState, RecipientState
from campaigns.store.sql import campaigns_t, chunks_t, recipients_t
from campaigns.store.tally import VALUES, CountKind, bucket_of, counts_t
from campaigns.store.tally_stmts import fold_stmt

K, R = ChunkState, RecipientState
FOLD_LOCK = 7270319  # pg_try_advisory_xact_lock key of `fold` (7270312 is the migration's)


@dataclass(frozen=True)
class Tally:
    """One counter: how many rows, their SMS parts, their rial (recipients: reported by the provider, with
    `costed` of them reporting one; chunks: estimated) and, of recipients, how many were polled and their
    estimate in rial (parts at their chunk's rial per part: `value`, and of those polled, `polled_value`)."""

    n: int = 0
    parts: int = 0
    cost: float = 0.0
    costed: int = 0
    polled: int = 0
    value: float = 0.0
    polled_value: float = 0.0


@dataclass(frozen=True)
class CampaignTallies:
    """A campaign's recipients and chunks counted by (provider, state): the counters, or a recount."""

    recipients: dict[tuple[str, str], Tally] = field(default_factory=dict)
    chunks: dict[tuple[str, str], Tally] = field(default_factory=dict)

    def counts(self) -> dict[str, int]:
        """recipient state -> how many (states with none left out)."""
        return _by_state(self.recipients)

    def chunk_counts(self) -> dict[str, int]:
        """chunk state -> how many."""
        return _by_state(self.chunks)

    def by_provider(self) -> dict[str, dict[str, int]]:
        """provider -> recipient state -> how many, each at the provider of its chunk."""
        out: dict[str, dict[str, int]] = {}
        for (provider, state), t in sorted(self.recipients.items()):
            if t.n:
                out.setdefault(provider, {})[state] = t.n
        return out

    def cost_actual(self) -> float | None:
        """Rial the providers reported for the campaign's messages; None when none reported one."""
        costed = [t for t in self.recipients.values() if t.costed]
        return sum(t.cost for t in costed) if costed else None

    def parts_of(self, state: str) -> int:
        """SMS parts of the recipients in `state`, at every provider."""
        return sum(t.parts for (_, s), t in self.recipients.items() if s == state)

    def reported_failed(self) -> int:
        """Failed or blacklisted recipients that a delivery report made so (polled at least once)."""
        return sum(t.polled for (_, s), t in self.recipients.items() if s in (R.FAILED, R.BLACKLISTED))

    def costs(self, estimated: int | None) -> CampaignCosts:
        """The campaign's money by the provider holding each recipient (`campaigns.store.costs`): planned (the
        estimate of all), spent (of those it accepted: the states of `progress.ACCEPTED`, and failed or
        blacklisted by a delivery report), reported (what it said, None when nothing), accepted (how many),
        unsure and unknown (the estimate and the number of those held `unknown`).
        `estimated`: the campaign's estimate at creation; with none and nothing planned, no price was known
        (planned and spent None)."""
        out: dict[str, ProviderCost] = {}
        providers = sorted({p for (p, _), t in self.recipients.items() if t.n})
        for provider in providers:
            mine = {s: t for (p, s), t in self.recipients.items() if p == provider}
            planned = sum(t.value for t in mine.values())
            by_report = [mine[s] for s in (R.FAILED, R.BLACKLISTED) if s in mine]
            spent = sum(mine[s].value for s in ACCEPTED if s in mine) + sum(t.polled_value for t in by_report)
            accepted = sum(mine[s].n for s in ACCEPTED if s in mine) + sum(t.polled for t in by_report)
            reported = [t.cost for t in mine.values() if t.costed]
            held = mine.get(R.UNKNOWN, Tally())  # it could not say whether it sent them
            priced = estimated is not None or bool(planned)
            out[provider] = ProviderCost(
                planned=float(planned) if priced else None,
                spent=float(spent) if priced else None,
                reported=float(sum(reported)) if reported else None,
                accepted=int(accepted),
                unsure=float(held.value) if priced else None,
                unknown=held.n,
            )
        return CampaignCosts(out)


def _by_state(tallies: dict[tuple[str, str], Tally]) -> dict[str, int]:
    out: dict[str, int] = defaultdict(int)
    for (_, state), t in tallies.items():
        out[state] += t.n
    return {state: n for state, n in sorted(out.items()) if n}


def _fill(into: dict[tuple[str, str], Tally], rows: Iterable[Any]) -> None:
    for row in rows:
        into[(row.provider, row.state)] = Tally(
            int(row.n or 0),
            int(row.parts or 0),
            float(row.cost or 0),
            int(getattr(row, "costed", 0) or 0),
            int(getattr(row, "polled", 0) or 0),
            float(getattr(row, "value", 0) or 0),
            float(getattr(row, "polled_value", 0) or 0),
        )


def tallies(conn: Connection, campaign_id: int) -> CampaignTallies:
    """The campaign's counters, summed over the writers' shards: one index range read."""
    return tallies_of(conn, [campaign_id]).get(campaign_id) or CampaignTallies()


def tallies_of(conn: Connection, campaign_ids: list[int] | None = None) -> dict[int, CampaignTallies]:
    """campaign id -> its counters, for these campaigns (all when None), in one read."""
    t = counts_t.c
    q = (
        select(t.campaign_id, t.kind, t.provider, t.state, *(func.sum(t[v]).label(v) for v in VALUES))
        .where(t.kind.in_([CountKind.RECIPIENT, CountKind.CHUNK]))
        .group_by(t.campaign_id, t.kind, t.provider, t.state)
    )
    if campaign_ids is not None:
        q = q.where(t.campaign_id.in_(list(campaign_ids)))
    found: dict[int, CampaignTallies] = defaultdict(CampaignTallies)
    for row in conn.execute(q):
        of = found[row.campaign_id]
        _fill(of.recipients if row.kind == CountKind.RECIPIENT else of.chunks, [row])
    return dict(found)


def recount(conn: Connection, campaign_id: int) -> CampaignTallies:
    """The same numbers counted from the campaign's rows (GROUP BY over recipients and chunks): what the
    counters must equal after every commit. A scan of the campaign: for tests and checks, never a refresh."""
    r, k, c = recipients_t.c, chunks_t.c, campaigns_t.c
    provider = func.coalesce(k.provider, c.provider)
    rate = k.cost_rial * literal_column("1.0") / func.nullif(k.parts, 0)  # rial per part of the chunk
    recipients = conn.execute(
        select(
            provider.label("provider"),
            r.state,
            func.count().label("n"),
            func.sum(r.parts).label("parts"),
            func.sum(r.cost_rial).label("cost"),
            func.count(r.cost_rial).label("costed"),
            func.sum(case((r.polls > 0, 1), else_=0)).label("polled"),
            func.sum(r.parts * rate).label("value"),
            func.sum(case((r.polls > 0, r.parts * rate))).label("polled_value"),
        )
        .select_from(
            recipients_t.join(campaigns_t, c.id == r.campaign_id).outerjoin(chunks_t, k.id == r.chunk_id)
        )
        .where(r.campaign_id == campaign_id)
        .group_by(provider, r.state)
    ).all()
    chunks = conn.execute(
        select(
            provider.label("provider"),
            k.state,
            func.count().label("n"),
            func.sum(k.parts).label("parts"),
            func.sum(k.cost_rial).label("cost"),
        )
        .select_from(chunks_t.join(campaigns_t, c.id == k.campaign_id))
        .where(k.campaign_id == campaign_id)
        .group_by(provider, k.state)
    ).all()
    found = CampaignTallies()
    _fill(found.recipients, recipients)
    _fill(found.chunks, chunks)
    return found


def sent_since(conn: Connection, campaign_id: int, since: datetime) -> tuple[int, int]:
    """(sends recorded, the epoch second they are counted from): the `sent` counters of the minutes from
    the one `since` falls in (so the sample starts up to a minute before `since`)."""
    t = counts_t.c
    start = bucket_of(since)
    n = conn.execute(
        select(func.coalesce(func.sum(t.n), 0)).where(
            t.kind == CountKind.SENT, t.campaign_id == campaign_id, t.bucket >= start
        )
    ).scalar_one()
    return int(n), start


@dataclass(frozen=True)
class StoreCounts:
    """The whole store in numbers, for gauges (a Prometheus collector reads this at scrape time).

    recipients: (provider, state) -> how many; cost_rial: provider -> rial the provider reported; estimated_rial:
    provider -> the estimate of the chunks it holds; campaigns: campaign state -> how many; pending and
    awaiting (a delivery report) recipients; oldest_queued_at: when the longest-waiting queued chunk was
    published (None: none queued)."""

    recipients: dict[tuple[str, str], int]
    cost_rial: dict[str, float]
    estimated_rial: dict[str, float]
    campaigns: dict[str, int]
    pending: int
    awaiting: int
    oldest_queued_at: datetime | None


def store_counts(conn: Connection) -> StoreCounts:
    """`StoreCounts` from the counters (grouped over campaigns: a scan of `campaign_counts`' recipient and
    chunk rows, a few per campaign), the campaigns table and one index read of the chunks."""
    t, k = counts_t.c, chunks_t.c
    rows = conn.execute(
        select(t.kind, t.provider, t.state, func.sum(t.n).label("n"), func.sum(t.cost).label("cost"))
        .where(t.kind.in_([CountKind.RECIPIENT, CountKind.CHUNK]))
        .group_by(t.kind, t.provider, t.state)
    ).all()
    recipients = {(r.provider, r.state): int(r.n) for r in rows if r.kind == CountKind.RECIPIENT and r.n}
    cost: dict[str, float] = defaultdict(float)
    estimated: dict[str, float] = defaultdict(float)
    for r in rows:
        if r.kind == CountKind.RECIPIENT:
            cost[r.provider] += float(r.cost or 0)
        elif r.state != K.REROUTED:
            estimated[r.provider] += float(r.cost or 0)
    c = campaigns_t.c
    by_state = dict(conn.execute(select(c.state, func.count()).group_by(c.state)).all())
    oldest = conn.execute(
        select(k.queued_at)
        .where(k.state == K.QUEUED, k.queued_at.is_not(None))
        .order_by(k.queued_at)
        .limit(1)
    ).scalar_one_or_none()
    return StoreCounts(
        recipients=recipients,
        cost_rial=dict(cost),
        estimated_rial=dict(estimated),
        campaigns={s: int(n) for s, n in by_state.items()},
        pending=sum(n for (_, s), n in recipients.items() if s == R.PENDING),
        awaiting=sum(n for (_, s), n in recipients.items() if s in AWAITING_REPORT),
        oldest_queued_at=oldest,
    )


def fold(conn: Connection, limit: int = 10_000) -> int:
    """Fold up to `limit` counter rows of the writers' shards into shard 0 (PostgreSQL; SQLite has one shard).
    Returns how many rows it folded; 0 when another fold holds the lock. The sums do not change."""
    if conn.dialect.name != "postgresql":
        return 0
    if not conn.execute(text("SELECT pg_try_advisory_xact_lock(:k)"), {"k": FOLD_LOCK}).scalar_one():
        return 0
    return int(conn.execute(fold_stmt(limit)).scalar_one())
