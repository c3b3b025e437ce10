"""The send / reconcile / poll operations against the sandbox over real HTTP, on both stores.

Faults are injected at the sandbox; the sandbox's record of what it accepted is the witness that
no recipient went out twice and none was lost.
"""

from __future__ import annotations

import threading
from collections import Counter
from datetime import timedelta

import pandas as pd
import pytest

from campaigns.plan import plan
from campaigns.states import CampaignState, ChunkState, RecipientState
from campaigns.store import CampaignSpec, Store
from campaigns.text import Template
from dispatcher.engine.runner import LocalRunner
from dispatcher.sandbox.core import Fault
from workers.deps import ProviderPool, WorkerDeps
from workers.operations.send import send_chunk
from workers.settings import DispatchSettings

FAST = DispatchSettings(
    backoff_base=0.01, backoff_cap=0.05, poll_intervals=(0.05, 0.1), reconcile_max_age=5, max_attempts=4
)


def numbers(n: int) -> list[str]:
    return [f"+98935{i:07d}" for i in range(n)]


def campaign(
    store: Store, provider: str, phones: list[str], batch: int = 10, on_unknown: str = "hold"
) -> int:
    df = pd.DataFrame({"row": range(2, len(phones) + 2), "phone": phones})
    template = Template("Hello")
    spec = CampaignSpec(
        name="op",
        provider=provider,
        account=f"{provider}:x",
        sender="",
        message="Hello",
        personalised=False,
        on_unknown=on_unknown,
    )
    return store.create_campaign(spec, plan([df], template, batch, []))


@pytest.fixture
def deps(store, sandbox_environ, sandbox):
    env = {
        **sandbox_environ,
        "SMSDISPATCH_GHASEDAK_RECONCILE_GRACE": "0",
        "SMSDISPATCH_AMOOT_RECONCILE_GRACE": "0",
        "SMSDISPATCH_MEDIAPAYAMAK_RECONCILE_GRACE": "0",
    }
    return WorkerDeps(store=store, providers=ProviderPool(env), settings=FAST)


def sent_once(sandbox, provider: str, phones: list[str]) -> None:
    counts = Counter(m.phone for m in sandbox.state.accepted(provider))
    assert set(counts.values()) <= {1}, "sent twice"
    assert {"+" + p for p in counts} == set(phones), "lost or extra recipients"


def test_transient_codes_back_off_then_send(deps, sandbox):
    phones = numbers(20)
    cid = campaign(deps.store, "ghasedak", phones)
    sandbox.state.add_fault(Fault("ghasedak", "send", "code", code=10, times=2))
    sandbox.state.add_fault(Fault("ghasedak", "send", "http", status=503, times=1))
    result = LocalRunner(deps, threads=2, tick=0.02, reconcile_every=0.05).send(cid, timeout=30)
    assert result.state == CampaignState.RUNNING and not result.timed_out
    sent_once(sandbox, "ghasedak", phones)
    assert deps.store.campaign(cid).chunk_counts == {ChunkState.ACCEPTED: 2}


def test_persistent_transient_errors_fail_with_the_reason(deps, sandbox):
    phones = numbers(5)
    cid = campaign(deps.store, "ghasedak", phones)
    sandbox.state.add_fault(Fault("ghasedak", "send", "code", code=10, times=100))
    LocalRunner(deps, threads=1, tick=0.02, reconcile_every=0.05).send(cid, timeout=30)
    view = deps.store.campaign(cid)
    assert view.counts == {RecipientState.FAILED: 5}
    rows = list(deps.store.recipients_rows(cid))
    assert all("gave up after 4 attempts" in r["error"] and "code 10" in r["error"] for r in rows)


def test_ambiguous_send_is_reconciled_not_repeated(deps, sandbox):
    phones = numbers(10)
    cid = campaign(deps.store, "ghasedak", phones)
    sandbox.state.add_fault(Fault("ghasedak", "send", "accept_then_http", status=500))
    LocalRunner(deps, threads=1, tick=0.02, reconcile_every=0.05).send(cid, timeout=30)
    sent_once(sandbox, "ghasedak", phones)
    assert deps.store.campaign(cid).counts == {RecipientState.SENT: 10}


