"""Delivery-status polling: the pure decisions, the claim that keeps two pollers apart, the provider's
call-level hints over the sandbox, and whole campaigns driven to a final state on both stores."""

from __future__ import annotations

import json
import random
import threading
from datetime import UTC, datetime, timedelta

import pandas as pd
import pytest
from sqlalchemy import delete, func, insert, select, update

from campaigns.plan import plan
from campaigns.states import AWAITING_REPORT, RecipientState
from campaigns.store import CampaignSpec, DuePoll, RecipientUpdate, Store, recipients_t
from campaigns.store.polling import poll_claims_t
from campaigns.text import Template
from dispatcher.engine.runner import LocalRunner
from dispatcher.sandbox.core import Fault
from workers.deps import ProviderPool, WorkerDeps
from workers.operations.poll import (
    STATUS_HINTS,
    batch_message,
    batches_of,
    plan_polls,
    poll_batch,
    poll_once,
    poll_tick,
    status_update,
)
from workers.settings import DispatchSettings
from workers.status import DeliveryStatus, StatusResult

NOW = datetime(2026, 11, 26, 8, 0, tzinfo=UTC)
INTERVALS = (60.0, 120.0, 300.0, 600.0, 1800.0, 3600.0)
DAY = 24 * 3600.0
R = RecipientState


def due(provider: str = "mediapayamak", polls: int = 0, age: float = 120.0, account: str = "a") -> DuePoll:
    return DuePoll(1, 1, provider, account, "500001:09120000001", NOW - timedelta(seconds=age), polls)


# ---- pure decisions ----------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("status", "state"),
    [
        (DeliveryStatus.DELIVERED, R.DELIVERED),
        (DeliveryStatus.UNDELIVERED, R.UNDELIVERED),
        (DeliveryStatus.FAILED, R.FAILED),
        (DeliveryStatus.BLACKLISTED, R.BLACKLISTED),
        (DeliveryStatus.EXPIRED, R.EXPIRED),
    ],
)
def test_a_final_report_stops_polling(status, state):
    u = status_update(due(), StatusResult("m", status, "1"), NOW, INTERVALS, 3 * DAY)
    assert u.state == state and u.next_poll_at is None
    assert (u.delivered_at == NOW) == (state == R.DELIVERED)


@pytest.mark.parametrize(("polls", "wait"), [(0, 120), (1, 300), (2, 600), (3, 1800), (4, 3600), (9, 3600)])
def test_checks_back_off_then_repeat_hourly(polls, wait):
    result = StatusResult("m", DeliveryStatus.SENT_TO_OPERATOR, "0")
    u = status_update(due(polls=polls), result, NOW, INTERVALS, 3 * DAY)
    assert u.state == R.SENT_TO_OPERATOR and u.next_poll_at == NOW + timedelta(seconds=wait)


def test_code_minus_5_means_not_before_a_minute():
    u = status_update(due(), StatusResult("m", DeliveryStatus.UNKNOWN, "-5"), NOW, (1.0,), 3 * DAY)
    assert u.state == R.SENT and u.next_poll_at == NOW + timedelta(seconds=60) and u.provider_status == "-5"


def test_code_minus_3_is_expired_with_the_reason():
    u = status_update(due(), StatusResult("m", DeliveryStatus.EXPIRED, "-3"), NOW, INTERVALS, 3 * DAY)
    assert u.state == R.EXPIRED and "one-week report window" in u.error and u.next_poll_at is None


def test_hints_belong_to_their_provider():
    """Another provider's -5 is just an unknown answer: the usual backoff."""
    assert ("ghasedak", "-5") not in STATUS_HINTS
    u = status_update(due("ghasedak"), StatusResult("m", DeliveryStatus.UNKNOWN, "-5"), NOW, (1.0,), DAY)
    assert u.state == R.SENT and u.next_poll_at == NOW + timedelta(seconds=1)


def test_no_final_report_within_the_max_age_is_expired_with_the_reason():
    u = status_update(due(age=3 * DAY), None, NOW, INTERVALS, 3 * DAY)
    assert u.state == R.EXPIRED and "within 72 h" in u.error


def test_a_failed_call_waits_at_least_the_providers_retry_after():
    u = status_update(due(), None, NOW, (1.0,), DAY, retry_after=300)
    assert u.state == R.SENT and u.next_poll_at == NOW + timedelta(seconds=300)


