"""Budget and cost (README, "Budget and cost") on both stores: the caps are charged in the claim's own
transaction, so claims racing from many threads never cross them together; refunds give a charge back
only where nothing went out; the provider's reported price is recorded per recipient.

The embedded test sends through the sandbox over real HTTP; its record of what it accepted is the witness.
"""

from __future__ import annotations

import random
import threading
from datetime import timedelta

import pandas as pd
import pytest
from sqlalchemy import select

from campaigns.clock import utcnow
from campaigns.operators import Operator
from campaigns.plan import plan
from campaigns.prices import PriceTable, UnpricedError
from campaigns.states import CampaignState, ChunkState, RecipientState
from campaigns.store import CampaignSpec, RecipientUpdate, Store, chunks_t
from campaigns.text import Alphabet, Template
from dispatcher.engine.runner import LocalRunner
from dispatcher.humane import Calendar
from dispatcher.reports.summary import summarise
from workers.deps import ProviderPool, WorkerDeps
from workers.settings import DispatchSettings

LEASE = timedelta(seconds=60)
PRICE = PriceTable({(None, None): 1000.0}, "test")  # rial per SMS part, any operator and alphabet


def phones(n: int) -> list[str]:
    return [f"+98912{i:07d}" for i in range(n)]


def make(
    store: Store,
    n: int,
    batch: int,
    *,
    budget: int | None = None,
    max_parts: int | None = None,
    prices: PriceTable | None = PRICE,
    message: str = "Hello",
    provider: str = "ghasedak",
) -> int:
    df = pd.DataFrame({"row": range(2, n + 2), "phone": phones(n)})
    spec = CampaignSpec(
        name="budget",
        provider=provider,
        account=f"{provider}:x",
        sender="",
        message=message,
        personalised=False,
        budget_rial=budget,
        max_parts=max_parts,
        prices=prices,
    )
    return store.create_campaign(spec, plan([df], Template(message), batch, []))


def claim_all(store: Store, campaign_id: int) -> list:
    """Claim every claimable chunk of the campaign in id order, one at a time; the claims that succeeded."""
    out = []
    for chunk_id, attempt in store.claimable_chunks(limit=10_000, campaign_id=campaign_id):
        claimed = store.claim_chunk(chunk_id, attempt, LEASE)
        if claimed is not None:
            out.append(claimed)
    return out


def spent(store: Store, campaign_id: int) -> tuple[int, int]:
    view = store.campaign(campaign_id)
    return view.spent_rial, view.spent_parts


def test_a_chunk_that_would_cross_the_budget_pauses_the_campaign_with_the_reason(store):
    cid = make(store, 100, 10, budget=45_500)  # chunks of 10 parts: 10,000 rial each
    assert store.campaign(cid).cost_estimated == 100_000
    claimed = claim_all(store, cid)
    assert len(claimed) == 4
    view = store.campaign(cid)
    assert view.state == CampaignState.PAUSED
    assert view.state_reason == "budget reached: 40,000 of 45,500 rial"
    assert (view.spent_rial, view.spent_parts) == (40_000, 40)
    for chunk in claimed:  # they went out
        store.record_send(
            chunk,
            [RecipientUpdate(m.recipient_id, RecipientState.SENT) for m in chunk.messages],
            requeue=False,
        )
    assert store.campaign(cid).counts == {RecipientState.SENT: 40, RecipientState.PENDING: 60}
    # resume --budget: raised, the rest goes
    assert store.raise_budget(cid, budget_rial=100_000)
    assert store.resume(cid)
    assert len(claim_all(store, cid)) == 6
    assert spent(store, cid) == (100_000, 100)
    assert store.campaign(cid).state == CampaignState.RUNNING


