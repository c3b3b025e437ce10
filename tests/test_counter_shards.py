"""The counters' shards on PostgreSQL: concurrent writers of one campaign never wait on each other's counter
rows (one row per counter would: the test fails with a lock timeout), and folding the shards keeps the sums
and never waits on a writer.
"""

from __future__ import annotations

import threading
from datetime import UTC, datetime

import pytest
from sqlalchemy import text

from campaigns.states import RecipientState
from campaigns.store import RecipientUpdate, Store
from campaigns.store.counts import fold
from campaigns.store.sending import claim_chunk, record_send
from tests.support.counters import assert_counts_agree
from tests.test_counters import LEASE, next_chunk, routed, shown

R = RecipientState


@pytest.fixture
def pg(store: Store) -> Store:
    if store.engine.dialect.name != "postgresql":
        pytest.skip("shards are per PostgreSQL backend; SQLite has one writer")
    return store


def test_writers_of_one_campaign_never_wait_on_each_other_for_counters(pg: Store) -> None:
    """A worker's transaction holds its counter rows until it commits; another worker recording a chunk of
    the same campaign, in the same states, must not wait for it (one row per counter would: lock_timeout)."""
    cid = routed(pg, 8, batch=4)
    first, second = next_chunk(pg, cid), next_chunk(pg, cid)
    held = threading.Event()
    release = threading.Event()

    def slow_writer() -> None:
        with pg.engine.begin() as conn:
            record_send(
                conn,
                first,
                [RecipientUpdate(x.recipient_id, R.SENT, "a") for x in first.messages],
                False,
                datetime.now(UTC),
            )
            held.set()
            release.wait(10)

    thread = threading.Thread(target=slow_writer)
    thread.start()
    try:
        assert held.wait(10)
        with pg.engine.begin() as conn:
            conn.execute(text("SET LOCAL lock_timeout = '2s'"))
            assert record_send(
                conn,
                second,
                [RecipientUpdate(x.recipient_id, R.SENT, "b") for x in second.messages],
                False,
                datetime.now(UTC),
            )
    finally:
        release.set()
        thread.join()
    assert pg.campaign(cid).counts == {R.SENT: 8}


def test_folding_keeps_the_sums_and_skips_rows_a_writer_holds(pg: Store) -> None:
    cid = routed(pg, 24, batch=4)
    with pg.engine.connect() as a, pg.engine.connect() as b:  # two backends: two shards
        for conn in (a, b, a, b):
            chunk_id, attempt = pg.claimable_chunks(campaign_id=cid)[0]
            with conn.begin():
                claim_chunk(conn, chunk_id, attempt, LEASE, datetime.now(UTC))
    before = shown(pg, cid)
    with pg.engine.connect() as conn:
        shards = conn.execute(
            text("SELECT count(DISTINCT shard) FROM campaign_counts WHERE shard <> 0")
        ).scalar_one()
    assert shards >= 2
    holder = pg.engine.connect()
    tx = holder.begin()
    chunk_id, attempt = pg.claimable_chunks(campaign_id=cid)[0]
    claim_chunk(holder, chunk_id, attempt, LEASE, datetime.now(UTC))  # holds its shard's rows, uncommitted
    try:
        with pg.engine.begin() as conn:  # folding never waits on a writer (SKIP LOCKED)
            conn.execute(text("SET LOCAL lock_timeout = '2s'"))
            assert fold(conn) > 0
        assert shown(pg, cid) == before
    finally:
        tx.commit()
        holder.close()
    pg.fold_counts()
    with pg.engine.connect() as conn:
        left = conn.execute(text("SELECT count(*) FROM campaign_counts WHERE shard <> 0")).scalar_one()
    assert left == 0
    assert_counts_agree(pg.engine, [cid])
