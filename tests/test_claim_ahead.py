"""The next chunk's claim beside the current chunk's call (workers/operations/send_many.py, `ClaimAhead`) on both
stores: the claim is made while the previous chunk is at the provider, each number still goes out once, and a
chunk claimed ahead whose campaign was paused or cancelled before its call gets its claim back (queued again with
its charge refunded, or cancelled with its recipients) with nothing sent: a pause or cancel still takes effect at
the next chunk. The `store` fixture checks the counters against a recount of the rows after every test.
"""

from __future__ import annotations

import threading
from dataclasses import replace
from datetime import timedelta
from time import perf_counter, sleep

import pytest

from campaigns.clock import utcnow
from campaigns.records import ClaimedChunk
from campaigns.states import CampaignState, ChunkState, RecipientState
from tests.test_send_quick import PRICE, make
from workers.deps import ProviderPool, WorkerDeps
from workers.operations.lease import ahead_terms
from workers.operations.send import OutcomeKind, send_chunk
from workers.operations.send_many import send_chunks
from workers.settings import DispatchSettings


def deps_for(store, sandbox_environ) -> WorkerDeps:  # noqa: ANN001
    deps = WorkerDeps(store=store, providers=ProviderPool(sandbox_environ), settings=DispatchSettings())
    deps.providers.get("ghasedak")  # built in this process: claimed in one go from now on (`quick_terms`)
    return deps


def claim_ahead(store, deps: WorkerDeps, chunk: tuple[int, int]) -> ClaimedChunk:  # noqa: ANN001
    providers, lease, _ = ahead_terms(deps)
    got = store.claim_quick(chunk[0], chunk[1], lease, providers)
    assert isinstance(got, ClaimedChunk)
    return got


def test_the_next_chunk_is_claimed_while_the_previous_one_is_at_the_provider(
    store, sandbox_environ, sandbox, monkeypatch
):
    deps = deps_for(store, sandbox_environ)
    cid = make(store, 40)
    chunks = store.claimable_chunks(limit=10, campaign_id=cid)
    events: list[tuple[str, int, str, float]] = []
    claim_quick = store.claim_quick

    def timed_claim(chunk_id, *args, **kw):  # noqa: ANN001, ANN002, ANN003, ANN202
        events.append(("claim", chunk_id, threading.current_thread().name, perf_counter()))
        return claim_quick(chunk_id, *args, **kw)

    client = deps.providers.get("ghasedak")
    send = client.send

    def slow_send(batch):  # noqa: ANN001, ANN202
        events.append(("call from", batch.messages[0].recipient_id, "", perf_counter()))
        sleep(0.2)  # a provider's latency: the next claim is made meanwhile
        try:
            return send(batch)
        finally:
            events.append(("call to", batch.messages[0].recipient_id, "", perf_counter()))

    monkeypatch.setattr(store, "claim_quick", timed_claim)
    monkeypatch.setattr(client, "send", slow_send)
    outcomes = send_chunks(chunks, deps)
    assert [o.kind for o in outcomes] == [OutcomeKind.ACCEPTED] * 4
    claims = [(c, thread, t) for kind, c, thread, t in events if kind == "claim"]
    assert sorted(c for c, _, _ in claims) == [c for c, _ in chunks]  # each chunk claimed once
    by_chunk = {c: (thread, t) for c, thread, t in claims}
    assert not by_chunk[chunks[0][0]][0].startswith("claim-ahead")  # the first by the slot itself
    calls_to = [t for kind, _, _, t in events if kind == "call to"]  # in chunk order
    for (chunk_id, _), previous_call_ended in zip(chunks[1:], calls_to, strict=False):
        thread, claimed_at = by_chunk[chunk_id]
        assert thread.startswith("claim-ahead")  # the others beside the call of the chunk before them
        assert claimed_at < previous_call_ended
    phones = [m.phone for m in sandbox.state.accepted("ghasedak")]
    assert len(phones) == len(set(phones)) == 40
    view = store.campaign(cid)
    assert view.counts == {RecipientState.SENT: 40}
    assert view.chunk_counts == {ChunkState.ACCEPTED: 4}