def test_the_part_cap_pauses_with_its_own_reason(store):
    cid = make(store, 50, 10, max_parts=45, prices=None)  # no price needed for a part cap
    assert len(claim_all(store, cid)) == 4
    view = store.campaign(cid)
    assert (view.state, view.state_reason) == (CampaignState.PAUSED, "part cap reached: 40 of 45 parts")
    assert view.cost_estimated is None
    store.raise_budget(cid, max_parts=50)
    store.resume(cid)
    assert len(claim_all(store, cid)) == 1


def test_a_budget_without_a_price_is_bad_input_and_nothing_is_stored(store):
    with pytest.raises(UnpricedError, match="SMSDISPATCH_GHASEDAK_PRICE"):
        make(store, 10, 5, budget=10_000, prices=None)
    partial = PriceTable({(None, "ucs2"): 1000.0}, "SMSDISPATCH_GHASEDAK_PRICE")  # no gsm7 price
    with pytest.raises(UnpricedError, match="gsm7"):
        make(store, 10, 5, budget=10_000, prices=partial)
    assert store.campaigns() == []
    cid = make(store, 10, 5, prices=None)  # stored without prices: it takes no rial budget later
    with pytest.raises(UnpricedError):
        store.raise_budget(cid, budget_rial=5_000)


def test_costs_follow_operator_and_alphabet_rounded_up_per_chunk(store):
    prices = PriceTable({(None, "gsm7"): 333.4, (None, "ucs2"): 900.0}, "test")
    cid = make(store, 3, 3, prices=prices, budget=10_000)
    with store.engine.connect() as conn:
        assert (
            conn.execute(select(chunks_t.c.cost_rial).where(chunks_t.c.campaign_id == cid)).scalar_one()
            == 1001
        )
    cid = make(store, 2, 1, prices=prices, message="سلام")
    assert store.campaign(cid).cost_estimated == 1800


def test_refunds_only_where_nothing_went_out(store):
    cid = make(store, 40, 10, budget=1_000_000)
    a, b, c, d = claim_all(store, cid)
    assert spent(store, cid) == (40_000, 40)
    store.chunk_retry(a, "timeout before sending", 0.0, 5)  # retry: given back
    assert spent(store, cid) == (30_000, 30)
    store.pause_for_account(b, "credit low")  # account refusal, requeued: given back
    assert spent(store, cid) == (20_000, 20)
    store.chunk_unknown(c, "read timeout")  # may have gone out: kept
    store.record_send(
        d, [RecipientUpdate(m.recipient_id, RecipientState.SENT) for m in d.messages], requeue=False
    )
    assert spent(store, cid) == (20_000, 20)
    store.resume(cid)
    again = claim_all(store, cid)  # the retried one (due now) and the requeued one, charged again
    assert sorted(x.chunk_id for x in again) == sorted([a.chunk_id, b.chunk_id])
    assert spent(store, cid) == (40_000, 40)
    new = store.split_chunk(again[0], "a number refused")  # split: given back, the halves priced
    assert new is not None and spent(store, cid) == (30_000, 30)
    with store.engine.connect() as conn:
        costs = dict(
            conn.execute(
                select(chunks_t.c.id, chunks_t.c.cost_rial).where(chunks_t.c.id.in_([again[0].chunk_id, new]))
            ).all()
        )
    assert costs == {again[0].chunk_id: 5_000, new: 5_000}
    store.chunk_failed(again[1], "400 bad request")  # refused before sending: given back
    assert spent(store, cid) == (20_000, 20)


def test_a_partly_sent_chunk_keeps_the_charge_of_what_went_out(store):
    cid = make(store, 10, 10, budget=1_000_000)
    (chunk,) = claim_all(store, cid)
    went = [RecipientUpdate(m.recipient_id, RecipientState.SENT) for m in chunk.messages[:4]]
    store.record_send(chunk, went, requeue=True)  # six were not sent: requeued
    assert spent(store, cid) == (4_000, 4)
    (again,) = claim_all(store, cid)
    assert len(again.messages) == 6 and spent(store, cid) == (10_000, 10)


