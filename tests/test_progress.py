"""The progress model: pure cases without a database, and the store's rate query on both backends."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import text

from campaigns.progress import RateSample, RetryInfo, duration, progress_of, read_progress, tehran_time
from campaigns.store import CampaignView, RecipientUpdate, Store
from campaigns.windows import TEHRAN
from tests.test_store import LEASE, make_campaign, phones

NOW = datetime(2026, 11, 26, 8, 0, tzinfo=UTC)  # 11:30 Tehran


def view(state: str = "running", counts=None, chunks=None, **kw) -> CampaignView:
    counts = counts if counts is not None else {"pending": 600, "sent": 300, "delivered": 100}
    base = dict(
        id=7,
        name="t",
        provider="ghasedak",
        state=state,
        state_reason=None,
        recipients=sum(counts.values()),
        rejected=0,
        chunks=10,
        parts=10,
        rejects_file="",
        source_file="",
        columns=[],
        sender="",
        message="",
        on_unknown="hold",
        send_at=None,
        window=None,
        created_at=NOW - timedelta(hours=1),
        started_at=NOW - timedelta(hours=1),
        finished_at=None,
        counts=counts,
        chunk_counts=chunks if chunks is not None else {"queued": 6, "accepted": 4},
    )
    base.update(kw)
    return CampaignView(**base)


def test_running_campaign_rate_and_eta():
    p = progress_of(view(), RateSample(sent=600, since=NOW - timedelta(minutes=5)), None, NOW)
    assert (p.total, p.pending, p.sent, p.final) == (1000, 600, 400, 100)
    assert p.rate == pytest.approx(2.0)  # 600 in 300 s
    assert p.eta_seconds == pytest.approx(300.0)  # 600 pending at 2/s
    assert p.waiting is None
    assert p.eta_text == "5m 00s (about 11:35 Tehran (+03:30))"
    data = p.as_json()
    assert data["eta_seconds"] == 300 and data["rate"] == 2.0
    assert data["eta"] == (NOW + timedelta(seconds=300)).isoformat()
    assert data["progress"] == {"total": 1000, "sent": 400, "final": 100, "cancelled": 0}


def test_rate_counts_from_the_start_when_that_is_recent():
    v = view(started_at=NOW - timedelta(seconds=60))
    p = progress_of(v, RateSample(sent=120, since=NOW - timedelta(minutes=5)), None, NOW)
    assert p.rate == pytest.approx(2.0)  # 120 over the 60 s since it started, not over 5 min


def test_no_recent_send_means_no_eta_yet():
    p = progress_of(view(), RateSample(0, NOW - timedelta(minutes=5)), None, NOW)
    assert p.rate == 0 and p.eta_seconds is None
    assert p.eta_text.startswith("estimating")


def test_scheduled_waits_until_send_at():
    at = NOW + timedelta(hours=2)
    v = view("scheduled", counts={"pending": 10}, chunks={"planned": 1}, started_at=None, send_at=at)
    p = progress_of(v, RateSample(0, NOW - timedelta(minutes=5)), None, NOW)
    assert p.waiting.reason == "scheduled" and p.waiting.until == at
    assert p.eta_seconds == pytest.approx(7200)
    assert p.eta_text == "scheduled: starts at 13:30 Tehran (+03:30)"
    assert p.as_json()["waiting"] == {"reason": "scheduled", "until": at.isoformat(), "detail": p.eta_text}


def test_outside_the_window_waits_for_it_to_open():
    p = progress_of(view(window="20:00-22:00"), RateSample(0, NOW), None, NOW)
    assert p.waiting.reason == "window"
    opens = datetime(2026, 11, 26, 20, 0, tzinfo=TEHRAN)
    assert p.waiting.until == opens
    assert p.eta_seconds == pytest.approx((opens - NOW).total_seconds())
    assert p.eta_text == "waiting for the window 20:00-22:00, opens at 20:00 Tehran (+03:30)"
    # the next day's opening carries its date
    p = progress_of(view(window="09:00-11:00"), RateSample(0, NOW), None, NOW)
    assert p.waiting.detail.endswith("opens at 2026-11-27 09:00 Tehran (+03:30)")
    # inside the window: not waiting
    p = progress_of(view(window="09:00-21:00"), RateSample(600, NOW - timedelta(minutes=5)), None, NOW)
    assert p.waiting is None and p.eta_seconds == pytest.approx(300)


def test_paused_has_the_reason_and_no_eta():
    v = view("paused", state_reason="no credit left (ghasedak code 9)")
    p = progress_of(v, RateSample(50, NOW - timedelta(minutes=5)), None, NOW)
    assert p.waiting.reason == "paused" and p.waiting.until is None
    assert "no credit left" in p.waiting.detail
    assert p.eta_seconds is None and "no credit left" in p.eta_text
    assert p.rate is None  # a rate only while it runs


def test_retrying_when_every_open_chunk_backs_off():
    nxt = NOW + timedelta(seconds=40)
    v = view(chunks={"retry": 2, "accepted": 8})
    p = progress_of(v, RateSample(0, NOW), RetryInfo(2, nxt, "HTTP 503"), NOW)
    assert p.waiting.reason == "retrying" and p.waiting.until == nxt
    assert "2 chunk(s)" in p.waiting.detail and "HTTP 503" in p.waiting.detail
    assert "11:30:40 Tehran" in p.waiting.detail
    # other chunks still moving: sending goes on, nothing to wait for
    v = view(chunks={"retry": 2, "queued": 3, "accepted": 5})
    assert progress_of(v, RateSample(0, NOW), RetryInfo(2, nxt, "HTTP 503"), NOW).waiting is None


def test_all_sent_and_finished():
    v = view(counts={"sent": 5, "delivered": 5}, chunks={"accepted": 2})
    p = progress_of(v, RateSample(10, NOW - timedelta(minutes=5)), None, NOW)
    assert p.eta_seconds == 0 and p.eta_text == "all sent; waiting for delivery reports"
    v = view("completed", counts={"delivered": 8, "unknown": 1, "failed": 1}, chunks={"accepted": 2})
    p = progress_of(v, None, None, NOW)
    assert p.finished and p.final == 10 and p.eta_seconds is None and p.rate is None


def test_sent_counts_only_what_a_provider_accepted():
    """Cancelled at about 920 of 4000: 'sent' is what a provider accepted, never the cancelled, those
    refused or failed before sending, nor the unknown (it said 4000 of 4000 when sent was total - pending)."""
    counts = {
        "sent": 20,
        "sent_to_operator": 5,
        "delivered": 880,
        "undelivered": 10,
        "expired": 2,
        "failed": 6,  # 4 by a delivery report, 2 before sending
        "blacklisted": 4,  # 3 by a delivery report, 1 refused at sending
        "unknown": 3,
        "cancelled": 3070,
    }
    v = view("cancelled", counts=counts, chunks={"accepted": 10, "cancelled": 30}, reported_failed=7)
    p = progress_of(v, None, None, NOW)
    assert (p.total, p.pending, p.sent, p.cancelled, p.awaiting) == (4000, 0, 924, 3070, 25)
    assert p.as_json()["progress"] == {"total": 4000, "sent": 924, "final": 3975, "cancelled": 3070}
    assert p.finished and p.eta_text == "cancelled"


def test_the_next_delivery_check_is_shown_while_reports_are_awaited():
    at = NOW + timedelta(seconds=75)
    v = view(counts={"sent": 5, "delivered": 5}, chunks={"accepted": 2})
    p = progress_of(v, RateSample(10, NOW - timedelta(minutes=5)), None, NOW, next_check=at)
    assert p.eta_text == "all sent; waiting for delivery reports; next check at 11:31:15 Tehran (+03:30)"
    assert p.as_json()["next_check_at"] == at.isoformat()
    done = view("completed", counts={"delivered": 10}, chunks={"accepted": 2})
    assert progress_of(done, None, None, NOW, next_check=at).as_json()["next_check_at"] is None


def test_duration_and_time_formats():
    assert [duration(s) for s in (0, 59, 61, 3600, 3725, 90000)] == [
        "0s",
        "59s",
        "1m 01s",
        "1h 00m",
        "1h 02m",
        "1d 01h",
    ]
    assert tehran_time(NOW, NOW) == "11:30 Tehran (+03:30)"
    assert tehran_time(NOW + timedelta(hours=13), NOW) == "2026-11-27 00:30 Tehran (+03:30)"


# ---- the store's reads, on SQLite and PostgreSQL ----------------------------------------------------------


def _send(store: Store, cid: int, n_chunks: int, at: datetime) -> int:
    sent = 0
    for chunk_id, attempt in store.claimable_chunks(limit=n_chunks, campaign_id=cid):
        chunk = store.claim_chunk(chunk_id, attempt, LEASE, now=at)
        updates = [RecipientUpdate(m.recipient_id, "sent", f"m{m.recipient_id}") for m in chunk.messages]
        store.record_send(chunk, updates, requeue=False, now=at)
        sent += len(updates)
    return sent


def test_sent_since_counts_recent_sends(store: Store) -> None:
    cid = make_campaign(store, phones(12), batch=3)
    other = make_campaign(store, phones(6, start=100), batch=3)
    now = datetime.now(UTC)
    early = _send(store, cid, 2, now - timedelta(minutes=20))
    late = _send(store, cid, 1, now - timedelta(minutes=1))
    _send(store, other, 2, now - timedelta(minutes=1))  # another campaign's sends are not counted
    assert (early, late) == (6, 3)
    assert store.sent_since(cid, now - timedelta(minutes=5)) == 3
    assert store.sent_since(cid, now - timedelta(hours=1)) == 9
    view, p = read_progress(store, cid, now)
    assert view.id == cid and p.sent == 9 and p.pending == 3
    # the campaign started moments ago (sends above are back-dated): the rate counts from its start
    assert p.rate == pytest.approx(3 / max((now - view.started_at).total_seconds(), 1.0))


def test_rate_query_reads_the_sent_index(store: Store) -> None:
    sql = "SELECT count(*) FROM recipients WHERE campaign_id = 1 AND sent_at >= '2026-01-01'"
    with store.engine.connect() as conn:
        if conn.dialect.name == "sqlite":
            plan = " ".join(str(r[-1]) for r in conn.execute(text("EXPLAIN QUERY PLAN " + sql)))
        else:
            conn.execute(text("SET enable_seqscan = off"))  # an empty table would be scanned anyway
            plan = " ".join(r[0] for r in conn.execute(text("EXPLAIN " + sql)))
    assert "ix_recipients_campaign_sent" in plan, plan


def test_next_retry_and_timeline_rows(store: Store) -> None:
    cid = make_campaign(store, phones(9), batch=3)
    now = datetime.now(UTC)
    assert store.next_retry(cid) == (0, None, None)
    claimed = [store.claim_chunk(c, a, LEASE, now=now) for c, a in store.claimable_chunks(campaign_id=cid)]
    store.chunk_retry(claimed[0], "HTTP 503", 30, 6, now=now)
    store.chunk_retry(claimed[1], "HTTP 429", 10, 6, now=now)
    n, at, error = store.next_retry(cid)
    assert (n, error) == (2, "HTTP 429")
    assert at == now + timedelta(seconds=10)
    rows = list(store.timeline_rows(cid, batch=4))
    assert len(rows) == 9 and {r[0] for r in rows} == {"pending"}
    view, p = read_progress(store, cid, now)
    assert p.waiting is None  # the third chunk is still sending


def test_cancelled_and_refused_recipients_are_not_counted_as_sent(store: Store) -> None:
    """Through the store: 3 accepted (one failed later by its report), 3 refused at sending, 6 cancelled."""
    cid = make_campaign(store, phones(12), batch=3)
    now = datetime.now(UTC)
    check = now + timedelta(seconds=60)
    (a, a_try), (b, b_try), *_ = store.claimable_chunks(campaign_id=cid)
    accepted = store.claim_chunk(a, a_try, LEASE, now=now)
    store.record_send(
        accepted,
        [
            RecipientUpdate(m.recipient_id, "sent", f"m{m.recipient_id}", None, None, check)
            for m in accepted.messages
        ],
        requeue=False,
        now=now,
    )
    refused = store.claim_chunk(b, b_try, LEASE, now=now)
    store.record_send(
        refused,
        [RecipientUpdate(m.recipient_id, "failed", None, "14", "refused") for m in refused.messages],
        requeue=False,
        now=now,
    )
    first = accepted.messages[0].recipient_id
    store.record_statuses([RecipientUpdate(first, "failed", None, "2", None)], now)  # a delivery report
    assert store.cancel(cid)
    view, p = read_progress(store, cid, now)
    assert view.counts == {"sent": 2, "failed": 4, "cancelled": 6}
    assert (p.sent, p.cancelled, p.pending, p.awaiting) == (3, 6, 0, 2)
    assert p.as_json()["progress"] == {"total": 12, "sent": 3, "final": 10, "cancelled": 6}
    assert p.next_check_at == check
