"""The budget with several real Celery workers racing (README, "Budget and cost": no claim crosses a cap): PostgreSQL store,
Redis broker, worker and beat processes, the sandbox over HTTP. The sandbox's record of what it accepted
is the witness: accepted parts x price never exceed the budget, whatever the workers do at once.

The campaign is created through the store with its budget set (the `send --budget` option is wired by
the CLI's owner); beat's sweep publishes its queued chunks, as it does for a resumed campaign.
"""

from __future__ import annotations

import pandas as pd
import pytest

from campaigns.plan import plan
from campaigns.prices import PriceTable
from campaigns.states import CampaignState, RecipientState
from campaigns.store import CampaignSpec
from campaigns.text import Template
from tests.support.cluster import assert_witnessed, once_each, wait_completed, wait_for
from workers.providers import client_class

pytestmark = pytest.mark.slow

PRICE = 1000  # rial per SMS part: our price table (the sandbox reports its own 155 per message)


def test_racing_workers_never_cross_the_budget_then_finish_once_it_is_raised(cluster):
    settings = client_class("ghasedak").load_settings(cluster.env)
    n, batch, budget = 400, 5, 101_000  # chunks of 5 one-part messages: 5,000 rial; room for 20 of 80
    df = pd.DataFrame({"row": range(2, n + 2), "phone": [f"+98912{i:07d}" for i in range(n)]})
    spec = CampaignSpec(
        name="budget race",
        provider="ghasedak",
        account=settings.account_key,
        sender=settings.sender,
        message="Hello",
        personalised=False,
        budget_rial=budget,
        prices=PriceTable({(None, None): float(PRICE)}, "test"),
    )
    store = cluster.store()
    store.migrate()
    try:
        cid = store.create_campaign(spec, plan([df], Template("Hello"), batch, []))
        cluster.workers(3, concurrency=4)
        cluster.beat()
        view = wait_for(
            lambda: (v := store.campaign(cid)) and v.state == CampaignState.PAUSED and v,
            "the campaign to pause at its budget",
        )
        wait_for(
            lambda: not store.sending_open(cid) or store.chunk_counts(cid).get("sending", 0) == 0, "sends"
        )
        accepted = cluster.state.accepted("ghasedak")
        assert len(accepted) * PRICE <= budget  # the witness: what the provider took, priced
        assert view.state_reason == "budget reached: 100,000 of 101,000 rial"
        assert len(accepted) == 100
        assert store.campaign(cid).counts.get(RecipientState.PENDING) == n - 100
        assert store.raise_budget(cid, budget_rial=n * PRICE)
        assert store.resume(cid)
        wait_completed(cluster.db, cid, timeout=180)
        once_each(cluster.state, n)
        assert_witnessed(cluster, cid)
        assert store.campaign(cid).spent_rial == n * PRICE
    finally:
        store.engine.dispose()