@pytest.mark.parametrize("stop", ["pause", "cancel"])
def test_a_chunk_claimed_ahead_is_given_back_when_its_campaign_stopped_before_its_call(
    store, sandbox_environ, sandbox, stop
):
    deps = deps_for(store, sandbox_environ)
    cid = make(store, 30, prices=PRICE, budget_rial=1_000_000)
    first, second, third = store.claimable_chunks(limit=10, campaign_id=cid)
    chunk = claim_ahead(store, deps, second)
    assert store.campaign(cid).spent_rial == 10_000
    getattr(store, stop)(cid)  # while the chunk before it is at the provider
    outcome = send_chunk(second[0], second[1], deps, ahead=chunk)
    assert outcome.kind == OutcomeKind.SKIPPED and outcome.detail == "campaign not running"
    assert sandbox.state.accepted("ghasedak") == []  # nothing sent
    view = store.campaign(cid)
    assert view.spent_rial == 0 and view.spent_parts == 0  # its charge given back
    if stop == "pause":
        assert view.state == CampaignState.PAUSED
        assert view.chunk_counts == {ChunkState.QUEUED: 3}
        assert view.counts == {RecipientState.PENDING: 30}
        assert store.resume(cid)
        assert {c for c, _ in store.claimable_chunks(limit=10, campaign_id=cid)} == {
            first[0],
            second[0],
            third[0],
        }
    else:  # cancelled as the campaign's other unsent chunks were: no pending recipient is left behind
        assert view.state == CampaignState.CANCELLED
        assert view.chunk_counts == {ChunkState.CANCELLED: 3}
        assert view.counts == {RecipientState.CANCELLED: 30}
    # the message that claimed it goes on to nothing: the chunk is no longer this attempt's
    assert send_chunk(second[0], second[1], deps).kind == OutcomeKind.SKIPPED


def test_a_chunk_claimed_ahead_may_wait_one_call_but_is_never_sent_past_its_lease(
    store, sandbox_environ, sandbox
):
    """Its lease is longer by the slowest call it may wait behind (`lease.ahead_terms`); a claim older than
    that wait and the margin is handed back unsent, as any claim that stalled before its call."""
    deps = deps_for(store, sandbox_environ)
    wait, margin = ahead_terms(deps)[2], deps.settings.lease_margin
    cid = make(store, 20)
    first, second = store.claimable_chunks(limit=10, campaign_id=cid)
    waited_a_call = claim_ahead(store, deps, first)
    waited_a_call = replace(waited_a_call, sending_since=utcnow() - timedelta(seconds=margin + wait / 2))
    assert (
        send_chunk(first[0], first[1], deps, ahead=waited_a_call, ahead_wait=wait).kind
        == OutcomeKind.ACCEPTED
    )
    stalled = claim_ahead(store, deps, second)
    stalled = replace(stalled, sending_since=utcnow() - timedelta(seconds=margin + wait + 1))
    assert send_chunk(second[0], second[1], deps, ahead=stalled, ahead_wait=wait).kind == OutcomeKind.RETRY
    assert len(sandbox.state.accepted("ghasedak")) == 10  # the first chunk only
    assert store.campaign(cid).counts == {RecipientState.SENT: 10, RecipientState.PENDING: 10}


def test_a_chunk_claimed_ahead_within_the_budget_is_sent_when_a_later_claim_pauses_at_the_budget(
    store, sandbox_environ, sandbox
):
    """Its charge was made within the cap before the claim that would cross it paused the campaign: it goes out,
    as it would have had the claims been made one after another (the budget is what was sent, not less)."""
    deps = deps_for(store, sandbox_environ)
    cid = make(
        store, 30, prices=PRICE, budget_rial=25_000
    )  # a chunk of 10 parts costs 10,000 rial: room for 2
    first, second, third = store.claimable_chunks(limit=10, campaign_id=cid)
    claimed = [claim_ahead(store, deps, first), claim_ahead(store, deps, second)]
    assert store.claim_chunk(third[0], third[1], timedelta(seconds=60)) is None  # would cross: pauses
    view = store.campaign(cid)
    assert (view.state, view.state_reason) == (CampaignState.PAUSED, "budget reached: 20,000 of 25,000 rial")
    kinds = [
        send_chunk(c[0], c[1], deps, ahead=got).kind for c, got in zip((first, second), claimed, strict=True)
    ]
    assert kinds == [OutcomeKind.ACCEPTED] * 2
    assert len(sandbox.state.accepted("ghasedak")) == 20
    view = store.campaign(cid)
    assert view.spent_rial == 20_000 and view.counts == {RecipientState.SENT: 20, RecipientState.PENDING: 10}
    assert view.chunk_counts == {ChunkState.ACCEPTED: 2, ChunkState.QUEUED: 1}


def test_only_providers_that_can_be_asked_whether_a_send_went_out_are_claimed_ahead(store, sandbox_environ):
    """A worker that dies holding a chunk claimed ahead leaves it `unknown` though it was never sent: only a
    provider reconciliation can ask (not Negin, providers.md) is claimed ahead, so none is held for it."""
    from workers.operations.lease import quick_terms

    deps = deps_for(store, sandbox_environ)
    deps.providers.get("negin")
    assert {"ghasedak", "negin"} <= set(quick_terms(deps)[0])
    providers, lease, wait = ahead_terms(deps)
    assert "ghasedak" in providers and "negin" not in providers
    assert lease == quick_terms(deps)[1] + timedelta(seconds=wait) and wait > 0