def test_batches_are_one_account_and_at_most_the_status_batch():
    items = sorted(
        [DuePoll(i, 1, "ghasedak", "g1", str(i), NOW, 0) for i in range(250)]
        + [DuePoll(1000 + i, 2, "ghasedak", "g2", str(i), NOW, 0) for i in range(5)]
        + [DuePoll(2000 + i, 3, "negin", "n", str(i), NOW, 0) for i in range(7)],
        key=lambda d: (d.provider, d.account, d.message_id),
    )
    batches = batches_of(items, {"ghasedak": 100, "negin": 3})
    assert [len(b) for b in batches] == [100, 100, 50, 5, 3, 3, 1]
    assert all(len({(d.provider, d.account) for d in b}) == 1 for b in batches)
    assert sorted(d.recipient_id for b in batches for d in b) == sorted(d.recipient_id for d in items)


# ---- the claim -----------------------------------------------------------------------------------------
def sent_campaign(store: Store, n: int, provider: str = "ghasedak", when: datetime | None = None) -> int:
    df = pd.DataFrame({"row": range(2, n + 2), "phone": [f"+98912{i:07d}" for i in range(n)]})
    spec = CampaignSpec("p", provider, f"{provider}:x", "", "Hi", False)
    cid = store.create_campaign(spec, plan([df], Template("Hi"), 100, []))
    when = when or datetime.now(UTC)
    for chunk_id, attempt in store.claimable_chunks(1000, campaign_id=cid):
        chunk = store.claim_chunk(chunk_id, attempt, timedelta(seconds=60))
        ups = [
            RecipientUpdate(m.recipient_id, R.SENT, f"m{m.recipient_id}", None, None, when)
            for m in chunk.messages
        ]
        store.record_send(chunk, ups, requeue=False)
    return cid


