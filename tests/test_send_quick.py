"""The quick claim and record (campaigns/store/quick.py) on both stores: the same compare-and-set, charge and
counters as the two-step claim, in one statement (PostgreSQL) or one transaction (SQLite); chunks that need
their peek (a send window, a failover route, a rate-limited provider, a cap to pause at) are left to the usual
path. The `store` fixture checks the counters against a recount of the rows after every test.
"""

from __future__ import annotations

import threading
from datetime import timedelta

import pandas as pd
import pytest

from campaigns.plan import plan
from campaigns.prices import PriceTable
from campaigns.records import ChunkPeek, ClaimedChunk
from campaigns.states import CampaignState, ChunkState, RecipientState
from campaigns.store import CampaignSpec, RecipientUpdate, Store
from campaigns.text import Template
from workers.deps import ProviderPool, WorkerDeps
from workers.operations.send import OutcomeKind, send_chunk
from workers.operations.send_many import send_chunks
from workers.settings import DispatchSettings

LEASE = timedelta(seconds=60)
PRICE = PriceTable({(None, None): 1000.0}, "test")  # rial per SMS part


def make(store: Store, n: int, batch: int = 10, **spec: object) -> int:
    df = pd.DataFrame({"row": range(2, n + 2), "phone": [f"+98912{i:07d}" for i in range(n)]})
    fields = dict(
        name="quick", provider="ghasedak", account="ghasedak:x", sender="", message="Hi", personalised=False
    )
    return store.create_campaign(CampaignSpec(**{**fields, **spec}), plan([df], Template("Hi"), batch, []))


def first_chunk(store: Store, campaign_id: int) -> tuple[int, int]:
    return store.claimable_chunks(limit=1, campaign_id=campaign_id)[0]


def chunk_state(store: Store, campaign_id: int) -> dict[str, int]:
    return store.campaign(campaign_id).chunk_counts


def test_a_quick_claim_claims_charges_and_reads_what_to_send(store):
    cid = make(store, 30, prices=PRICE, budget_rial=1_000_000)
    chunk_id, attempt = first_chunk(store, cid)
    got = store.claim_quick(chunk_id, attempt, LEASE, ["ghasedak"])
    assert isinstance(got, ClaimedChunk)
    assert (got.chunk_id, got.campaign_id, got.attempt, got.provider) == (
        chunk_id,
        cid,
        attempt + 1,
        "ghasedak",
    )
    assert len(got.messages) == 10 and got.parts == 10
    assert got.messages == store.load_chunk(chunk_id).messages  # what the two-step claim reads
    prefix = got.messages[0].client_ref.removesuffix(str(got.messages[0].recipient_id))
    assert all(m.client_ref == f"{prefix}{m.recipient_id}" for m in got.messages)
    view = store.campaign(cid)
    assert (view.spent_rial, view.spent_parts) == (10_000, 10)
    assert chunk_state(store, cid) == {ChunkState.SENDING: 1, ChunkState.QUEUED: 2}
    # the same message again, or one at the old attempt: nothing claimed, nothing charged
    again = store.claim_quick(chunk_id, attempt, LEASE, ["ghasedak"])
    assert isinstance(again, ChunkPeek) and not again.claimable
    assert (store.campaign(cid).spent_rial, store.campaign(cid).spent_parts) == (10_000, 10)
    assert store.claim_quick(10**9, 0, LEASE, ["ghasedak"]) is None


@pytest.mark.parametrize(
    "spec, providers",
    [
        ({"window": "00:00-00:01"}, ["ghasedak"]),  # a send window: the peek decides whether it is open
        ({"route": ("ghasedak", "amoot")}, ["ghasedak"]),  # failover: the circuit is asked before the claim
        ({}, ["amoot"]),  # ghasedak has a rate limit in this process: the limiter is asked first
        ({"spend_principal": "key:7"}, ["ghasedak"]),  # a capped starter: the daily cap is charged first
    ],
    ids=["window", "route", "rate-limited", "daily-capped"],
)
def test_chunks_that_need_their_peek_are_not_claimed_quickly(store, spec, providers):
    cid = make(store, 20, **spec)
    chunk_id, attempt = first_chunk(store, cid)
    got = store.claim_quick(chunk_id, attempt, LEASE, providers)
    assert isinstance(got, ChunkPeek) and got.claimable
    assert got.route == tuple(spec.get("route", ())) and got.window == spec.get("window")
    assert chunk_state(store, cid) == {ChunkState.QUEUED: 2}
    assert (store.campaign(cid).spent_rial, store.campaign(cid).spent_parts) == (0, 0)