def test_reconciliation_gives_back_the_share_it_found_unsent(store):
    cid = make(store, 10, 10, budget=1_000_000)
    (chunk,) = claim_all(store, cid)
    store.chunk_unknown(chunk, "read timeout")  # may have gone out: kept
    assert spent(store, cid) == (10_000, 10)
    found = [RecipientUpdate(m.recipient_id, RecipientState.SENT, "m") for m in chunk.messages[:3]]
    recorded = store.record_reconciled(store.load_chunk(chunk.chunk_id), found, requeue=True)
    assert recorded.moved and recorded.found == 3
    assert spent(store, cid) == (3_000, 3)  # seven known unsent: given back; the next claim charges them
    (again,) = claim_all(store, cid)
    assert len(again.messages) == 7 and spent(store, cid) == (10_000, 10)


def _race(store: Store, campaign_id: int, threads: int) -> int:
    """`threads` threads claim the campaign's chunks at once, each in its own order; claims that succeeded."""
    chunks = store.claimable_chunks(limit=10_000, campaign_id=campaign_id)
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
    return len(won)


def test_threads_racing_to_claim_never_cross_the_budget(store):
    cid = make(store, 600, 10, budget=205_000)  # 60 chunks of 10,000 rial; room for 20
    won = _race(store, cid, 16)
    view = store.campaign(cid)
    assert won == 20 and view.spent_rial == 200_000 <= 205_000
    assert (
        view.state == CampaignState.PAUSED and view.state_reason == "budget reached: 200,000 of 205,000 rial"
    )
    assert view.chunk_counts == {ChunkState.SENDING: 20, ChunkState.QUEUED: 40}


def test_a_lost_race_for_one_chunk_leaves_no_charge_behind(store):
    cid = make(store, 100, 10, budget=10_000_000)
    assert _race(store, cid, 12) == 10
    assert spent(store, cid) == (100_000, 100)  # each chunk charged once, however many tried it


def test_reported_costs_are_recorded_and_summed_beside_the_estimate(store):
    cid = make(store, 20, 10)
    a, b = claim_all(store, cid)
    for chunk in (a, b):
        store.record_send(
            chunk,
            [
                RecipientUpdate(m.recipient_id, RecipientState.SENT, f"m{m.recipient_id}")
                for m in chunk.messages
            ],
            requeue=False,
        )
    assert store.campaign_costs(cid) == (20_000, None)
    store.record_statuses(
        [RecipientUpdate(m.recipient_id, RecipientState.DELIVERED, cost=155.0) for m in a.messages]
    )
    store.record_statuses(
        [RecipientUpdate(m.recipient_id, RecipientState.SENT_TO_OPERATOR) for m in b.messages]
    )
    assert store.campaign_costs(cid) == (20_000, 1550.0)
    store.record_statuses(
        [RecipientUpdate(m.recipient_id, RecipientState.DELIVERED, cost=155.0) for m in b.messages]
    )
    (row,) = summarise(store, [cid], None, utcnow())
    assert (row.cost_estimated, row.cost_spent, row.cost_actual) == (20_000, 20_000, 3100)
    cells = row.as_row(Calendar.GREGORIAN)
    assert (cells["spent (rial)"], cells["reported"]) == ("20,000 of 20,000", "3,100")


def test_embedded_runner_stops_at_the_budget_then_finishes_once_raised(store, sandbox_environ, sandbox):
    price = 1000  # rial per part, ours; the sandbox's ghasedak reports its own 155 per message
    cid = make(store, 120, 10, budget=55_000)
    deps = WorkerDeps(
        store=store,
        providers=ProviderPool(sandbox_environ),
        settings=DispatchSettings(poll_intervals=(0.05, 0.1), backoff_base=0.01, backoff_cap=0.05),
    )
    result = LocalRunner(deps, threads=4, tick=0.02).send(cid, timeout=60)
    accepted = sandbox.state.accepted("ghasedak")
    assert len(accepted) * price <= 55_000
    assert (result.state, result.reason) == (CampaignState.PAUSED, "budget reached: 50,000 of 55,000 rial")
    assert store.campaign(cid).counts.get(RecipientState.PENDING) == 120 - len(accepted) == 70
    store.raise_budget(cid, budget_rial=120_000)
    store.resume(cid)
    result = LocalRunner(deps, threads=4, tick=0.02).send(cid, timeout=60)
    assert not result.timed_out
    assert sorted(m.phone for m in sandbox.state.accepted("ghasedak")) == sorted(p[1:] for p in phones(120))
    assert LocalRunner(deps, tick=0.02).poll(campaign_id=cid, timeout=60)  # every delivery report in
    estimated, actual = store.campaign_costs(cid)
    reported = sum(1 for s in store.recipient_states(cid).values() if s != RecipientState.SENT)
    assert estimated == 120_000 and actual == 155 * reported > 0  # the sandbox's price per message