def test_timeout_before_accept_is_resent_after_reconciliation(deps, sandbox):
    phones = numbers(10)
    env_deps = WorkerDeps(
        deps.store, ProviderPool({**deps.providers._env, "SMSDISPATCH_GHASEDAK_TIMEOUT": "1,0.5"}), FAST
    )
    cid = campaign(deps.store, "ghasedak", phones)
    # The sandbox accepts the hung request when its wait ends: the ledger is read before that (the campaign
    # is done in well under a second). A 1 s wait left a margin of ~0.15 s on a busy machine: flaky.
    sandbox.state.add_fault(Fault("ghasedak", "send", "hang", seconds=4.0))
    LocalRunner(env_deps, threads=1, tick=0.02, reconcile_every=0.05).send(cid, timeout=30)
    sent_once(sandbox, "ghasedak", phones)


def test_timeout_after_accept_is_found_by_checkid(deps, sandbox):
    phones = numbers(10)
    env_deps = WorkerDeps(
        deps.store, ProviderPool({**deps.providers._env, "SMSDISPATCH_GHASEDAK_TIMEOUT": "1,0.5"}), FAST
    )
    cid = campaign(deps.store, "ghasedak", phones)
    sandbox.state.add_fault(Fault("ghasedak", "send", "accept_then_hang", seconds=1.0))
    LocalRunner(env_deps, threads=1, tick=0.02, reconcile_every=0.05).send(cid, timeout=30)
    sent_once(sandbox, "ghasedak", phones)
    assert deps.store.campaign(cid).counts == {RecipientState.SENT: 10}


def test_provider_that_cannot_be_asked_holds_as_unknown(deps, sandbox):
    phones = [p for p in numbers(6) if sandbox.state.outcome(p) != "blacklisted"][:3]
    cid = campaign(deps.store, "negin", phones, batch=1)
    sandbox.state.add_fault(Fault("negin", "send", "accept_then_http", status=500))
    LocalRunner(deps, threads=1, tick=0.02, reconcile_every=0.05).send(cid, timeout=30)
    counts = deps.store.campaign(cid).counts
    assert counts.get(RecipientState.UNKNOWN) == 1 and counts.get(RecipientState.SENT) == 2
    rows = [r for r in deps.store.recipients_rows(cid) if r["state"] == "unknown"]
    assert "negin offers no way to ask" in rows[0]["error"]
    assert len(sandbox.state.accepted("negin")) == 3  # the held one did go out once; nothing was resent


def test_resend_policy_opts_in_to_resending(deps, sandbox):
    phones = [p for p in numbers(6) if sandbox.state.outcome(p) != "blacklisted"][:2]
    cid = campaign(deps.store, "negin", phones, batch=1, on_unknown="resend")
    sandbox.state.add_fault(Fault("negin", "send", "http", status=500))  # not accepted, but we cannot know
    LocalRunner(deps, threads=1, tick=0.02, reconcile_every=0.05).send(cid, timeout=30)
    assert deps.store.campaign(cid).counts == {RecipientState.SENT: 2}
    sent_once(sandbox, "negin", phones)


def test_account_error_pauses_after_the_first_answer(deps, sandbox):
    phones = numbers(50)
    cid = campaign(deps.store, "ghasedak", phones, batch=5)
    sandbox.state.credit["ghasedak"] = 10
    result = LocalRunner(deps, threads=1, tick=0.02, reconcile_every=0.05).send(cid, timeout=30)
    assert result.state == CampaignState.PAUSED and "code 9" in result.reason
    sends = sandbox.state.calls[("ghasedak", "send")]
    assert sends == 3  # two accepted, the third refused; nothing more was tried
    sandbox.state.credit.pop("ghasedak")
    assert deps.store.resume(cid)
    LocalRunner(deps, threads=2, tick=0.02, reconcile_every=0.05).send(cid, timeout=30)
    sent_once(sandbox, "ghasedak", phones)


