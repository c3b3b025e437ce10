"""The store gauges read on both stores: totals, the queue's age (not counting campaigns outside their
window), unattended campaigns, what the next 24 hours need, and circuits labelled by the account's name,
never by anything derived from its credentials."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta

import pandas as pd
from sqlalchemy import update

from campaigns.clock import utcnow
from campaigns.plan import plan
from campaigns.store import CampaignSpec, Store
from campaigns.store.sql import chunks_t
from campaigns.text import Template
from workers.providers import build_client
from workers.store_gauges import StoreGauges

ENV = {
    "SMSDISPATCH_GHASEDAK_APIKEY": "gauge-test-key-123",
    "SMSDISPATCH_GHASEDAK_SENDER": "3000123",
    "SMSDISPATCH_GHASEDAK_ACCOUNT_NAME": "marketing",
}


def campaign(store: Store, n: int, *, start: bool = True, **spec: object) -> int:
    df = pd.DataFrame(
        {"row": range(2, n + 2), "phone": [f"+98912000{i:04d}" for i in range(n)], "name": ["a"] * n}
    )
    base = CampaignSpec(
        name="g",
        provider="ghasedak",
        account="acct",
        sender="1",
        message="x",
        personalised=False,
        columns=["name"],
    )
    return store.create_campaign(replace(base, **spec), plan([df], Template("x"), 3, ["name"]), start=start)


def gauges(store: Store, distributed: bool = False) -> StoreGauges:
    return StoreGauges(store.engine, distributed=distributed, env=ENV, every=0)


def test_totals_queue_age_and_unattended(store: Store):
    running = campaign(store, 6)
    reading = gauges(store).read()
    assert reading.campaigns == {"running": 1}
    assert reading.totals.in_states(["pending"]) == 6
    assert reading.totals.counts == {("ghasedak", "pending"): 6}
    assert reading.unattended == 1  # embedded, and no process is sending it
    assert reading.oldest_age < 60
    with store.engine.begin() as conn:  # its chunks were queued 15 minutes ago
        conn.execute(update(chunks_t).values(updated_at=utcnow() - timedelta(minutes=15)))
    assert 890 < gauges(store).read().oldest_age < 1000
    store.pause(running, "by hand")
    assert gauges(store).read().oldest_age == 0  # a paused campaign's chunks wait on purpose


def test_a_closed_window_is_not_a_stale_queue(store: Store):
    now = utcnow()
    closed = f"{(now + timedelta(hours=5, minutes=30)):%H:%M}-{(now + timedelta(hours=6, minutes=30)):%H:%M}"
    campaign(store, 3, window=closed)  # Tehran is UTC+3:30: opens in two hours, whatever the hour now
    with store.engine.begin() as conn:
        conn.execute(update(chunks_t).values(updated_at=now - timedelta(hours=1)))
    assert gauges(store).read().oldest_age == 0


def test_scheduled_need_counts_what_is_due_within_a_day(store: Store):
    campaign(store, 6)  # running: 6 parts
    campaign(store, 3, send_at=utcnow() + timedelta(hours=2))  # due today: 3 parts
    campaign(store, 9, send_at=utcnow() + timedelta(days=2))  # not within 24 h
    reading = gauges(store).read()
    assert reading.campaigns == {"running": 1, "scheduled": 2}
    parts, _rial = reading.need["ghasedak"]
    assert parts == 9


def test_circuits_are_labelled_by_the_accounts_name(store: Store):
    key = build_client("ghasedak", ENV).settings.account_key
    assert gauges(store).read().circuits == [("ghasedak", "marketing", False)]
    store.circuit_open(key, "ghasedak", "credit", 60)
    collector = gauges(store)
    assert collector.read().circuits == [("ghasedak", "marketing", True)]
    text = "".join(str(m) for m in collector.collect())
    assert key not in text and key.split(":")[1] not in text and "gauge-test-key-123" not in text


def test_the_scrape_that_starts_the_balance_calls_shows_their_credit(store: Store, sandbox, sandbox_environ):
    """The balance calls' thread starts at the first scrape; that scrape read the credit before the first
    calls had answered, and showed none (seen under load: `smsdispatch_provider_credit` 0)."""
    from dispatcher.sandbox.core import Fault, FaultKind

    only = {k: v for k, v in sandbox_environ.items() if "GHASEDAK" in k}
    sandbox.state.add_fault(Fault("ghasedak", "balance", FaultKind.HANG, seconds=0.5))  # answers late
    collector = StoreGauges(store.engine, distributed=False, env=only, every=0, credit_every=3600)
    try:
        credit = next(m for m in collector.collect() if m.name == "smsdispatch_provider_credit")
        shown = {s.labels["provider"]: s.value for s in credit.samples}
        assert shown.get("ghasedak", 0) > 0, shown
    finally:
        collector.stop()
