"""The maintained counters (`campaign_counts`) on both backends: every write path keeps them equal to a
recount of the rows, the reads built on them say what the scans said, and the migration backfills them.
PostgreSQL's writers and folding: tests/test_counter_shards.py.
"""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime, timedelta

import pandas as pd
import pytest
from alembic import command
from alembic.config import Config
from alembic.script import ScriptDirectory
from sqlalchemy import and_, case, event, func, literal, or_, select

from campaigns.plan import plan
from campaigns.prices import PriceTable
from campaigns.progress import ACCEPTED, read_progress
from campaigns.states import ChunkState, RecipientState
from campaigns.store import MIGRATIONS, CampaignSpec, RecipientUpdate, Store
from campaigns.store.counts import tallies
from campaigns.store.sql import campaigns_t, chunks_t, recipients_t
from campaigns.text import Template
from tests.support.counters import assert_counts_agree

R, K = RecipientState, ChunkState
LEASE = timedelta(seconds=60)
ROUTE = {"provider": "mediapayamak", "account": "m:x", "sender": "5000", "reason": "failover"}


def routed(store: Store, n: int, batch: int = 4, start: int = 0) -> int:
    """A campaign of `n` recipients in chunks of `batch`, priced (1,000 rial a part), route ghasedak then
    mediapayamak."""
    df = pd.DataFrame({"row": range(2, n + 2), "phone": [f"+98912{start + i:07d}" for i in range(n)]})
    spec = CampaignSpec(
        name="c",
        provider="ghasedak",
        account="g:x",
        sender="3000",
        message="hi",
        personalised=False,
        prices=PriceTable({(None, None): 1000.0}, "test"),
        route=("ghasedak", "mediapayamak"),
    )
    return store.create_campaign(spec, plan([df], Template("hi"), batch, []))


def next_chunk(store: Store, cid: int, now: datetime | None = None):
    chunk_id, attempt = store.claimable_chunks(campaign_id=cid, now=now)[0]
    return store.claim_chunk(chunk_id, attempt, LEASE, now=now)


def scanned(store: Store, cid: int) -> dict:
    """What the reads said before the counters, computed the old way: GROUP BY over the rows."""
    r, k, c = recipients_t.c, chunks_t.c, campaigns_t.c
    provider = func.coalesce(k.provider, c.provider)
    joined = recipients_t.join(campaigns_t, c.id == r.campaign_id).outerjoin(chunks_t, k.id == r.chunk_id)
    with store.engine.connect() as conn:
        rows = conn.execute(
            select(provider, r.state, func.count(), func.sum(r.cost_rial))
            .select_from(joined)
            .where(r.campaign_id == cid)
            .group_by(provider, r.state)
        ).all()
        chunks = conn.execute(
            select(k.state, func.count()).where(k.campaign_id == cid).group_by(k.state)
        ).all()
        money = scanned_costs(conn, cid)
        reported = conn.execute(
            select(func.sum(case((r.polls > 0, 1), else_=0))).where(
                r.campaign_id == cid, r.state.in_([R.FAILED, R.BLACKLISTED])
            )
        ).scalar_one()
    counts: dict[str, int] = {}
    by_provider: dict[str, dict[str, int]] = {}
    actual: list[float] = []
    for name, state, n, cost in rows:
        counts[state] = counts.get(state, 0) + n
        by_provider.setdefault(name, {})[state] = n
        actual.extend([] if cost is None else [float(cost)])
    return {
        "counts": counts,
        "chunks": dict(chunks),
        "by_provider": by_provider,
        "costs": money,
        "cost_actual": pytest.approx(sum(actual)) if actual else None,
        "reported_failed": int(reported or 0),
    }


def scanned_costs(conn, cid: int) -> dict:  # noqa: ANN001
    """`campaigns.store.costs` as it read before the counters: one GROUP BY per chunk over the rows."""
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
        .where(r.campaign_id == cid)
        .group_by(r.chunk_id)
        .subquery("per_chunk")
    )
    rate = k.cost_rial * literal(1.0) / func.nullif(k.parts, 0)
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
    out = {}
    for row in rows:
        priced = row.estimated is not None or bool(row.planned)
        out[row.provider] = {
            "planned": pytest.approx(float(row.planned or 0)) if priced else None,
            "spent": pytest.approx(float(row.spent or 0)) if priced else None,
            "reported": None if row.reported is None else pytest.approx(float(row.reported)),
            "accepted": int(row.accepted or 0),
            "unsure": pytest.approx(float(row.unsure or 0)) if priced else None,
            "unknown": int(row.unknown or 0),
        }
    return out