def test_two_pollers_never_claim_the_same_recipient(store: Store):
    sent_campaign(store, 300)
    now = datetime.now(UTC) + timedelta(seconds=1)
    claims: list[list[int]] = []
    barrier = threading.Barrier(4)

    def claim() -> None:
        barrier.wait()
        got: list[int] = []
        while batch := store.claim_due_polls(25, timedelta(seconds=60), now):
            got += [d.recipient_id for d in batch]
        claims.append(got)

    threads = [threading.Thread(target=claim) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    everyone = [i for got in claims for i in got]
    assert len(everyone) == len(set(everyone)) == 300
    assert store.claim_due_polls(1000, timedelta(seconds=60), now) == []
    # a poller that vanished: its recipients fall due again once the lease is over
    again = store.claim_due_polls(1000, timedelta(seconds=60), now + timedelta(seconds=61))
    assert len(again) == 300 and {d.provider for d in again} == {"ghasedak"}


def claim_ids(store: Store, limit: int, at: datetime) -> list[int]:
    return sorted(d.recipient_id for d in store.claim_due_polls(limit, timedelta(seconds=60), at))


def test_a_claim_holds_its_stretch_until_recorded_or_its_lease_ends(store: Store):
    """The claim log: a claim is one row (a stretch of the due order, with a lease), nobody's row is written
    to claim it. A recorded recipient leaves its stretch; who was not recorded (the poller vanished) is
    claimed again when the lease ends, a stretch cut where the claim's limit says; who was written behind
    the last claim waits for its stretch's lease."""
    sent_campaign(store, 30)
    now = datetime.now(UTC) + timedelta(seconds=1)
    a, b = claim_ids(store, 10, now), claim_ids(store, 10, now)
    assert len(set(a) | set(b)) == 20 and max(a) < min(b)
    # a's poller records every answer; b's vanishes
    assert (
        store.record_statuses([RecipientUpdate(i, R.DELIVERED, None, "1", None, None, now) for i in a]) == 10
    )
    c = claim_ids(store, 100, now + timedelta(seconds=30))  # b still holds its ten
    assert len(c) == 10 and not set(c) & set(a + b)
    assert claim_ids(store, 100, now + timedelta(seconds=61)) == b  # a's and b's leases over, c's not
    assert claim_logged(store) == 2  # a's stretch, with nobody due in it, is gone
    # both leases over, a claim of four: b's first four, then the rest of b and all of c
    later = now + timedelta(seconds=200)
    assert claim_ids(store, 4, later) == b[:4]
    assert claim_ids(store, 100, later) == b[4:] + c
    assert claim_ids(store, 100, later) == []
    # one of b's written behind every claim (a writer's time taken long before it wrote): it lands after
    # the latest claim's stretch, not inside a live one, and the next claim takes it
    assert store.record_poll_retries([b[5]], now - timedelta(hours=1), None) == 1
    assert claim_ids(store, 100, later + timedelta(seconds=1)) == [b[5]]


@pytest.mark.parametrize("writer", ["send", "send-requeue", "status", "retry"])
def test_a_recipient_written_with_a_time_behind_a_live_claim_is_claimed_by_the_next_claim(
    store: Store, writer: str
):
    """A writer takes its time (a send's reply, a status answer), then waits for the database (SQLite's
    write lock, a busy pool) longer than the shortest poll delay, while a poller claims what is due: the
    recipient it writes is due before that claim's end. It is written just after the latest claim, so the
    next claim takes it, not left inside the live claim's stretch until its lease ends (a CLI `poll` timed
    out with it due and nobody asking)."""
    sent_campaign(store, 20)
    pending_cid = sent_campaign_pending(store, 2)
    now = datetime.now(UTC) + timedelta(seconds=1)
    held = claim_ids(store, 100, now)  # a live claim up to the last of the 20, lease 60 s
    assert len(held) == 20
    lagged = now - timedelta(seconds=5)  # the writer's time: before the claim's end
    if writer.startswith("send"):
        chunk_id, attempt = store.claimable_chunks(10, campaign_id=pending_cid)[0]
        chunk = store.claim_chunk(chunk_id, attempt, timedelta(seconds=60))
        ups = [
            RecipientUpdate(m.recipient_id, R.SENT, f"m{m.recipient_id}", None, None, lagged)
            for m in chunk.messages
        ]
        if writer == "send-requeue":  # the transaction path (PostgreSQL's accept is one statement)
            ups[1] = RecipientUpdate(ups[1].recipient_id, R.PENDING)
        store.record_send(chunk, ups, requeue=writer == "send-requeue", now=lagged)
        written = [ups[0].recipient_id] if writer == "send-requeue" else [u.recipient_id for u in ups]
    elif writer == "status":
        written = held[:3]
        assert (
            store.record_statuses([RecipientUpdate(i, R.SENT, None, "0", None, lagged) for i in written]) == 3
        )
    else:
        written = held[:3]
        assert store.record_poll_retries(written, lagged, None) == 3
    assert claim_ids(store, 100, now + timedelta(seconds=1)) == sorted(written)


def test_a_campaigns_next_check_is_read_after_the_claims_and_inside_them_only_when_nothing_after_is_due(
    store: Store,
):
    """The next check walks the due order from the latest claim's end (the poll's rewritten rows lie in
    the claims' stretches): a recipient due there says "due now"; only when none is does the read look
    inside the claims, where a claimed recipient not yet recorded is due too; else the earliest future."""
    cid, other = sent_campaign(store, 10), sent_campaign(store, 4)
    with store.engine.connect() as conn:
        first = (
            conn.execute(select(recipients_t.c.next_poll_at).where(recipients_t.c.campaign_id == cid))
            .scalars()
            .all()
        )
    assert store.next_poll_time(cid) == min(first)  # no claim yet: the first entry
    at = datetime.now(UTC) + timedelta(hours=1)
    claimed = claim_ids(store, 100, at)  # both campaigns, held for 60 s
    assert len(claimed) == 14
    mine = claimed[:10]  # the campaign's (its rows were stored first)
    later = at + timedelta(hours=1)
    # eight of the campaign's ten recorded with a check an hour on; two claimed, not yet recorded
    assert store.record_statuses([RecipientUpdate(i, R.SENT, None, "0", None, later) for i in mine[2:]]) == 8
    inside = store.next_poll_time(cid, at)
    assert inside is not None and inside <= at  # due: the two in the claim
    assert store.next_poll_time(None, at) <= at
    # the two recorded two hours on: the earliest future check is the eight's
    ups = [RecipientUpdate(i, R.SENT, None, "0", None, later + timedelta(hours=1)) for i in mine[:2]]
    assert store.record_statuses(ups) == 2
    assert store.next_poll_time(cid, at) == later
    # one of them written behind every claim: floored just after the latest claim's end, due now
    assert store.record_poll_retries([mine[0]], at - timedelta(minutes=5), None) == 1
    due_now = store.next_poll_time(cid, at)
    assert due_now is not None and due_now <= at and claim_ids(store, 100, at) == [mine[0]]
    # the other campaign's four, never recorded, are still in a claim: due, not lost behind the floor
    assert store.next_poll_time(other, at) <= at
    assert store.record_statuses([RecipientUpdate(i, R.DELIVERED) for i in claimed[10:]]) == 4
    assert store.next_poll_time(other, at) is None


def exact_next_check(store: Store, cid: int | None) -> datetime | None:
    """The exact earliest next check: the walk of the whole index (the read before the claim log's end)."""
    r = recipients_t.c
    q = select(r.next_poll_at).where(r.next_poll_at.is_not(None), r.state.in_(list(AWAITING_REPORT)))
    if cid is not None:
        q = q.where(r.campaign_id == cid)
    with store.engine.connect() as conn:
        return conn.execute(q.order_by(r.next_poll_at).limit(1)).scalar_one_or_none()


@pytest.mark.parametrize("seed", range(3))
def test_the_next_check_keeps_its_promise_against_the_exact_walk_whatever_claims_and_writes_did(
    store: Store, seed: int
):
    """Random claims (leases over or not, any limit), answers, retries, times written at or just around a
    claim's end or inside its stretch, cancelled rows with a next check left set, claims deleted or ending
    anywhere: for each campaign and for all, at four clocks, a future next check is the exact earliest, a
    past one is some awaiting recipient's and the earliest is due too, None only when nothing awaits."""
    rnd = random.Random(seed)
    base = datetime.now(UTC)
    cids = [
        sent_campaign(store, rnd.randint(1, 12), when=base + timedelta(seconds=rnd.choice([0, 5, 30])))
        for _ in range(2)
    ]
    r, t = recipients_t.c, base
    for _ in range(40):
        t += timedelta(seconds=rnd.choice([0, 1, 10, 70, 400]))
        with store.engine.connect() as conn:
            ids = conn.execute(select(r.id)).scalars().all()
            claims = conn.execute(select(poll_claims_t)).all()
        op = rnd.random()
        if op < 0.3:
            store.claim_due_polls(rnd.randint(1, 8), timedelta(seconds=rnd.choice([1, 60, 300])), t)
        elif op < 0.5:
            state = rnd.choice([R.SENT, R.SENT_TO_OPERATOR, R.DELIVERED])
            nxt = None if state == R.DELIVERED else t + timedelta(seconds=rnd.choice([-100, 0, 1, 60, 600]))
            ups = [RecipientUpdate(i, state, None, "0", None, nxt) for i in rnd.sample(ids, min(len(ids), 3))]
            store.record_statuses(ups, t)
        elif op < 0.6:
            store.record_poll_retries(
                rnd.sample(ids, 2), t + timedelta(seconds=rnd.choice([-50, 0, 30])), None, t
            )
        elif op < 0.75 and claims:  # written straight: at a claim's end, a microsecond around it, inside
            shift = rnd.choice([0, -1, 1, -5_000_000])
            at = rnd.choice(claims).hi_at + timedelta(microseconds=shift)
            with store.engine.begin() as conn:
                conn.execute(update(recipients_t).where(r.id == rnd.choice(ids)).values(next_poll_at=at))
        elif op < 0.8:  # a final state written with a next check (a row the walks must skip)
            final = rnd.choice([R.EXPIRED, R.UNDELIVERED])
            store.record_statuses([RecipientUpdate(rnd.choice(ids), final, None, "2", None, t)], t)
        elif op < 0.87 and claims:
            with store.engine.begin() as conn:
                conn.execute(delete(poll_claims_t).where(poll_claims_t.c.id == rnd.choice(claims).id))
        elif op < 0.95:  # a claim made by a machine whose clock is elsewhere
            end = t + timedelta(seconds=rnd.choice([-600, 0, 600]))
            with store.engine.begin() as conn:
                conn.execute(insert(poll_claims_t).values(hi_at=end, hi_id=0, lease_until=t))
        for now in (t, t - timedelta(seconds=300), t + timedelta(seconds=300), t + timedelta(hours=2)):
            for cid in [*cids, None]:
                exact, got = exact_next_check(store, cid), store.next_poll_time(cid, now)
                if got is None or got > now:
                    assert got == exact, (cid, now, got, exact)
                else:
                    assert exact is not None and exact <= got
                    awaiting = select(func.count()).where(
                        r.next_poll_at == got, r.state.in_(list(AWAITING_REPORT))
                    )
                    with store.engine.connect() as conn:
                        assert conn.execute(awaiting).scalar_one() > 0


def sent_campaign_pending(store: Store, n: int) -> int:
    df = pd.DataFrame({"row": range(2, n + 2), "phone": [f"+98913{i:07d}" for i in range(n)]})
    return store.create_campaign(
        CampaignSpec("q", "ghasedak", "ghasedak:x", "", "Hi", False), plan([df], Template("Hi"), 100, [])
    )


def claim_logged(store: Store) -> int:
    with store.engine.connect() as conn:
        return conn.execute(select(func.count()).select_from(poll_claims_t)).scalar_one()


def test_results_are_recorded_only_for_recipients_still_awaiting_a_report(store: Store):
    cid = sent_campaign(store, 3)
    now = datetime.now(UTC) + timedelta(seconds=1)
    first, *rest = store.claim_due_polls(10, timedelta(seconds=60), now)
    assert (
        store.record_statuses([RecipientUpdate(first.recipient_id, R.DELIVERED, None, "1", None, None, now)])
        == 1
    )
    # a late, repeated answer for the same recipient changes nothing any more
    late = RecipientUpdate(first.recipient_id, R.SENT, None, "0", None, now + timedelta(seconds=5))
    assert store.record_statuses([late]) == 0
    assert sorted(store.recipient_states(cid).values()) == ["delivered", "sent", "sent"]
    assert [
        d.recipient_id for d in store.polls_of([first.recipient_id, *(d.recipient_id for d in rest)])
    ] == [d.recipient_id for d in rest]


# ---- over the sandbox ------------------------------------------------------------------------------------
FAST = DispatchSettings(poll_intervals=(0.05, 0.1), backoff_base=0.01, backoff_cap=0.05)


@pytest.fixture
def deps(store, sandbox_environ):
    return WorkerDeps(store=store, providers=ProviderPool(sandbox_environ), settings=FAST)


def send_all(deps: WorkerDeps, provider: str, phones: list[str]) -> int:
    df = pd.DataFrame({"row": range(2, len(phones) + 2), "phone": phones})
    spec = CampaignSpec("poll", provider, f"{provider}:x", "", "Hello", False)
    cid = deps.store.create_campaign(spec, plan([df], Template("Hello"), 50, []))
    # No status poll during the send (poll_every an hour): the tests poll themselves, and on a loaded
    # machine a send outlasting the runner's default second would let its own poll move recipients on.
    LocalRunner(deps, threads=2, tick=0.02, reconcile_every=0.05, poll_every=3600).send(cid, timeout=60)
    assert deps.store.campaign(cid).counts == {R.SENT: len(phones)}
    return cid


def test_mediapayamak_minus_5_asks_again_a_minute_later_then_minus_3_expires(deps, sandbox):
    phones = [f"+98935{i:07d}" for i in range(30)]
    cid = send_all(deps, "mediapayamak", phones)
    sandbox.state.add_fault(Fault("mediapayamak", "status", "code", code=-5, times=1))
    now = datetime.now(UTC) + timedelta(seconds=1)
    assert poll_once(deps, now=now) == 30
    rows = list(deps.store.recipients_rows(cid))
    assert {r["state"] for r in rows} == {"sent"} and {r["provider_status"] for r in rows} == {"-5"}
    assert deps.store.claim_due_polls(100, timedelta(seconds=1), now + timedelta(seconds=59)) == []
    assert deps.store.next_poll_time() >= now + timedelta(seconds=60)
    sandbox.state.add_fault(Fault("mediapayamak", "status", "code", code=-3, times=1))
    assert poll_once(deps, now=now + timedelta(seconds=61)) == 30
    rows = list(deps.store.recipients_rows(cid))
    assert {r["state"] for r in rows} == {"expired"}
    assert all("one-week report window" in r["error"] and r["provider_status"] == "-3" for r in rows)


@pytest.mark.parametrize("provider", ["mediapayamak", "ghasedak"])
def test_a_campaign_polled_to_the_end_ends_as_the_sandbox_decided(provider, deps, sandbox):
    """Through the distributed path in-process: claim + plan batches, then one poll_batch per batch."""
    phones = [f"+98936{i:07d}" for i in range(240)]
    sandbox.state.final_after_s = 0.3  # the first checks find "sent to operator", later ones the outcome
    cid = send_all(deps, provider, phones)
    for _ in range(200):
        for batch in plan_polls(deps, limit=100):
            assert len(batch) <= 100 and len({d.account for d in batch}) == 1
            poll_batch([d.recipient_id for d in batch], deps)
        if deps.store.unfinished(cid) == 0:
            break
        threading.Event().wait(0.05)
    states = deps.store.recipient_states(cid)
    assert not {s for s in states.values()} & {str(s) for s in AWAITING_REPORT}
    assert states == {p: sandbox.state.outcome(p) for p in phones}
    rows = list(deps.store.recipients_rows(cid))
    assert all(r["delivered_at"] is not None for r in rows if r["state"] == "delivered")


def test_minus_5_for_one_provider_batch_holds_only_its_numbers(deps, sandbox):
    """Two SendBatchSms batches in one status batch: -5 on the first call delays only that batch's ids."""
    phones = [f"+98937{i:07d}" for i in range(80)]  # chunks of 50: two batchSmsIds
    cid = send_all(deps, "mediapayamak", phones)
    sandbox.state.add_fault(Fault("mediapayamak", "status", "code", code=-5, times=1))
    now = datetime.now(UTC) + timedelta(seconds=1)
    assert poll_once(deps, now=now) == 80
    rows = list(deps.store.recipients_rows(cid))
    batch_of = {r["phone"]: r["provider_message_id"].split(":")[0] for r in rows}
    held = [r for r in rows if r["provider_status"] == "-5"]
    assert {r["state"] for r in held} == {"sent"}
    (held_batch,) = {batch_of[r["phone"]] for r in held}  # one provider batch (whichever was asked first)
    assert len(held) == sum(1 for b in batch_of.values() if b == held_batch)  # all of it: 50 or 30
    done = [r for r in rows if r["provider_status"] != "-5"]
    assert {r["state"] for r in done} <= {"delivered", "undelivered", "blacklisted", "failed"}
    assert len(done) == 80 - len(held) and held_batch not in {batch_of[r["phone"]] for r in done}
    later = deps.store.claim_due_polls(100, timedelta(seconds=1), now + timedelta(seconds=59))
    assert later == [] and deps.store.next_poll_time() >= now + timedelta(seconds=60)


def test_a_batch_published_with_its_claimed_rows_is_recorded_as_the_sandbox_decided(deps, sandbox):
    """Beat's message carries what its claim read (JSON, as Celery sends it): each batch is one status call
    and records the sandbox's outcomes; the same message again (at-least-once delivery) asks once more and
    changes no final row."""
    phones = [f"+98939{i:07d}" for i in range(120)]
    sandbox.state.final_after_s = 0
    cid = send_all(deps, "ghasedak", phones)
    now = datetime.now(UTC) + timedelta(seconds=1)
    messages = [json.loads(json.dumps(batch_message(b))) for b in plan_polls(deps, limit=1000, now=now)]
    assert sorted(len(m["rows"]) for m in messages) == [20, 100]
    calls = sandbox.state.calls[("ghasedak", "status")]
    for m in messages:
        assert poll_batch([row[0] for row in m["rows"]], deps, claimed=m) == len(m["rows"])
    assert sandbox.state.calls[("ghasedak", "status")] == calls + 2
    assert deps.store.recipient_states(cid) == {p: sandbox.state.outcome(p) for p in phones}
    before = list(deps.store.recipients_rows(cid))
    assert poll_batch([row[0] for row in messages[0]["rows"]], deps, claimed=messages[0]) == len(
        messages[0]["rows"]
    )
    assert list(deps.store.recipients_rows(cid)) == before


def test_a_tick_claims_a_slice_at_a_time_and_publishes_it_before_claiming_the_next(
    deps, sandbox, monkeypatch
):
    """Beat's tick holds one slice in memory at most: each slice's batches are published before the next
    claim (the store's real claims, watched in passing), the tick stops at its limit, and what it
    published is recorded as the sandbox decided."""
    phones = [f"+98938{i:07d}" for i in range(120)]
    sandbox.state.final_after_s = 0
    cid = send_all(deps, "ghasedak", phones)
    now = datetime.now(UTC) + timedelta(seconds=1)
    events: list[tuple[str, int]] = []
    claim = deps.store.claim_due_polls

    def watched_claim(limit: int, lease: timedelta, when: datetime | None = None) -> list[DuePoll]:
        got = claim(limit, lease, when)
        events.append(("claimed", len(got)))
        return got

    monkeypatch.setattr(deps.store, "claim_due_polls", watched_claim)
    published: list[list[DuePoll]] = []

    def publish(batch: list[DuePoll]) -> None:
        events.append(("published", len(batch)))
        published.append(batch)

    assert poll_tick(deps, publish, limit=100, slice_size=40, now=now) == 100
    assert events == [("claimed", 40), ("published", 40)] * 2 + [("claimed", 20), ("published", 20)]
    events.clear()
    assert poll_tick(deps, publish, limit=100, slice_size=40, now=now) == 20  # the rest, then it stops
    assert events == [("claimed", 20), ("published", 20)]
    assert len({d.recipient_id for b in published for d in b}) == len(phones)
    for batch in published:
        assert poll_batch([d.recipient_id for d in batch], deps, claimed=batch_message(batch)) == len(batch)
    assert deps.store.recipient_states(cid) == {p: sandbox.state.outcome(p) for p in phones}


# ---- a failed status call is not an answer ---------------------------------------------------------------
LADDER = DispatchSettings(
    poll_intervals=(60.0, 120.0, 300.0, 600.0), status_retry_base=5.0, status_retry_cap=60.0
)


def checks(store: Store, cid: int) -> set[tuple[str, int, datetime]]:
    from sqlalchemy import select

    from campaigns.store import recipients_t

    r = recipients_t.c
    with store.engine.connect() as conn:
        rows = conn.execute(select(r.state, r.polls, r.next_poll_at).where(r.campaign_id == cid)).all()
    return {(row.state, row.polls, row.next_poll_at.astimezone(UTC)) for row in rows}


def test_a_transient_status_failure_is_retried_within_seconds_at_the_same_rung(
    store, sandbox_environ, sandbox
):
    """Two failed status calls in a row (HTTP 503, then the provider's transient code) are retried after
    5 s, then 10 s, each recipient keeping its rung; the next real answer moves it one rung (120 s)."""
    deps = WorkerDeps(store=store, providers=ProviderPool(sandbox_environ), settings=LADDER)
    sandbox.state.final_after_s = 3600  # answers say "not yet final"
    phones = [f"+98938{i:07d}" for i in range(20)]
    df = pd.DataFrame({"row": range(2, len(phones) + 2), "phone": phones})
    cid = store.create_campaign(
        CampaignSpec("p", "ghasedak", "ghasedak:x", "", "Hi", False), plan([df], Template("Hi"), 10, [])
    )
    LocalRunner(deps, threads=2, tick=0.02, housekeeping_every=0.05).send(cid, timeout=60)
    now = datetime.now(UTC) + timedelta(seconds=61)  # the first check (rung 0: 60 s after sending) is due

    sandbox.state.add_fault(Fault("ghasedak", "status", "http", status=503, times=1))
    assert poll_once(deps, now=now) == 20
    assert checks(store, cid) == {("sent", 0, now + timedelta(seconds=5))}

    later = now + timedelta(seconds=5)
    sandbox.state.add_fault(Fault("ghasedak", "status", "transient", times=1))
    assert poll_once(deps, now=later) == 20
    assert checks(store, cid) == {("sent", 0, later + timedelta(seconds=10))}  # doubled, same rung

    answered_at = later + timedelta(seconds=10)
    assert poll_once(deps, now=answered_at) == 20
    ((state, polls, at),) = checks(store, cid)
    assert polls == 1 and at == answered_at + timedelta(seconds=120) and state in {"sent", "sent_to_operator"}
