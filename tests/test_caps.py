"""Daily spending caps of users and keys (campaigns/store/caps.py), on both stores: charged in the chunk
claim's transaction across every campaign the key or user started that day, so threads racing to claim
never cross the cap together; a refund gives its share back; the campaign pauses naming the cap.
Real workers racing on PostgreSQL are in tests/test_caps_distributed.py.
"""

from __future__ import annotations

import random
import threading
from datetime import timedelta

import pandas as pd
import pytest
from sqlalchemy import func, select

from campaigns.plan import plan
from campaigns.prices import PriceTable
from campaigns.states import CampaignState, RecipientState
from campaigns.store import CampaignSpec, RecipientUpdate, Store
from campaigns.store.identity_tables import daily_spend_t
from campaigns.text import Template
from dispatcher.app import BadInput
from dispatcher.app import identity as idn
from dispatcher.app.actors import started_by
from dispatcher.config import AppSettings

LEASE = timedelta(seconds=60)
PRICE = PriceTable({(None, None): 1000.0}, "test")  # rial per SMS part


def spec_for(actor: idn.Actor, *, prices: PriceTable | None = PRICE, name: str = "capped") -> CampaignSpec:
    return CampaignSpec(
        name=name,
        provider="ghasedak",
        account="ghasedak:x",
        sender="",
        message="Hello",
        personalised=False,
        prices=prices,
        created_by=actor.who,
        created_by_user_id=actor.user_id,
        created_by_key_id=actor.key_id,
        spend_principal=actor.principal,
    )


def make(store: Store, spec: CampaignSpec, n: int, batch: int, first: int = 0) -> int:
    df = pd.DataFrame({"row": range(2, n + 2), "phone": [f"+98912{i:07d}" for i in range(first, first + n)]})
    return store.create_campaign(spec, plan([df], Template("Hello"), batch, []))


@pytest.fixture
def settings(database_url) -> AppSettings:
    return AppSettings.from_env({"SMSDISPATCH_DATABASE_URL": database_url})


@pytest.fixture
def crm(settings) -> idn.Actor:
    made = idn.create_key(settings, "crm", "sender", daily_cap_rial="10,000")
    return idn.authenticate_key(settings, made.key)


def race(store: Store, campaign_ids: list[int], threads: int) -> list[int]:
    """`threads` threads claim every chunk of the campaigns at once, each in its own order."""
    chunks = [c for cid in campaign_ids for c in store.claimable_chunks(limit=10_000, campaign_id=cid)]
    barrier = threading.Barrier(threads)
    won: list[int] = []
    lock = threading.Lock()

    def worker(seed: int) -> None:
        order = list(chunks)
        random.Random(seed).shuffle(order)
        barrier.wait()
        for chunk_id, attempt in order:
            if store.claim_chunk(chunk_id, attempt, LEASE) is not None:
                with lock:
                    won.append(chunk_id)

    pool = [threading.Thread(target=worker, args=(i,)) for i in range(threads)]
    for t in pool:
        t.start()
    for t in pool:
        t.join()
    assert len(won) == len(set(won)), "a chunk was claimed twice"
    return won


def test_racing_claims_across_two_campaigns_stop_at_the_keys_daily_cap(store, settings, crm):
    a = make(store, spec_for(crm), 20, 2)  # chunks of 2 parts: 2,000 rial each
    b = make(store, spec_for(crm), 20, 2, first=100)
    won = race(store, [a, b], 8)
    assert len(won) == 5  # 5 x 2,000 = the 10,000 rial cap, across both campaigns
    assert store.spent_today(crm.principal, store._read(_day, a)) == (10_000, 10)
    reasons = {
        store.campaign(c).state_reason for c in (a, b) if store.campaign(c).state == CampaignState.PAUSED
    }
    assert reasons == {"daily cap of key crm reached: 10,000 of 10,000 rial"}
    spent = sum(store.campaign(c).spent_rial for c in (a, b))
    assert spent == 10_000  # the campaigns' own charges of the rolled-back claims were undone too
    paused = [c for c in (a, b) if store.campaign(c).state == CampaignState.PAUSED]
    events = store.campaign_events(paused[0])
    assert events[-1]["who"] == "system" and events[-1]["action"] == "paused"
    assert events[-1]["detail"].startswith("daily cap of key crm reached")


def _day(conn, campaign_id):
    from campaigns.store.sql import campaigns_t

    return conn.execute(select(campaigns_t.c.spend_day).where(campaigns_t.c.id == campaign_id)).scalar_one()


def test_a_refund_gives_the_daily_share_back_and_a_raised_cap_lets_it_go_on(store, settings, crm):
    cid = make(store, spec_for(crm), 12, 2)
    day = store._read(_day, cid)
    claimed = [store.claim_chunk(c, a, LEASE) for c, a in store.claimable_chunks(campaign_id=cid)]
    ok = [c for c in claimed if c is not None]
    assert len(ok) == 5 and store.campaign(cid).state == CampaignState.PAUSED
    store.chunk_retry(ok[0], "timeout before sending", 0.0, 5)  # nothing went out: given back
    assert store.spent_today(crm.principal, day) == (8_000, 8)
    for chunk in ok[1:]:
        store.record_send(
            chunk,
            [RecipientUpdate(m.recipient_id, RecipientState.SENT) for m in chunk.messages],
            requeue=False,
        )
    assert store.spent_today(crm.principal, day) == (8_000, 8)  # sent: kept
    idn.set_cap(settings, "key", "crm", "12,000")
    assert store.resume(cid)
    again = [store.claim_chunk(c, a, LEASE) for c, a in store.claimable_chunks(campaign_id=cid)]
    assert sum(x is not None for x in again) == 2 and store.spent_today(crm.principal, day) == (12_000, 12)


def test_a_users_part_cap(store, settings):
    idn.add_user(settings, "alice", "sender", "correct horse battery", daily_cap_parts=5)
    alice = idn.login(settings, "alice", "correct horse battery")
    cid = make(store, spec_for(alice, prices=None), 10, 2)  # a part cap needs no price
    assert (
        sum(store.claim_chunk(c, a, LEASE) is not None for c, a in store.claimable_chunks(campaign_id=cid))
        == 2
    )
    view = store.campaign(cid)
    assert (view.state, view.state_reason) == (
        CampaignState.PAUSED,
        "daily cap of user alice reached: 4 of 5 parts",
    )


def test_a_rial_cap_needs_prices_and_the_cli_has_no_cap(store, settings, crm):
    with pytest.raises(BadInput, match="daily cap in rial"):
        started_by(store, spec_for(idn.cli_actor(), prices=None), crm)
    viewer = idn.authenticate_key(settings, idn.create_key(settings, "ro", "viewer").key)
    with pytest.raises(idn.Forbidden):
        started_by(store, spec_for(idn.cli_actor()), viewer)
    spec = started_by(store, spec_for(idn.cli_actor(), prices=None), None)
    assert spec.spend_principal is None and spec.created_by.startswith("cli:")
    cid = make(store, spec, 10, 2)
    assert all(store.claim_chunk(c, a, LEASE) for c, a in store.claimable_chunks(campaign_id=cid))
    with store.engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(daily_spend_t)).scalar_one() == 0