def shown(store: Store, cid: int) -> dict:
    view = store.campaign(cid)
    return {
        "counts": view.counts,
        "chunks": view.chunk_counts,
        "by_provider": store.by_provider(cid),
        "costs": {name: dataclasses.asdict(c) for name, c in store.costs(cid).by_provider.items()},
        "cost_actual": view.cost_actual,
        "reported_failed": view.reported_failed,
    }


def agree(store: Store, cid: int) -> None:
    """The counters equal a recount, and every read built on them says what the old scans said."""
    assert_counts_agree(store.engine, [cid])
    assert shown(store, cid) == scanned(store, cid)


def test_every_write_path_keeps_the_counters_equal_to_the_rows(store: Store) -> None:
    cid = routed(store, 40, batch=4)
    other = routed(store, 8, batch=4, start=1000)  # counted apart
    agree(store, cid)
    now = datetime.now(UTC)
    # a send: accepted with a price, refused, ambiguous, and one not sent (the chunk is requeued, shrunk)
    a = next_chunk(store, cid)
    m = a.messages
    store.record_send(
        a,
        [
            RecipientUpdate(m[0].recipient_id, R.SENT, "a0", next_poll_at=now, cost=1040.5),
            RecipientUpdate(m[1].recipient_id, R.FAILED, None, "14", "refused"),
            RecipientUpdate(m[2].recipient_id, R.UNKNOWN, None, None, "said nothing"),
        ],
        requeue=True,
    )
    agree(store, cid)
    # a retry, then given up
    b = next_chunk(store, cid)
    store.chunk_retry(b, "code 10", delay=0, max_attempts=5)
    b = next_chunk(store, cid, now=datetime.now(UTC) + timedelta(seconds=1))
    store.chunk_failed(b, "refused for good")
    agree(store, cid)
    # an ambiguous send reconciled: one found, the rest known not sent and queued again
    c = next_chunk(store, cid)
    store.chunk_unknown(c, "timeout")
    c = store.load_chunk(c.chunk_id)
    store.record_reconciled(c, [RecipientUpdate(c.messages[0].recipient_id, R.SENT, "c0")], requeue=True)
    agree(store, cid)
    # a sender that vanished: lease over -> unknown -> held
    d = next_chunk(store, cid, now=now - timedelta(minutes=10))
    assert store.expire_leases() == [d.chunk_id]
    store.hold_unknown(store.load_chunk(d.chunk_id), "cannot be asked")
    agree(store, cid)
    # a refused number in a batch: split; then failover moves a chunk to the next provider
    e = next_chunk(store, cid)
    assert store.split_chunk(e, "a number refused") is not None
    f_id, f_attempt = next(
        (c, at) for c, at in store.claimable_chunks(campaign_id=cid) if len(store.load_chunk(c).messages) == 4
    )
    assert store.reroute_chunk(f_id, f_attempt, batch=4, **ROUTE)
    agree(store, cid)
    # the moved recipients sent through the second provider, then delivery reports (a price, a failure)
    moved = [c for c, _ in store.claimable_chunks(campaign_id=cid, limit=100)]
    g = None
    for chunk_id in moved:
        peek = store.load_chunk(chunk_id)
        if peek.provider == "mediapayamak":
            g = store.claim_chunk(chunk_id, 0, LEASE)
            break
    assert g is not None
    store.record_send(
        g, [RecipientUpdate(x.recipient_id, R.SENT, f"g{x.recipient_id}") for x in g.messages], requeue=False
    )
    due = [x.recipient_id for x in g.messages]
    store.record_statuses(
        [
            RecipientUpdate(due[0], R.DELIVERED, None, "1", None, delivered_at=now, cost=980.0),
            RecipientUpdate(due[1], R.FAILED, None, "2", "undeliverable"),
            RecipientUpdate(m[0].recipient_id, R.SENT_TO_OPERATOR, None, "4", None, next_poll_at=now),
        ]
    )
    store.record_poll_retries([due[2]], now + timedelta(seconds=30), "-5")
    agree(store, cid)
    # pause, resume, budget; then cancel what is left
    assert store.pause(cid) and store.resume(cid)
    assert store.raise_budget(cid, budget_rial=10**9)
    assert store.cancel(cid)
    agree(store, cid)
    agree(store, other)
    view = store.campaign(cid)
    assert view.counts[R.CANCELLED] > 0 and view.by_provider.keys() == {"ghasedak", "mediapayamak"}
    assert view.cost_actual == pytest.approx(1040.5 + 980.0)
    assert view.reported_failed == 1  # the failure a report gave, not the refusal at sending
    assert store.unfinished(cid) == sum(view.counts.get(s, 0) for s in (R.SENT, R.SENT_TO_OPERATOR))
    assert store.awaiting_reports(cid) == store.unfinished(cid)


