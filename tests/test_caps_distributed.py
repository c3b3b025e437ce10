"""A key's daily cap with real Celery workers racing (README "Security", daily caps): PostgreSQL store, Redis
broker, worker and beat processes, the sandbox over HTTP. The sandbox's record is the witness: what it
accepted from the two campaigns the key started, priced, never exceeds the key's cap.

The campaigns are created through the store as the key would create them through the API (`started_by`
gives the spec its principal); beat's sweep publishes their queued chunks.
"""

from __future__ import annotations

import json

import pandas as pd
import pytest

from campaigns.plan import plan
from campaigns.prices import PriceTable
from campaigns.states import CampaignState
from campaigns.store import CampaignSpec
from campaigns.text import Template
from dispatcher.app import identity as idn
from dispatcher.app.actors import started_by
from dispatcher.config import AppSettings
from tests.support.cluster import once_each, wait_completed, wait_for
from workers.providers import client_class

pytestmark = pytest.mark.slow
PRICE = 1000  # rial per SMS part


def test_racing_workers_stop_at_the_keys_daily_cap_across_its_campaigns(cluster):
    settings = AppSettings.from_env({**cluster.env})
    crm = idn.authenticate_key(
        settings, idn.create_key(settings, "crm", "sender", daily_cap_rial="10,000").key
    )
    provider = client_class("ghasedak").load_settings(cluster.env)
    store = cluster.store()
    try:
        ids = []
        for first in (0, 100):
            spec = CampaignSpec(
                name=f"crm {first}",
                provider="ghasedak",
                account=provider.account_key,
                sender=provider.sender,
                message="Hello",
                personalised=False,
                prices=PriceTable({(None, None): float(PRICE)}, "test"),
            )
            df = pd.DataFrame(
                {"row": range(2, 32), "phone": [f"+98912{i:07d}" for i in range(first, first + 30)]}
            )
            ids.append(
                store.create_campaign(started_by(store, spec, crm), plan([df], Template("Hello"), 1, []))
            )
        cluster.workers(3, concurrency=4)
        cluster.beat()
        wait_for(
            lambda: all(store.campaign(c).state == CampaignState.PAUSED for c in ids),
            "both campaigns to pause at the key's cap",
        )
        wait_for(lambda: all(store.chunk_counts(c).get("sending", 0) == 0 for c in ids), "sends in flight")
        accepted = cluster.state.accepted("ghasedak")
        assert len(accepted) * PRICE == 10_000  # the witness: exactly the cap, not a message more
        assert len({m.phone for m in accepted}) == 10  # each once
        states = {}
        for cid in ids:
            assert store.campaign(cid).state_reason == "daily cap of key crm reached: 10,000 of 10,000 rial"
            states.update({p.lstrip("+"): s for p, s in store.recipient_states(cid).items()})
        assert {p for p, s in states.items() if s != "pending"} == {m.phone for m in accepted}
        # the cap raised, both go on to the end: every number once
        idn.set_cap(settings, "key", "crm", "60,000")
        for cid in ids:
            assert store.resume(cid)
        for cid in ids:
            wait_completed(cluster.db, cid, timeout=180)
        once_each(cluster.state, 60)
        done = cluster.cli("status", str(ids[0]), "--json")
        assert done.returncode == 0, done.stderr
        status = json.loads(done.stdout)
        assert status["created_by"] == "key:crm"
        actions = [(e["who"], e["action"]) for e in status["events"]]
        assert actions[:2] == [("key:crm", "created"), ("key:crm", "started")]
        assert ("system", "paused") in actions
    finally:
        store.engine.dispose()