def test_duplicate_task_messages_send_once(deps, sandbox):
    phones = numbers(10)
    cid = campaign(deps.store, "ghasedak", phones)
    ((chunk_id, attempt),) = deps.store.claimable_chunks(campaign_id=cid)
    outcomes, barrier = [], threading.Barrier(6)

    def deliver() -> None:
        barrier.wait()
        outcomes.append(send_chunk(chunk_id, attempt, deps).kind)

    threads = [threading.Thread(target=deliver) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(outcomes) == ["accepted"] + ["skipped"] * 5
    sent_once(sandbox, "ghasedak", phones)


def test_refused_number_in_a_batch_is_isolated(deps, sandbox):
    phones = numbers(8)
    cid = campaign(deps.store, "ghasedak", phones, batch=8)
    sandbox.state.add_fault(Fault("ghasedak", "send", "code", code=20, times=1))
    LocalRunner(deps, threads=1, tick=0.02, reconcile_every=0.05).send(cid, timeout=30)
    sent_once(sandbox, "ghasedak", phones)  # the split halves went out once each


def test_polling_reaches_the_final_state_the_sandbox_decided(deps, sandbox):
    phones = numbers(30)
    cid = campaign(deps.store, "ghasedak", phones)
    runner = LocalRunner(deps, threads=2, tick=0.02, reconcile_every=0.05)
    runner.send(cid, timeout=30)
    assert runner.poll(campaign_id=cid, timeout=30)
    states = deps.store.recipient_states(cid)
    assert states == {p: sandbox.state.outcome(p) for p in phones}
    runner.poll(until_done=False)
    assert deps.store.campaign(cid).state == CampaignState.COMPLETED


def test_expired_after_the_max_age(deps, sandbox):
    phones = numbers(3)
    cid = campaign(deps.store, "ghasedak", phones)
    sandbox.state.final_after_s = 3600
    aged = WorkerDeps(deps.store, deps.providers, DispatchSettings(poll_intervals=(0.05,), poll_max_age=0.3))
    runner = LocalRunner(aged, threads=1, tick=0.02)
    runner.send(cid, timeout=30)
    assert runner.poll(campaign_id=cid, timeout=30)
    assert set(deps.store.recipient_states(cid).values()) == {"expired"}


def test_lease_lost_mid_send_is_reconciled(deps, sandbox):
    """A worker that died after the provider accepted: lease expires -> unknown -> found by checkid."""
    phones = numbers(4)
    cid = campaign(deps.store, "ghasedak", phones)
    ((chunk_id, attempt),) = deps.store.claimable_chunks(campaign_id=cid)
    chunk = deps.store.claim_chunk(chunk_id, attempt, timedelta(seconds=0))
    client = deps.providers.get("ghasedak")
    from workers.operations.send import batch_for

    client.send(batch_for(chunk))  # the provider took it; then the worker "died"
    LocalRunner(deps, threads=1, tick=0.02, reconcile_every=0.05).send(cid, timeout=30)
    sent_once(sandbox, "ghasedak", phones)
    # found as sent; the runner's poll thread may already have had their delivery reports (the sandbox
    # decides at once), depending on which of it and reconciliation took the database first
    counts = deps.store.campaign(cid).counts
    assert set(counts) <= {RecipientState.SENT, RecipientState.DELIVERED} and sum(counts.values()) == 4, (
        counts
    )


def test_send_window_holds_then_releases(deps, sandbox):
    from datetime import datetime as dt

    from campaigns.windows import TEHRAN

    phones = numbers(4)
    cid = campaign(deps.store, "ghasedak", phones)
    now = dt.now(TEHRAN)
    closed = f"{(now.hour + 2) % 24:02d}:00-{(now.hour + 3) % 24:02d}:00"
    with deps.store.engine.begin() as conn:
        from campaigns.store import campaigns_t

        conn.execute(campaigns_t.update().where(campaigns_t.c.id == cid).values(window=closed))
    (chunk_id, attempt), *_ = deps.store.claimable_chunks(campaign_id=cid)
    outcome = send_chunk(chunk_id, attempt, deps)
    assert outcome.kind == "held" and 3600 <= outcome.requeue_in <= 3 * 3600
    assert sandbox.state.accepted("ghasedak") == []
    open_now = f"{now.hour:02d}:00-{(now.hour + 1) % 24:02d}:00"
    with deps.store.engine.begin() as conn:
        conn.execute(campaigns_t.update().where(campaigns_t.c.id == cid).values(window=open_now))
    LocalRunner(deps, threads=1, tick=0.02, reconcile_every=0.05).send(cid, timeout=30)
    sent_once(sandbox, "ghasedak", phones)


def test_scheduled_campaign_starts_at_its_time_and_not_before(store, deps, sandbox):
    import time as t
    from datetime import UTC
    from datetime import datetime as dt

    phones = numbers(3)
    at = dt.now(UTC) + timedelta(seconds=1.5)
    df = pd.DataFrame({"row": range(2, 5), "phone": phones})
    spec = CampaignSpec(
        name="later",
        provider="ghasedak",
        account="g",
        sender="",
        message="Hi",
        personalised=False,
        send_at=at,
    )
    cid = store.create_campaign(spec, plan([df], Template("Hi"), 10, []))
    assert store.campaign(cid).state == CampaignState.SCHEDULED
    LocalRunner(deps, threads=1, tick=0.05).send(cid, timeout=30)
    accepted = sandbox.state.accepted("ghasedak")
    assert len(accepted) == 3 and min(m.accepted_at for m in accepted) >= at.timestamp()
    assert t.time() >= at.timestamp()


def test_throttled_sends_book_their_slot_and_duplicates_spend_no_budget(deps, sandbox, sandbox_environ):
    """Under a rate limit a throttled chunk books its slot (`reserved`) and is then sent without asking
    the limiter again; a message for a chunk already sent is dropped before it spends any budget."""
    env = {**sandbox_environ, "SMSDISPATCH_GHASEDAK_RATE": "10/s"}  # a 10-number chunk a second
    deps = WorkerDeps(store=deps.store, providers=ProviderPool(env), settings=FAST)
    phones = numbers(30)
    cid = campaign(deps.store, "ghasedak", phones, batch=10)
    (a, _), (b, _), (c, _) = deps.store.claimable_chunks(campaign_id=cid)
    assert send_chunk(a, 0, deps, reserve_within=60).kind == "accepted"  # the burst: at once
    second = send_chunk(b, 0, deps, reserve_within=60)
    third = send_chunk(c, 0, deps, reserve_within=60)
    assert second.kind == third.kind == "throttled" and second.reserved and third.reserved
    assert 0 < second.requeue_in < third.requeue_in  # one slot each, not one shared wake-up time
    assert send_chunk(a, 0, deps, reserve_within=60).kind == "skipped"  # duplicate of a sent chunk
    assert send_chunk(a, 1, deps, reserve_within=60).kind == "skipped"
    assert send_chunk(b, 0, deps, reserved=True).kind == "accepted"  # its booked slot: no second ask
    assert send_chunk(c, 0, deps, reserved=True).kind == "accepted"
    sent_once(sandbox, "ghasedak", phones)
    # The duplicates took nothing: the next slot is right after the third chunk's.
    fourth = deps.limiter.acquire(deps.providers.get("ghasedak").settings.account_key, 10, 10.0)
    assert third.requeue_in < fourth <= third.requeue_in + 1.05


class Recorder:
    """A publisher that only writes down what it was given (the store and the sandbox are real)."""

    def __init__(self) -> None:
        self.sends: list[tuple[int, int | None]] = []
        self.reconciles: list[int] = []

    def send_chunk(self, chunk_id, attempt=None, *, reserved=False, countdown=0.0) -> None:
        self.sends.append((chunk_id, attempt))

    def reconcile(self, chunk_id) -> None:
        self.reconciles.append(chunk_id)


def test_one_housekeeping_pass_releases_reconciles_republishes_and_expires(store, deps, sandbox):
    from datetime import UTC
    from datetime import datetime as dt

    from workers.dispatch import Publisher
    from workers.operations.housekeeping import housekeeping

    due = campaign(store, "ghasedak", numbers(20), batch=10)  # queued long ago: its messages may be lost
    lost = campaign(store, "ghasedak", [f"+98936{i:07d}" for i in range(5)], batch=10)
    ((lost_chunk, attempt),) = store.claimable_chunks(campaign_id=lost)
    store.claim_chunk(lost_chunk, attempt, timedelta(seconds=0))  # its sender vanished mid-call
    now = dt.now(UTC)
    spec = CampaignSpec("later", "ghasedak", "g", "", "Hi", False, send_at=now + timedelta(hours=1))
    df = pd.DataFrame({"row": [2, 3], "phone": ["+989370001111", "+989370002222"]})
    scheduled = store.create_campaign(spec, plan([df], Template("Hi"), 10, []))
    assert store.campaign(scheduled).state == CampaignState.SCHEDULED
    with store.engine.begin() as conn:  # the queued chunks were published longer ago than the grace
        from campaigns.store import chunks_t

        conn.execute(chunks_t.update().values(queued_at=now - timedelta(seconds=2 * FAST.queued_grace)))

    publisher = Recorder()
    assert isinstance(publisher, Publisher)
    done = housekeeping(deps, publisher, now + timedelta(hours=2))  # the scheduled time has come
    assert done.released.started == [scheduled] and done.released.expired_leases == [lost_chunk]
    assert done.reconciling == [lost_chunk] and publisher.reconciles == [lost_chunk]
    published = {c for c, _ in publisher.sends}
    assert published == {c for c, _ in store.claimable_chunks(campaign_id=due)} | {
        c for c, _ in store.claimable_chunks(campaign_id=scheduled)
    }
    assert done.published == len(publisher.sends)
    assert sandbox.state.accepted("ghasedak") == []  # a pass only publishes; nothing is sent inside it


def test_the_embedded_runner_follows_up_throttled_sends_like_the_task(deps, sandbox, sandbox_environ):
    """Under a rate limit the runner holds each throttled chunk on its timer with its booked slot: every
    chunk is sent with one call, none twice, and no chunk is claimed before its slot."""
    env = {**sandbox_environ, "SMSDISPATCH_GHASEDAK_RATE": "20/s"}
    deps = WorkerDeps(store=deps.store, providers=ProviderPool(env), settings=FAST)
    phones = numbers(60)
    cid = campaign(deps.store, "ghasedak", phones, batch=10)
    result = LocalRunner(deps, threads=4, tick=0.02, housekeeping_every=0.05).send(cid, timeout=60)
    assert not result.timed_out
    sent_once(sandbox, "ghasedak", phones)
    assert (
        sandbox.state.calls[("ghasedak", "send")] == 6
    )  # one call per chunk: no throttled duplicate went out


@pytest.mark.parametrize("provider", ["ghasedak", "mediapayamak"])
def test_a_claim_stalled_past_the_lease_margin_is_handed_back_never_sent_late(deps, sandbox, provider):
    """A thread frozen between its claim and its call (a paused VM, SIGSTOP) for longer than the lease's
    margin wakes to a chunk that may be another worker's by now: it hands the attempt back and sends
    nothing; the chunk goes out once, later, through a fresh claim."""
    from dataclasses import replace

    from workers.operations.send import OutcomeKind, _deliver, lease_for

    phones = numbers(10)
    cid = campaign(deps.store, provider, phones)
    deps = replace(deps, settings=replace(FAST, lease_margin=0.3))
    client = deps.providers.get(provider)
    ((chunk_id, attempt),) = deps.store.claimable_chunks(campaign_id=cid)
    chunk = deps.store.claim_chunk(
        chunk_id, attempt, lease_for(deps, (client.settings.connect_timeout, client.settings.read_timeout))
    )
    assert chunk is not None
    threading.Event().wait(0.5)  # the stall
    outcome = _deliver(deps, chunk, client, ())
    assert outcome.kind == OutcomeKind.RETRY and "not sent late" in outcome.detail
    assert sandbox.state.accepted(provider) == []
    assert deps.store.campaign(cid).chunk_counts == {ChunkState.RETRY: 1}
    LocalRunner(deps, threads=1, tick=0.02, reconcile_every=0.05).send(cid, timeout=30)
    sent_once(sandbox, provider, phones)