def test_a_new_campaign_is_counted_in_its_creating_transaction(store: Store) -> None:
    cid = routed(store, 10, batch=4)
    with store.engine.connect() as conn:
        counted = tallies(conn, cid)
    assert counted.counts() == {R.PENDING: 10}
    assert counted.chunk_counts() == {K.QUEUED: 3}
    assert counted.chunks[("ghasedak", K.QUEUED)].cost == 10 * 1000.0  # the estimate travels with the chunks
    assert counted.recipients[("ghasedak", R.PENDING)].parts == 10


def test_the_rate_comes_from_per_minute_counters(store: Store) -> None:
    cid = routed(store, 12, batch=3)
    now = datetime.now(UTC).replace(second=30)
    for at in (now - timedelta(minutes=20), now - timedelta(minutes=2), now):
        chunk = next_chunk(store, cid, now=at)
        store.record_send(
            chunk,
            [RecipientUpdate(x.recipient_id, R.SENT, "m") for x in chunk.messages],
            requeue=False,
            now=at,
        )
    sent, since = store.recent_sends(cid, now - timedelta(minutes=5))
    assert (sent, since) == (6, (now - timedelta(minutes=5)).replace(second=0, microsecond=0))
    view, progress = read_progress(store, cid, now + timedelta(seconds=1))
    assert progress.rate == pytest.approx(
        6 / max((now + timedelta(seconds=1) - max(since, view.started_at)).total_seconds(), 1)
    )


def test_the_store_counts_for_gauges(store: Store) -> None:
    a, b = routed(store, 8, batch=4), routed(store, 4, batch=4, start=100)
    chunk = next_chunk(store, a)
    store.record_send(
        chunk,
        [RecipientUpdate(x.recipient_id, R.SENT, "m", cost=900.0) for x in chunk.messages],
        requeue=False,
    )
    store.cancel(b)
    found = store.store_counts()
    assert found.recipients == {
        ("ghasedak", R.PENDING): 4,
        ("ghasedak", R.SENT): 4,
        ("ghasedak", R.CANCELLED): 4,
    }
    assert found.cost_rial == {"ghasedak": 3600.0}
    assert found.campaigns == {"running": 1, "cancelled": 1}
    assert (found.pending, found.awaiting) == (4, 4)
    assert found.oldest_queued_at is not None


def test_summary_reads_every_campaign_in_two_statements(store: Store) -> None:
    ids = [routed(store, 4, batch=2, start=100 * i) for i in range(5)]
    statements = []

    def count(*args: object) -> None:
        statements.append(args[2])

    event.listen(store.engine, "before_cursor_execute", count)
    try:
        views = store.counted_campaigns()
    finally:
        event.remove(store.engine, "before_cursor_execute", count)
    assert [v.id for v in views] == ids and all(v.counts == {R.PENDING: 4} for v in views)
    assert len([s for s in statements if s.lstrip().upper().startswith("SELECT")]) == 2


def test_the_migration_backfills_the_counters(store: Store, database_url: str) -> None:
    cid = routed(store, 12, batch=4)
    chunk = next_chunk(store, cid)
    store.record_send(
        chunk, [RecipientUpdate(x.recipient_id, R.SENT, "m", cost=5.0) for x in chunk.messages], requeue=False
    )
    before = shown(store, cid)
    sent_before = store.recent_sends(cid, datetime.now(UTC) - timedelta(minutes=5))
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    with store.engine.begin() as conn:
        cfg.attributes["connection"] = conn
        # to just before 0016_counters, then up again: the counters are counted from the rows
        before_counters = ScriptDirectory.from_config(cfg).get_revision("0016_counters").down_revision
        command.downgrade(cfg, before_counters)
    store.engine.dispose()
    store.migrate()
    assert shown(store, cid) == before
    assert store.recent_sends(cid, datetime.now(UTC) - timedelta(minutes=5)) == sent_before