def test_amoot_reported_costs_are_recorded(store, sandbox_environ, sandbox):
    cid = make(store, 12, 6, provider="amoot")
    deps = WorkerDeps(
        store=store,
        providers=ProviderPool(sandbox_environ),
        settings=DispatchSettings(poll_intervals=(0.05, 0.1), backoff_base=0.01, backoff_cap=0.05),
    )
    runner = LocalRunner(deps, threads=2, tick=0.02)
    runner.send(cid, timeout=60)
    assert runner.poll(campaign_id=cid, timeout=60)
    accepted = len(sandbox.state.accepted("amoot"))
    assert accepted > 0
    # the sandbox's GetDeliveries `Cost` for each message it took: its tariff, 1,000 rial a part, one part
    assert store.campaign_costs(cid) == (12_000, 1000.0 * accepted)


def test_only_the_prices_the_recipients_need_must_be_known(store):
    # MCI numbers (+98912) with a gsm7 text: an Irancell price or a ucs2 one is not needed
    prices = PriceTable({(Operator.MCI, Alphabet.GSM7): 700.0}, "SMSDISPATCH_GHASEDAK_PRICE")
    cid = make(store, 10, 5, prices=prices, budget=7_000)
    assert store.campaign(cid).cost_estimated == 7_000
    with pytest.raises(UnpricedError, match="no price for ucs2 parts to MCI numbers"):
        make(store, 10, 5, prices=prices, budget=7_000, message="سلام")


def test_a_moved_chunk_carries_its_cost_and_a_claimed_one_gives_its_charge_back(store):
    """Budget and failover: a chunk re-planned for another provider of a route keeps the recipients' estimate
    (by their share of its parts), so the budget still counts them; if it had been claimed (charged),
    the charge is given back in the reroute's transaction and the new chunks are charged at their claims."""
    cid = make(store, 10, 10, budget=1_000_000)
    (chunk_id, attempt), *_ = store.claimable_chunks(campaign_id=cid)
    target = {"provider": "mediapayamak", "account": "m:x", "sender": "5000", "batch": 4, "reason": "test"}
    claimed = store.claim_chunk(chunk_id, attempt, LEASE)
    charged = spent(store, cid)
    assert charged[0] > 0
    new = store.reroute_chunk(chunk_id, claimed.attempt, **target)
    assert new is not None and len(new) == 3
    assert spent(store, cid) == (0, 0)  # the claimed chunk's charge came back with the move
    claims = claim_all(store, cid)
    assert len(claims) == 3 and spent(store, cid)[0] >= charged[0]  # the moved recipients still count


def test_a_route_paused_with_a_claimed_chunk_gives_its_charge_back(store):
    """Every provider of a route unusable: the claimed chunk goes back to the queue and its charge with it."""
    cid = make(store, 10, 10, budget=1_000_000)
    (claimed,) = claim_all(store, cid)
    assert spent(store, cid)[0] > 0
    assert store.pause_route(cid, claimed.chunk_id, claimed.attempt, "every provider unusable")
    assert spent(store, cid) == (0, 0)
    assert store.chunk_counts(cid) == {ChunkState.QUEUED: 1}
