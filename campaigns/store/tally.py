"""The maintained counters' SQL (`campaign_counts`, campaigns/models.py `CampaignCount`): pure builders.

A write that changes what is counted (a recipient's or a chunk's state, a recipient's reported cost or
polls, the chunk a recipient is in, a chunk's parts or estimate) carries its counters in its own
transaction, so a read of the counters agrees with the rows at every commit:

- `counted_pg` / `counted_sqlite`: the write's rows as they are before it (the pre-image: old and new
  state, cost, polls and chunk per row, computed from the update's own SET expressions) give one delta
  per (kind, campaign, provider, state): minus the old, plus the new. PostgreSQL: ONE statement,
  `WITH pre AS (SELECT … FOR UPDATE OF <table>), upd AS (UPDATE … WHERE id IN (SELECT id FROM pre)),
  tally AS (INSERT INTO campaign_counts … ON CONFLICT DO UPDATE) SELECT … FROM upd`: the lock makes the
  pre-image the version the update writes over, even when another transaction changed a row in between.
  SQLite (one writer, BEGIN IMMEDIATE): the same INSERT from the pre-image, then the update; two statements.
- `upsert(deltas)`: add delta rows, grouped per counter, into the writer's shard (`pg_backend_pid()` on
  PostgreSQL, 0 on SQLite): concurrent workers of one campaign write distinct rows and never wait on each
  other's counters (`bench/send_path.py` measures it); reads sum the shards, and
  `tally_stmts.fold_stmt` (the housekeeping pass) folds them into shard 0.

The per-chunk cost on the send path is therefore no statement more on PostgreSQL and one more per
transition on SQLite, whatever the chunk's size; no Python work per recipient.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import (
    ColumnElement,
    Select,
    String,
    Update,
    case,
    func,
    literal,
    literal_column,
    or_,
    select,
    true,
    union_all,
)
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from campaigns.models import CampaignCount
from campaigns.store.sql import campaigns_t, chunks_t, recipients_t

counts_t = CampaignCount.__table__
KEY = ("kind", "campaign_id", "bucket", "provider", "state", "shard")
VALUES = ("n", "parts", "cost", "costed", "polled", "value", "polled_value")  # a counter's numbers
# what a delta row carries: `value` and `polled_value` are its parts (all, polled) at its chunk's rial per
# part, plus `fixed_value` where the rows' estimate is given (a new campaign's, summed from its blocks)
DELTAS = ("n", "parts", "polled_parts", "cost", "costed", "polled", "fixed_value")
BUCKET_SECONDS = 60  # the rate's resolution: sends are counted per minute
# False only for bench/send_path.py, set before any statement is built: every writer shares shard 0.
SHARDED = True


class CountKind(StrEnum):
    """What a `campaign_counts` row counts."""

    RECIPIENT = "recipient"  # recipients by provider and state
    CHUNK = "chunk"  # chunks by provider and state
    SENT = "sent"  # sends recorded per minute (`bucket`) by provider: the rate


def bucket_of(at: datetime) -> int:
    """The start of the minute `at` falls in, in epoch seconds: the `sent` row a send at `at` is counted in."""
    return int(at.timestamp()) // BUCKET_SECONDS * BUCKET_SECONDS


def const(value: str | int) -> ColumnElement[Any]:
    """A constant written into the SQL (our own state names and numbers, never user input)."""
    if isinstance(value, int):
        return literal_column(str(int(value)))
    assert all(ch.isalnum() or ch == "_" for ch in value), value
    return literal_column(f"'{value}'", String)


def _flag(condition: ColumnElement[bool], sign: int = 1) -> ColumnElement[int]:
    return case((condition, sign), else_=0)


def _shard(sqlite: bool) -> ColumnElement[Any]:
    return func.pg_backend_pid() if SHARDED and not sqlite else const(0)


def upsert(deltas: Select[Any], sqlite: bool) -> Any:
    """`INSERT INTO campaign_counts … ON CONFLICT DO UPDATE SET n = n + excluded.n, …` of `deltas` summed per
    counter, into this writer's shard. `deltas` has the columns kind, campaign_id, chunk_id, bucket, state and
    the DELTAS; the provider is the chunk's own (failover), else the campaign's (chunk_id NULL: the campaign's),
    and a recipient's estimate is its parts at the chunk's rial per part (`cost_rial` / `parts`), read by the
    same statement. Counters whose deltas sum to nothing are not written."""
    d = deltas.subquery("d")
    # summed per chunk first (one chunk's send is a few groups, not a row per recipient), then the provider
    # and rate of each group's chunk are looked up once
    by_chunk = (
        select(
            d.c.kind,
            d.c.campaign_id,
            d.c.chunk_id,
            d.c.bucket,
            d.c.state,
            *(func.sum(d.c[v]).label(v) for v in DELTAS),
        )
        .group_by(d.c.kind, d.c.campaign_id, d.c.chunk_id, d.c.bucket, d.c.state)
        .subquery("g")
    )
    k, c = chunks_t.alias("dk"), campaigns_t.alias("dc")
    g = by_chunk.c
    provider = func.coalesce(k.c.provider, c.c.provider)
    rate = k.c.cost_rial * literal_column("1.0") / func.nullif(k.c.parts, 0)
    recipient = g.kind == const(CountKind.RECIPIENT)
    sums = {
        "n": func.sum(g.n),
        "parts": func.sum(g.parts),
        "cost": func.sum(g.cost),
        "costed": func.sum(g.costed),
        "polled": func.sum(g.polled),
        "value": func.coalesce(func.sum(case((recipient, g.parts * rate))), 0.0) + func.sum(g.fixed_value),
        "polled_value": func.coalesce(func.sum(case((recipient, g.polled_parts * rate))), 0.0),
    }
    grouped = (
        select(
            g.kind,
            g.campaign_id,
            g.bucket,
            provider.label("provider"),
            g.state,
            _shard(sqlite).label("shard"),
            *(sums[v].label(v) for v in VALUES),
        )
        .select_from(by_chunk.join(c, c.c.id == g.campaign_id).outerjoin(k, k.c.id == g.chunk_id))
        .where(true())  # SQLite: an upsert's SELECT needs a WHERE (its parser's ON ambiguity)
        .group_by(g.kind, g.campaign_id, g.bucket, provider, g.state)
        .having(or_(*(sums[v] != 0 for v in VALUES)))
    )
    ins = (sqlite_insert if sqlite else pg_insert)(counts_t).from_select([*KEY, *VALUES], grouped)
    return ins.on_conflict_do_update(
        index_elements=list(KEY), set_={v: counts_t.c[v] + ins.excluded[v] for v in VALUES}
    )


# ---- pre-images: each row of a write as it is before it and as the write leaves it -------------------------
def recipient_pre(
    where: Iterable[ColumnElement[bool]],
    *,
    source: Any = None,
    new_state: Any = None,
    new_cost: Any = None,
    polled: bool = False,
    new_chunk: Any = None,
) -> Select[Any]:
    """Recipients matching `where` (joined to `source` when given): old and new state, reported cost, polls
    and chunk. Unset `new_*`: unchanged; `polled`: the write counts a poll."""
    r = recipients_t.c
    base = recipients_t if source is None else recipients_t.join(source, true())
    return (
        select(
            r.id,
            r.campaign_id,
            r.parts,
            r.chunk_id.label("old_chunk"),
            r.state.label("old_state"),
            r.cost_rial.label("old_cost"),
            r.polls.label("old_polls"),
            (r.chunk_id if new_chunk is None else new_chunk).label("new_chunk"),
            (r.state if new_state is None else new_state).label("new_state"),
            (r.cost_rial if new_cost is None else new_cost).label("new_cost"),
            (r.polls + 1 if polled else r.polls).label("new_polls"),
        )
        .select_from(base)
        .where(*where)
    )


def chunk_pre(where: Iterable[ColumnElement[bool]], new_state: str) -> Select[Any]:
    """Chunks matching `where`, moving to `new_state` (their parts and estimate unchanged)."""
    k = chunks_t.c
    return select(
        k.id,
        k.campaign_id,
        k.parts,
        k.cost_rial,
        k.state.label("old_state"),
        const(new_state).label("new_state"),
    ).where(*where)


def recipient_deltas(pre: Any, sent_bucket: Any = None) -> Select[Any]:
    """Minus the rows' old counters, plus their new ones; with `sent_bucket`, one send each in that minute.
    The rows are first summed per (campaign, old and new chunk, old and new state): a chunk's send is one or
    a few such groups, so what follows handles a few rows, not one per recipient."""
    p = pre.c
    key = (p.campaign_id, p.old_chunk, p.new_chunk, p.old_state, p.new_state)
    g = (
        select(
            *key,
            func.count().label("n"),
            func.sum(p.parts).label("parts"),
            func.sum(_flag(p.old_polls > 0) * p.parts).label("old_polled_parts"),
            func.sum(_flag(p.new_polls > 0) * p.parts).label("new_polled_parts"),
            func.sum(func.coalesce(p.old_cost, 0.0)).label("old_cost"),
            func.count(p.old_cost).label("old_costed"),
            func.sum(_flag(p.old_polls > 0)).label("old_polled"),
            func.sum(func.coalesce(p.new_cost, 0.0)).label("new_cost"),
            func.count(p.new_cost).label("new_costed"),
            func.sum(_flag(p.new_polls > 0)).label("new_polled"),
        )
        .group_by(*key)
        .cte("moved")
        .prefix_with("MATERIALIZED")  # read by two or three sides: summed once
    ).c
    kind = const(CountKind.RECIPIENT)
    sides = [
        select(
            kind.label("kind"),
            g.campaign_id,
            g.old_chunk.label("chunk_id"),
            const(0).label("bucket"),
            g.old_state.label("state"),
            (-g.n).label("n"),
            (-g.parts).label("parts"),
            (-g.old_polled_parts).label("polled_parts"),
            (-g.old_cost).label("cost"),
            (-g.old_costed).label("costed"),
            (-g.old_polled).label("polled"),
            const(0).label("fixed_value"),
        ),
        select(
            kind,
            g.campaign_id,
            g.new_chunk,
            const(0),
            g.new_state,
            g.n,
            g.parts,
            g.new_polled_parts,
            g.new_cost,
            g.new_costed,
            g.new_polled,
            const(0),
        ),
    ]
    if sent_bucket is not None:
        sides.append(
            select(
                const(CountKind.SENT),
                g.campaign_id,
                g.new_chunk,
                sent_bucket,
                const(""),
                g.n,
                g.parts,
                const(0),
                literal(0.0),
                const(0),
                const(0),
                const(0),
            )
        )
    return union_all(*sides)


def recipient_snapshot(pre: Any, sign: int) -> Select[Any]:
    """The rows of `pre` counted as they are, times `sign` (+1/-1): around a write that changes the rial per
    part of their chunk (shrink, split), so their estimate follows it."""
    p = pre.c
    key = (p.campaign_id, p.old_chunk, p.old_state)
    return select(
        const(CountKind.RECIPIENT).label("kind"),
        p.campaign_id,
        p.old_chunk.label("chunk_id"),
        const(0).label("bucket"),
        p.old_state.label("state"),
        (func.count() * sign).label("n"),
        (func.sum(p.parts) * sign).label("parts"),
        (func.sum(_flag(p.old_polls > 0) * p.parts) * sign).label("polled_parts"),
        (func.sum(func.coalesce(p.old_cost, 0.0)) * sign).label("cost"),
        (func.count(p.old_cost) * sign).label("costed"),
        (func.sum(_flag(p.old_polls > 0)) * sign).label("polled"),
        const(0).label("fixed_value"),
    ).group_by(*key)


def chunk_deltas(pre: Any, sign: int | None = None) -> Select[Any]:
    """Minus each chunk at its old state, plus it at its new one; `sign` (+1/-1): the chunks as they are."""
    kind = const(CountKind.CHUNK)

    def side(state: Any, s: int) -> Select[Any]:
        return select(
            kind.label("kind"),
            pre.c.campaign_id,
            pre.c.id.label("chunk_id"),
            const(0).label("bucket"),
            state.label("state"),
            const(s).label("n"),
            (pre.c.parts * s).label("parts"),
            const(0).label("polled_parts"),
            (pre.c.cost_rial * s).label("cost"),
            const(0).label("costed"),
            const(0).label("polled"),
            const(0).label("fixed_value"),
        )

    if sign is not None:
        return side(pre.c.old_state, sign)
    return union_all(side(pre.c.old_state, -1), side(pre.c.new_state, 1))


def literal_deltas(rows: Iterable[Mapping[str, Any]]) -> Select[Any]:
    """Delta rows given as values (a new campaign's pending recipients and planned chunks): each a mapping of
    kind, campaign_id, state, n, parts, cost, value (chunk_id NULL: the campaign's provider; `value`: the
    recipients' estimate in rial)."""
    selects = [
        select(
            const(str(r["kind"])).label("kind"),
            const(int(r["campaign_id"])).label("campaign_id"),
            literal(None, chunks_t.c.id.type).label("chunk_id"),
            const(0).label("bucket"),
            const(str(r["state"])).label("state"),
            const(int(r["n"])).label("n"),
            const(int(r["parts"])).label("parts"),
            const(0).label("polled_parts"),
            literal(float(r.get("cost", 0.0))).label("cost"),
            const(0).label("costed"),
            const(0).label("polled"),
            literal(float(r.get("value", 0.0))).label("fixed_value"),
        )
        for r in rows
    ]
    return union_all(*selects) if len(selects) > 1 else selects[0]


# ---- the counted write ------------------------------------------------------------------------------------
def counted_pg(
    update: Update, table: Any, pre: Select[Any], deltas: Any, returning: tuple[Any, ...] = ()
) -> Any:
    """PostgreSQL: `update` restricted to the rows of `pre`, locked first, with its counters, as ONE statement.

    `deltas(pre_cte) -> Select` builds the delta rows from the locked pre-image. Returns a SELECT of `returning`
    (columns of `table`) per updated row, or of `count(*)` when empty."""
    locked = pre.with_for_update(of=table).cte("pre")
    upd = (
        update.where(table.c.id.in_(select(locked.c.id))).returning(*(returning or (table.c.id,))).cte("upd")
    )
    tally = upsert(deltas(locked), sqlite=False).cte("tally")
    out = select(*(upd.c[c.name] for c in returning)) if returning else select(func.count()).select_from(upd)
    return out.add_cte(tally)


def counted_sqlite(pre: Select[Any], deltas: Any) -> Any:
    """SQLite: the counters' INSERT from the pre-image, to run just before the update it describes (the
    transaction holds the database's one write lock, so nothing changes in between)."""
    return upsert(deltas(pre.cte("pre").prefix_with("MATERIALIZED")), sqlite=True)
