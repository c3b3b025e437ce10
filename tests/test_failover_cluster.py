"""Failover (README, "Failover") with real processes: Celery workers and beat as subprocesses on the shared Redis,
PostgreSQL, the sandbox over HTTP, and `smsdispatch send --provider ghasedak,mediapayamak`. The first
provider fails mid-campaign in each way a panel does (credit runs out, a 503 storm, its key revoked,
an ambiguous send); the campaign completes through the next one, delivery reports are collected from
the provider that accepted each number, and the sandbox's ledger shows every number accepted exactly
once across all providers, with the id the store recorded.
"""

from __future__ import annotations

from collections import Counter

import pytest

from campaigns.states import RecipientState
from dispatcher.sandbox.core import Fault, SandboxState
from tests.support.cluster import WENT_OUT, Cluster, run_cluster, store_ids, wait_completed
from tests.support.counters import assert_counts_agree
from tests.support.services import REDIS_URL, require_service

pytestmark = pytest.mark.slow

ENV = {
    "SMSDISPATCH_BACKOFF_BASE": "0.2",
    "SMSDISPATCH_BACKOFF_CAP": "1",
    "SMSDISPATCH_GHASEDAK_BATCH": "25",
    "SMSDISPATCH_MEDIAPAYAMAK_BATCH": "40",
    "SMSDISPATCH_CIRCUIT_FAILURES": "3",
    "SMSDISPATCH_CIRCUIT_COOLDOWN": "300",
}
ROUTE = "ghasedak,mediapayamak"


@pytest.fixture
def shared_broker() -> str:
    require_service("Redis", "127.0.0.1", 6379)
    import redis

    redis.Redis.from_url(REDIS_URL).flushdb()
    return REDIS_URL


def witnessed_across(cluster: Cluster, campaign_id: int) -> Counter[str]:
    """Every number accepted exactly once by all the providers together, the store agreeing number by
    number (state and id); returns how many each provider accepted."""
    store = cluster.store()
    try:
        rows = {r["phone"].lstrip("+"): r for r in store.recipients_rows(campaign_id)}
        by_provider = store.by_provider(campaign_id)
        assert_counts_agree(store.engine, [campaign_id])  # counters by provider equal a recount
    finally:
        store.engine.dispose()
    accepted = cluster.state.accepted()
    counts = Counter(m.phone for m in accepted)
    twice = [p for p, n in counts.items() if n > 1]
    assert not twice, f"sent twice: {twice[:10]}"
    assert set(counts) == set(rows), "lost recipients, or numbers of no recipient"
    for msg in accepted:
        row = rows[msg.phone]
        assert row["state"] in WENT_OUT, f"{msg.phone} accepted by {msg.provider} but {row['state']}"
        assert row["provider_message_id"] in store_ids(msg), f"{msg.phone}: store and sandbox ids differ"
    per_provider = Counter(m.provider for m in accepted)
    assert {p: sum(c.values()) for p, c in by_provider.items()} == dict(per_provider)
    return per_provider


def run(
    tmp_path, shared_broker, state: SandboxState, rows: int = 300, env: dict[str, str] | None = None
) -> tuple[Counter[str], int]:
    with run_cluster(tmp_path, shared_broker, state=state, env={**ENV, **(env or {})}) as cluster:
        cluster.workers(2, concurrency=4)
        cluster.beat()
        campaign, summary = cluster.send(rows, ROUTE)
        counts = wait_completed(cluster.db, campaign, timeout=150)
        assert not counts.get(RecipientState.UNKNOWN), counts
        assert sum(counts.values()) == summary["recipients"]
        return witnessed_across(cluster, campaign), summary["recipients"]


def test_credit_runs_out_halfway_and_the_campaign_completes_through_the_next(tmp_path, shared_broker):
    state = SandboxState(seed=31, final_after_s=0.2, latency_ms=30)
    state.credit["ghasedak"] = 100
    per_provider, total = run(tmp_path, shared_broker, state)
    # chunks of 25 and one of 24 (274 recipients): the credit covers 99 or 100, whichever went first
    assert (
        99 <= per_provider["ghasedak"] <= 100
        and per_provider["mediapayamak"] == total - per_provider["ghasedak"]
    )


def test_a_503_storm_at_the_first_and_the_campaign_completes_through_the_next(tmp_path, shared_broker):
    state = SandboxState(seed=32, final_after_s=0.2, latency_ms=30)
    state.add_fault(Fault("ghasedak", kind="http", status=503, times=100_000))
    per_provider, total = run(tmp_path, shared_broker, state)
    assert per_provider == {"mediapayamak": total}


def test_a_key_revoked_mid_campaign_and_the_campaign_completes_through_the_next(tmp_path, shared_broker):
    state = SandboxState(seed=33, final_after_s=0.2, latency_ms=30)
    state.revoke("ghasedak", after=75)
    # The revoked key answers no delivery report either: the numbers it took expire (with the reason)
    # after the maximum age, shortened here, and the campaign completes.
    per_provider, total = run(tmp_path, shared_broker, state, env={"SMSDISPATCH_POLL_MAX_AGE": "8"})
    assert per_provider["ghasedak"] >= 75 and per_provider["mediapayamak"] == total - per_provider["ghasedak"]


def test_an_ambiguous_send_is_reconciled_at_the_first_never_resent_through_the_second(
    tmp_path, shared_broker
):
    state = SandboxState(seed=34, final_after_s=0.2, latency_ms=30)
    state.add_fault(Fault("ghasedak", kind="accept_then_http", status=500, times=2))
    state.credit["ghasedak"] = 50  # the two ambiguous chunks take it all: the rest must move
    per_provider, total = run(tmp_path, shared_broker, state)
    assert (
        49 <= per_provider["ghasedak"] <= 50
        and per_provider["mediapayamak"] == total - per_provider["ghasedak"]
    )
