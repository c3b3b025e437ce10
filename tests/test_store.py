"""Store transitions on both backends (SQLite and PostgreSQL): each one a conditional update."""

from __future__ import annotations

import json
import threading
import time
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pandas as pd
import pytest
from sqlalchemy import text

from campaigns.plan import plan
from campaigns.states import CampaignState, ChunkState, RecipientState
from campaigns.store import CampaignSpec, EmptyCampaign, RecipientUpdate, Reconciliation, Store
from campaigns.store.transitions import apply_updates
from campaigns.text import Template

LEASE = timedelta(seconds=60)


def phones(n: int, start: int = 0) -> list[str]:
    return [f"+98912{start + i:07d}" for i in range(n)]


def make_campaign(
    store: Store,
    numbers: list[str],
    *,
    batch: int = 3,
    text: str = "سلام {name}",
    start: bool = True,
    send_at=None,
    account="acct",
) -> int:
    df = pd.DataFrame(
        {"row": range(2, len(numbers) + 2), "phone": numbers, "name": [f"n{i}" for i in range(len(numbers))]}
    )
    template = Template(text)
    blocks = plan([df.iloc[: len(df) // 2], df.iloc[len(df) // 2 :]], template, batch, ["name"])
    spec = CampaignSpec(
        name="t",
        provider="ghasedak",
        account=account,
        sender="1000",
        message=template.text,
        personalised=not template.is_static,
        columns=["name"],
        send_at=send_at,
    )
    return store.create_campaign(spec, blocks, rejected=2, start=start)


def test_create_plans_chunks_and_queues_them(store: Store) -> None:
    cid = make_campaign(store, phones(10), batch=3)
    view = store.campaign(cid)
    assert view.state == CampaignState.RUNNING
    assert (view.recipients, view.chunks, view.rejected) == (10, 4, 2)
    assert view.chunk_counts == {ChunkState.QUEUED: 4}
    assert view.counts == {RecipientState.PENDING: 10}
    claimable = store.claimable_chunks(campaign_id=cid)
    sizes = [len(store.load_chunk(c).messages) for c, _ in claimable]
    assert sizes == [3, 3, 3, 1]


def test_personalised_text_is_rendered_per_recipient(store: Store) -> None:
    cid = make_campaign(store, phones(2), batch=2)
    ((chunk_id, attempt),) = store.claimable_chunks(campaign_id=cid)
    chunk = store.claim_chunk(chunk_id, attempt, LEASE)
    assert [m.text for m in chunk.messages] == ["سلام n0", "سلام n1"]
    assert len({m.client_ref for m in chunk.messages}) == 2


def test_a_failure_while_loading_writes_nothing(store: Store) -> None:
    def broken():
        yield from plan(
            [pd.DataFrame({"row": [2], "phone": ["+989121234567"], "name": ["a"]})],
            Template("x"),
            1,
            ["name"],
        )
        raise RuntimeError("disk full")

    spec = CampaignSpec(
        name="t", provider="ghasedak", account="a", sender="", message="x", personalised=False
    )
    with pytest.raises(RuntimeError):
        store.create_campaign(spec, broken())
    assert store.campaigns() == []


def test_no_valid_recipient_creates_nothing(store: Store) -> None:
    spec = CampaignSpec(
        name="t", provider="ghasedak", account="a", sender="", message="x", personalised=False
    )
    with pytest.raises(EmptyCampaign):
        store.create_campaign(spec, iter(()), rejected=5)
    assert store.campaigns() == []


def test_claim_is_compare_and_set(store: Store) -> None:
    cid = make_campaign(store, phones(3))
    ((chunk_id, attempt),) = store.claimable_chunks(campaign_id=cid)
    first = store.claim_chunk(chunk_id, attempt, LEASE)
    assert first is not None and first.attempt == 1
    assert store.claim_chunk(chunk_id, attempt, LEASE) is None  # duplicate message
    assert store.claim_chunk(chunk_id, None, LEASE) is None


def test_racing_claims_have_one_winner(store: Store) -> None:
    cid = make_campaign(store, phones(3))
    ((chunk_id, attempt),) = store.claimable_chunks(campaign_id=cid)
    wins, barrier = [], threading.Barrier(8)

    def claim() -> None:
        barrier.wait()
        if store.claim_chunk(chunk_id, attempt, LEASE) is not None:
            wins.append(1)

    threads = [threading.Thread(target=claim) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(wins) == 1


def test_paused_campaign_is_not_claimed_and_resume_continues(store: Store) -> None:
    cid = make_campaign(store, phones(6))
    assert store.pause(cid)
    assert store.claimable_chunks(campaign_id=cid) == []
    assert store.resume(cid)
    assert len(store.claimable_chunks(campaign_id=cid)) == 2


def test_record_send_accepts_and_schedules_polls(store: Store) -> None:
    cid = make_campaign(store, phones(3))
    ((chunk_id, attempt),) = store.claimable_chunks(campaign_id=cid)
    chunk = store.claim_chunk(chunk_id, attempt, LEASE)
    now = datetime.now(UTC)
    ups = [
        RecipientUpdate(m.recipient_id, RecipientState.SENT, f"id{i}", None, None, now)
        for i, m in enumerate(chunk.messages)
    ]
    assert store.record_send(chunk, ups, requeue=False)
    view = store.campaign(cid)
    assert view.counts == {RecipientState.SENT: 3} and view.chunk_counts == {ChunkState.ACCEPTED: 1}
    due = store.due_polls(now=now + timedelta(seconds=1))
    assert sorted(d.message_id for d in due) == ["id0", "id1", "id2"]


def test_requeue_sends_only_what_is_still_pending(store: Store) -> None:
    cid = make_campaign(store, phones(3))
    ((chunk_id, attempt),) = store.claimable_chunks(campaign_id=cid)
    chunk = store.claim_chunk(chunk_id, attempt, LEASE)
    first = chunk.messages[0]
    store.record_send(chunk, [RecipientUpdate(first.recipient_id, RecipientState.SENT, "x")], requeue=True)
    again = store.claim_chunk(chunk_id, chunk.attempt, LEASE)
    assert [m.recipient_id for m in again.messages] == [m.recipient_id for m in chunk.messages[1:]]


def test_retry_waits_then_fails_after_max_attempts(store: Store) -> None:
    cid = make_campaign(store, phones(2), batch=2)
    ((chunk_id, attempt),) = store.claimable_chunks(campaign_id=cid)
    chunk = store.claim_chunk(chunk_id, attempt, LEASE)
    assert store.chunk_retry(chunk, "code 10", delay=30, max_attempts=2) == "retry"
    assert store.claimable_chunks(campaign_id=cid) == []  # not due yet
    later = datetime.now(UTC) + timedelta(seconds=31)
    assert store.claimable_chunks(campaign_id=cid, now=later) == [(chunk_id, 1)]
    chunk = store.claim_chunk(chunk_id, 1, LEASE, now=later)
    assert store.chunk_retry(chunk, "code 10", delay=30, max_attempts=2) == "failed"
    view = store.campaign(cid)
    assert view.counts == {RecipientState.FAILED: 2}


def test_account_error_pauses_and_requeues(store: Store) -> None:
    cid = make_campaign(store, phones(4), batch=2, account="same")
    other = make_campaign(store, phones(2, start=100), batch=2, account="same")
    (chunk_id, attempt), *_ = store.claimable_chunks(campaign_id=cid)
    chunk = store.claim_chunk(chunk_id, attempt, LEASE)
    store.pause_for_account(chunk, "ghasedak code 9: credit low")
    for c in (cid, other):
        view = store.campaign(c)
        assert view.state == CampaignState.PAUSED and "credit" in view.state_reason
    assert store.campaign(cid).chunk_counts == {ChunkState.QUEUED: 2}


def test_lease_expiry_makes_unknown_and_hold_marks_recipients(store: Store) -> None:
    cid = make_campaign(store, phones(2), batch=2)
    ((chunk_id, attempt),) = store.claimable_chunks(campaign_id=cid)
    store.claim_chunk(chunk_id, attempt, timedelta(seconds=1))
    assert store.expire_leases(datetime.now(UTC) + timedelta(seconds=5)) == [chunk_id]
    assert store.unknown_chunks() == [chunk_id]
    assert store.hold_unknown(store.load_chunk(chunk_id), "cannot ask") == 2
    assert store.campaign(cid).counts == {RecipientState.UNKNOWN: 2}
    assert store.complete_finished() == [cid]


def test_split_moves_half_to_a_new_chunk(store: Store) -> None:
    cid = make_campaign(store, phones(5), batch=5)
    ((chunk_id, attempt),) = store.claimable_chunks(campaign_id=cid)
    chunk = store.claim_chunk(chunk_id, attempt, LEASE)
    new = store.split_chunk(chunk, "code 8")
    assert new is not None
    sizes = sorted(len(store.load_chunk(c).messages) for c in (chunk_id, new))
    assert sizes == [2, 3]


def test_cancel_cancels_unsent(store: Store) -> None:
    cid = make_campaign(store, phones(4), batch=2)
    (chunk_id, attempt), *_ = store.claimable_chunks(campaign_id=cid)
    chunk = store.claim_chunk(chunk_id, attempt, LEASE)
    assert store.cancel(cid)
    store.record_send(
        chunk,
        [RecipientUpdate(m.recipient_id, RecipientState.SENT, "m") for m in chunk.messages],
        requeue=False,
    )
    view = store.campaign(cid)
    assert view.state == CampaignState.CANCELLED
    assert view.counts == {RecipientState.SENT: 2, RecipientState.CANCELLED: 2}
    assert not store.resume(cid)


def test_scheduled_campaign_starts_when_due(store: Store) -> None:
    at = datetime.now(UTC) + timedelta(minutes=2)
    cid = make_campaign(store, phones(2), send_at=at)
    assert store.campaign(cid).state == CampaignState.SCHEDULED
    assert store.start_due(at - timedelta(seconds=1)) == []
    assert store.start_due(at) == [cid]
    assert store.start_due(at) == []  # twice is harmless
    assert store.campaign(cid).state == CampaignState.RUNNING


def test_statuses_and_completion(store: Store) -> None:
    cid = make_campaign(store, phones(2), batch=2)
    ((chunk_id, attempt),) = store.claimable_chunks(campaign_id=cid)
    chunk = store.claim_chunk(chunk_id, attempt, LEASE)
    now = datetime.now(UTC)
    store.record_send(
        chunk,
        [
            RecipientUpdate(m.recipient_id, RecipientState.SENT, f"m{m.recipient_id}", None, None, now)
            for m in chunk.messages
        ],
        requeue=False,
    )
    assert store.complete_finished() == []
    due = store.due_polls(now=now)
    store.record_statuses(
        [RecipientUpdate(d.recipient_id, RecipientState.DELIVERED, None, "1", None, None, now) for d in due]
    )
    assert store.complete_finished() == [cid]
    assert store.campaign(cid).counts == {RecipientState.DELIVERED: 2}


def test_static_text_and_awkward_fields_survive_the_bulk_load(store: Store) -> None:
    awkward = ['a "quoted", comma', "line\nbreak", "back\\slash", "", "علی\tتب"]
    df = pd.DataFrame({"row": range(2, 7), "phone": phones(5), "note": awkward})
    spec = CampaignSpec(
        name="t",
        provider="ghasedak",
        account="a",
        sender="",
        message="Static {x}",
        personalised=False,
        columns=["note"],
    )
    cid = store.create_campaign(spec, plan([df], Template("Static {{x}}"), 5, ["note"]))
    rows = list(store.recipients_rows(cid))
    assert [json.loads(r["fields"])["note"] for r in rows] == awkward
    ((chunk_id, attempt),) = store.claimable_chunks(campaign_id=cid)
    chunk = store.claim_chunk(chunk_id, attempt, LEASE)
    assert {m.text for m in chunk.messages} == {"Static {x}"}


def test_stale_chunks_are_found_for_publishing_again(store: Store) -> None:
    cid = make_campaign(store, phones(4), batch=2)
    now = datetime.now(UTC)
    assert store.stale_chunks(now - timedelta(seconds=60), now) == []
    grace, t1 = timedelta(seconds=60), now + timedelta(seconds=120)
    stale = store.stale_chunks(t1 - grace, t1)
    assert len(stale) == 2
    # published again at t1: not again until the grace period has passed once more
    assert store.stale_chunks(t1 - grace, t1) == []
    t2 = t1 + grace + timedelta(seconds=1)
    assert len(store.stale_chunks(t2 - grace, t2)) == 2
    (chunk_id, attempt), _ = stale
    chunk = store.claim_chunk(chunk_id, attempt, LEASE)
    store.chunk_retry(chunk, "code 10", delay=5, max_attempts=3, now=t2)
    later = t2 + timedelta(seconds=6)
    assert (chunk_id, 1) in store.stale_chunks(later - grace, later)  # due: published at once
    assert (chunk_id, 1) not in store.stale_chunks(later - grace, later)  # then once per grace
    store.pause(cid)
    assert store.stale_chunks(later, later) == []


def test_stale_chunks_skip_campaigns_outside_their_window(store: Store) -> None:
    from dataclasses import replace

    from campaigns.windows import closed_windows

    inside = make_campaign(store, phones(4), batch=2)
    df = pd.DataFrame({"row": [2, 3], "phone": phones(2, start=100), "name": ["a", "b"]})
    spec = CampaignSpec(
        name="w", provider="ghasedak", account="acct", sender="1", message="x", personalised=False
    )
    windowed = store.create_campaign(
        replace(spec, window="09:00-21:00"), plan([df], Template("x"), 2, ["name"])
    )
    assert store.running_windows() == {windowed: "09:00-21:00"}
    night = datetime(2026, 12, 4, 19, 0, tzinfo=UTC)  # 22:30 Tehran: closed
    closed = closed_windows(store.running_windows(), night)
    assert closed == {windowed: datetime(2026, 12, 5, 5, 30, tzinfo=UTC)}  # 09:00 Tehran next day
    later = datetime.now(UTC) + timedelta(seconds=1)
    stale = store.stale_chunks(later, later, exclude_campaigns=closed)
    campaigns_of = {store.load_chunk(c).campaign_id for c, _ in stale}
    assert campaigns_of == {inside}
    after = later + timedelta(seconds=1)  # the first call marked what it returned as published `later`
    assert len(store.stale_chunks(after, after)) == 3


def test_a_stale_reconciliation_never_touches_a_chunk_that_moved_on(store: Store) -> None:
    """Two reconciliations of one `unknown` chunk overlap (beat asks again every sweep): the first
    re-queues it and a worker claims it; the second, late, must neither re-queue the chunk being
    sent (a second claim would send it twice) nor hold its recipients."""
    cid = make_campaign(store, phones(4), batch=4)
    ((chunk_id, attempt),) = store.claimable_chunks(campaign_id=cid)
    claimed = store.claim_chunk(chunk_id, attempt, LEASE)
    assert store.chunk_unknown(claimed, "read timeout")
    first, late = store.load_chunk(chunk_id), store.load_chunk(chunk_id)

    assert store.record_reconciled(first, [], requeue=True).moved  # not found at the provider: queue again
    resent = store.claim_chunk(chunk_id, first.attempt, LEASE)
    assert resent is not None and resent.attempt == first.attempt + 1

    assert store.record_reconciled(late, [], requeue=True) == Reconciliation(current=False)  # nothing written
    assert store.hold_unknown(late, "cannot ask") == 0
    assert not store.resend_unknown(late, "policy")
    view = store.campaign(cid)
    assert view.chunk_counts == {ChunkState.SENDING: 1}
    assert view.counts == {RecipientState.PENDING: 4}
    assert store.claim_chunk(chunk_id, first.attempt, LEASE) is None  # nobody else can claim it


def test_a_late_sender_cannot_close_or_requeue_the_next_attempt(store: Store) -> None:
    """The first sender's lease ran out, reconciliation queued the chunk again and a second worker
    claimed it; whatever the first sender records now must not touch the second attempt."""
    cid = make_campaign(store, phones(4), batch=4)
    ((chunk_id, attempt),) = store.claimable_chunks(campaign_id=cid)
    slow = store.claim_chunk(chunk_id, attempt, timedelta(seconds=1))
    assert store.expire_leases(datetime.now(UTC) + timedelta(seconds=5)) == [chunk_id]
    assert store.record_reconciled(store.load_chunk(chunk_id), [], requeue=True).moved
    second = store.claim_chunk(chunk_id, slow.attempt, LEASE)
    assert second is not None

    assert not store.record_send(slow, [], requeue=False)
    assert not store.record_send(slow, [], requeue=True)
    store.pause_for_account(slow, "credit")
    assert store.split_chunk(slow, "refused") is None
    assert not store.chunk_failed(slow, "bad request")
    assert store.campaign(cid).chunk_counts == {ChunkState.SENDING: 1}
    assert store.claim_chunk(chunk_id, second.attempt, LEASE) is None


def test_a_send_result_writes_only_recipients_still_pending(store: Store) -> None:
    """The set-based record keeps the per-recipient guard: a second (stale) result changes nothing."""
    cid = make_campaign(store, phones(4), batch=4)
    ((chunk_id, attempt),) = store.claimable_chunks(campaign_id=cid)
    chunk = store.claim_chunk(chunk_id, attempt, LEASE)
    first, *rest = chunk.messages
    now = datetime.now(UTC)
    store.record_send(
        chunk,
        [RecipientUpdate(first.recipient_id, RecipientState.FAILED, None, "8", "refused: «bad number»")]
        + [
            RecipientUpdate(m.recipient_id, RecipientState.SENT, f"a{i}", "0", None, now)
            for i, m in enumerate(rest)
        ],
        requeue=False,
    )
    stale = [
        RecipientUpdate(m.recipient_id, RecipientState.SENT, "again", None, None, now) for m in chunk.messages
    ]
    with store.engine.begin() as conn:
        assert apply_updates(conn, stale, now, sent=True) == 0
    rows = {r["id"]: r for r in store.recipients_rows(cid)}
    assert (
        rows[first.recipient_id]["state"] == "failed"
        and rows[first.recipient_id]["error"] == "refused: «bad number»"
    )
    assert [rows[m.recipient_id]["provider_message_id"] for m in rest] == ["a0", "a1", "a2"]
    assert {rows[m.recipient_id]["state"] for m in rest} == {"sent"}
    due = store.due_polls(now=now + timedelta(seconds=1))
    assert sorted(d.message_id for d in due) == ["a0", "a1", "a2"]


def test_reconciliation_acts_only_on_a_chunk_still_unknown(store: Store) -> None:
    """A duplicate reconcile message about an episode that is over (the chunk was queued again and is
    being sent) must not reopen, hold or close the chunk mid-send."""
    cid = make_campaign(store, phones(2), batch=2)
    ((chunk_id, attempt),) = store.claimable_chunks(campaign_id=cid)
    store.claim_chunk(chunk_id, attempt, timedelta(seconds=1))
    store.expire_leases(datetime.now(UTC) + timedelta(seconds=5))
    seen = store.load_chunk(chunk_id)  # what both reconcile messages load
    assert store.resend_unknown(seen, "resend")  # the first one's verdict
    assert store.claim_chunk(chunk_id, None, LEASE) is not None  # a worker is sending it now
    assert not store.resend_unknown(seen, "resend")
    assert store.hold_unknown(seen, "cannot ask") == 0
    assert not store.record_reconciled(seen, [], requeue=True).current
    assert store.campaign(cid).chunk_counts == {ChunkState.SENDING: 1}
    assert store.campaign(cid).counts == {RecipientState.PENDING: 2}


def test_a_late_reply_turns_held_unknown_recipients_into_facts(store: Store) -> None:
    """The sender stalled past its lease and its recipients were held `unknown`; its reply, read
    afterwards, says they went out with these ids: the store records that."""
    cid = make_campaign(store, phones(2), batch=2)
    ((chunk_id, attempt),) = store.claimable_chunks(campaign_id=cid)
    chunk = store.claim_chunk(chunk_id, attempt, timedelta(seconds=1))
    store.expire_leases(datetime.now(UTC) + timedelta(seconds=5))
    assert store.hold_unknown(store.load_chunk(chunk_id), "cannot ask") == 2
    updates = [
        RecipientUpdate(m.recipient_id, RecipientState.SENT, f"id-{m.recipient_id}") for m in chunk.messages
    ]
    store.record_send(chunk, updates, requeue=False)
    assert store.campaign(cid).counts == {RecipientState.SENT: 2}
    assert store.campaign(cid).chunk_counts == {ChunkState.ACCEPTED: 1}


def test_a_frozen_transaction_does_not_hold_its_locks_for_ever(monkeypatch, tmp_path) -> None:
    """A process stopped (SIGSTOP) inside a transaction would block every claim and sweep behind its row
    locks; PostgreSQL ends a session idle in a transaction after SMSDISPATCH_DB_IDLE_TX_TIMEOUT."""
    from sqlalchemy.exc import DBAPIError

    from tests.support.services import drop_postgres_db, fresh_postgres_db

    monkeypatch.setenv("SMSDISPATCH_DB_IDLE_TX_TIMEOUT", "1")
    url = fresh_postgres_db()
    try:
        store, frozen = Store.from_url(url), Store.from_url(url)
        store.migrate()
        cid = make_campaign(store, phones(2), batch=2)
        ((chunk_id, attempt),) = store.claimable_chunks(campaign_id=cid)
        conn = frozen.engine.connect()
        tx = conn.begin()
        conn.execute(text("SELECT id FROM chunks WHERE id = :id FOR UPDATE"), {"id": chunk_id})
        # ... and the holder stops here. Another worker's claim waits, then gets the chunk.
        assert store.claim_chunk(chunk_id, attempt, LEASE) is not None
        with pytest.raises(DBAPIError):  # the frozen one wakes to a closed session: nothing it did stays
            conn.execute(text("SELECT 1"))
            tx.commit()
        conn.close()
        store.engine.dispose()
        frozen.engine.dispose()
    finally:
        drop_postgres_db(url)


def test_sending_open_counts_queued_and_pending_unknown_chunks_in_one_read(store):
    """The runner stops when this is 0: an unknown chunk with pending recipients still counts (it may be
    sent again), one whose recipients are all settled does not."""
    cid = make_campaign(store, phones(3), batch=3)
    assert store.sending_open(cid) == 1  # queued
    (chunk_id, attempt), *_ = store.claimable_chunks(campaign_id=cid)
    claimed = store.claim_chunk(chunk_id, attempt, LEASE)
    store.chunk_unknown(claimed, "read timeout")
    assert store.sending_open(cid) == 1  # unknown, its recipients pending: reconciliation decides
    store.hold_unknown(store.load_chunk(chunk_id), "the provider cannot be asked")
    assert store.sending_open(cid) == 0  # held: nothing will be sent


def test_the_same_list_and_text_is_stored_once_even_when_two_creations_race(store: Store) -> None:
    """Two creations with the same fingerprint, both past the preflight: the second waits for the first
    (SQLite's write lock, PostgreSQL's advisory lock on the fingerprint), sees it and stores nothing."""
    from campaigns.preflight import DuplicateCampaign

    df = pd.DataFrame({"row": [2, 3], "phone": phones(2), "name": ["a", "b"]})
    since = datetime.now(UTC) - timedelta(days=7)
    spec = CampaignSpec(
        name="t",
        provider="ghasedak",
        account="a",
        sender="",
        message="x",
        personalised=False,
        fingerprint="f" * 64,
        duplicate_since=since,
    )
    inside = threading.Event()

    def slow_blocks():  # the first creation holds its transaction open a while, past the check
        inside.set()
        time.sleep(0.5)
        yield from plan([df], Template("x"), 5, ["name"])

    results: list[object] = []

    def first() -> None:
        results.append(store.create_campaign(spec, slow_blocks()))

    racer = threading.Thread(target=first)
    racer.start()
    assert inside.wait(5)
    with pytest.raises(DuplicateCampaign) as refused:
        store.create_campaign(spec, plan([df], Template("x"), 5, ["name"]))
    racer.join()
    assert refused.value.campaign.id == results[0]
    assert [c.id for c in store.campaigns()] == [results[0]]
    # a test send, or --allow-duplicate (no duplicate_since), is stored
    assert store.create_campaign(replace(spec, test=True), plan([df], Template("x"), 5, ["name"]))
    assert store.create_campaign(replace(spec, duplicate_since=None), plan([df], Template("x"), 5, ["name"]))