def test_a_chunk_over_the_budget_is_not_claimed_and_its_campaign_pauses(store):
    cid = make(store, 20, prices=PRICE, budget_rial=5_000)  # a chunk of 10 parts costs 10,000 rial
    chunk_id, attempt = first_chunk(store, cid)
    got = store.claim_quick(chunk_id, attempt, LEASE, ["ghasedak"])
    assert not isinstance(got, ClaimedChunk)
    assert store.claim_chunk(chunk_id, attempt, LEASE) is None  # the usual path (SQLite's quick one paused)
    view = store.campaign(cid)
    assert (view.state, view.state_reason) == (CampaignState.PAUSED, "budget reached: 0 of 5,000 rial")
    assert (view.spent_rial, view.spent_parts) == (0, 0)
    assert view.chunk_counts == {ChunkState.QUEUED: 2}


def test_a_paused_campaign_is_not_claimed_quickly(store):
    cid = make(store, 20)
    chunk_id, attempt = first_chunk(store, cid)
    assert store.pause(cid)
    got = store.claim_quick(chunk_id, attempt, LEASE, ["ghasedak"])
    assert isinstance(got, ChunkPeek) and not got.claimable
    assert chunk_state(store, cid) == {ChunkState.QUEUED: 2}


def test_racing_quick_claims_have_one_winner(store):
    cid = make(store, 50, prices=PRICE, budget_rial=1_000_000)
    chunks = store.claimable_chunks(limit=10, campaign_id=cid)
    won: list[ClaimedChunk] = []
    lock = threading.Lock()
    start = threading.Barrier(6)

    def racer() -> None:
        start.wait()
        for chunk_id, attempt in chunks:
            got = store.claim_quick(chunk_id, attempt, LEASE, ["ghasedak"])
            if isinstance(got, ClaimedChunk):
                with lock:
                    won.append(got)

    threads = [threading.Thread(target=racer) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(c.chunk_id for c in won) == sorted(c for c, _ in chunks)  # each chunk once
    assert (store.campaign(cid).spent_rial, store.campaign(cid).spent_parts) == (50_000, 50)  # charged once


def test_a_quick_record_accepts_once_and_counts_once(store):
    cid = make(store, 10)
    chunk_id, attempt = first_chunk(store, cid)
    chunk = store.claim_quick(chunk_id, attempt, LEASE, ["ghasedak"])
    assert isinstance(chunk, ClaimedChunk)
    updates = [
        RecipientUpdate(m.recipient_id, RecipientState.SENT, f"m{m.recipient_id}") for m in chunk.messages
    ]
    assert store.record_send(chunk, updates, requeue=False)
    assert not store.record_send(chunk, updates, requeue=False)  # written again: the chunk moved on already
    view = store.campaign(cid)
    assert view.counts == {RecipientState.SENT: 10}
    assert view.chunk_counts == {ChunkState.ACCEPTED: 1}


def test_several_chunks_of_one_message_send_each_once(store, sandbox_environ, sandbox):
    """`send_chunks` (one broker message naming several chunks): each chunk its own claim; a duplicate in the
    same message and a chunk that does not exist are skipped, the rest is sent, each number once."""
    deps = WorkerDeps(store=store, providers=ProviderPool(sandbox_environ), settings=DispatchSettings())
    cid = make(store, 40)
    chunks = store.claimable_chunks(limit=10, campaign_id=cid)
    followed = []
    outcomes = send_chunks([*chunks, chunks[0], (10**9, 0)], deps, then=followed.append)
    kinds = [o.kind for o in outcomes]
    assert kinds == [OutcomeKind.ACCEPTED] * 4 + [OutcomeKind.SKIPPED] * 2
    assert followed == outcomes
    phones = [m.phone for m in sandbox.state.accepted("ghasedak")]
    assert len(phones) == len(set(phones)) == 40
    assert store.campaign(cid).state == CampaignState.RUNNING
    assert send_chunk(chunks[1][0], chunks[1][1], deps).kind == OutcomeKind.SKIPPED


def test_a_chunks_record_runs_beside_the_next_chunks_call_and_the_message_ends_when_all_are_written(
    store, sandbox_environ, sandbox, monkeypatch
):
    """In a message of several chunks, an accepted chunk's record is written by the message's own thread
    while the next chunk is claimed and sent; `send_chunks` returns once every record is written. A chunk
    that asks to be re-published (part of it not sent) is recorded before its follow-up runs, so the message
    that re-publishes it finds it claimable."""
    from dataclasses import replace
    from time import perf_counter, sleep

    from workers.status import SendOutcome

    deps = WorkerDeps(store=store, providers=ProviderPool(sandbox_environ), settings=DispatchSettings())
    cid = make(store, 40)
    chunks = store.claimable_chunks(limit=10, campaign_id=cid)
    events: list[tuple[str, int, float]] = []
    record_send = store.record_send

    def slow_record(chunk, updates, **kw):  # noqa: ANN001, ANN003, ANN202
        events.append(("record from", chunk.chunk_id, perf_counter()))
        sleep(0.3)
        try:
            return record_send(chunk, updates, **kw)
        finally:
            events.append(("record to", chunk.chunk_id, perf_counter()))

    client = deps.providers.get("ghasedak")
    send = client.send
    first_of_last = store.load_chunk(chunks[-1][0]).messages[0].recipient_id

    def send_and_lose_one(batch):  # noqa: ANN001, ANN202
        events.append(("call", batch.messages[0].recipient_id, perf_counter()))
        results = send(batch)
        if batch.messages[0].recipient_id == first_of_last:  # its last number "not sent": re-published
            results[-1] = replace(results[-1], outcome=SendOutcome.NOT_SENT, message_id=None)
        return results

    monkeypatch.setattr(store, "record_send", slow_record)
    monkeypatch.setattr(client, "send", send_and_lose_one)
    claimable_at_follow_up = []

    def follow_up(outcome):  # noqa: ANN001, ANN202
        if outcome.kind == OutcomeKind.REQUEUED:
            claimable_at_follow_up.append(
                outcome.chunk_id in {c for c, _ in store.claimable_chunks(limit=10, campaign_id=cid)}
            )

    outcomes = send_chunks(chunks, deps, then=follow_up)
    done = perf_counter()
    assert [o.kind for o in outcomes] == [OutcomeKind.ACCEPTED] * 3 + [OutcomeKind.REQUEUED]
    assert claimable_at_follow_up == [True]
    calls = [t for kind, _, t in events if kind == "call"]
    ends = {c: t for kind, c, t in events if kind == "record to"}
    assert calls[1] < ends[chunks[0][0]]  # the second call went out while the first record was written
    assert all(t <= done for t in ends.values()) and len(ends) == 4  # every record written before the return
    view = store.campaign(cid)
    assert view.counts == {RecipientState.SENT: 39, RecipientState.PENDING: 1}


def test_a_follow_up_that_raises_ends_the_message_only_after_the_records_handed_on(
    store, sandbox_environ, sandbox, monkeypatch
):
    """A follow-up that raises (the broker's publish failing) stops the message, but not before the record of
    an accepted chunk, written beside the next call, is in: the message is acknowledged after its records."""
    from time import sleep

    deps = WorkerDeps(store=store, providers=ProviderPool(sandbox_environ), settings=DispatchSettings())
    cid = make(store, 30)
    chunks = store.claimable_chunks(limit=10, campaign_id=cid)
    record_send = store.record_send

    def slow_record(chunk, updates, **kw):  # noqa: ANN001, ANN003, ANN202
        sleep(0.3)
        return record_send(chunk, updates, **kw)

    def follow_up(outcome):  # noqa: ANN001, ANN202
        raise ConnectionError("the broker went away")

    monkeypatch.setattr(store, "record_send", slow_record)
    with pytest.raises(ConnectionError):
        send_chunks(chunks, deps, then=follow_up)
    view = store.campaign(cid)  # read as the exception leaves: the first chunk's record is written
    assert view.chunk_counts == {ChunkState.ACCEPTED: 1, ChunkState.QUEUED: 2}
    assert view.counts == {RecipientState.SENT: 10, RecipientState.PENDING: 20}
