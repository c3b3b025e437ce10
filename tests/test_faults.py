"""Fault tests with real processes (docs/architecture.md, "How the invariants are kept"): real Redis, real PostgreSQL, Celery workers and one beat as
subprocesses, the sandbox as an HTTP server. Each test breaks something in the middle of a real campaign
and then takes the sandbox's own record of what it accepted as the witness: every number went out at
most once (exactly once when it could be sent), the store agrees number by number (same ids), nothing
is left pending, and the campaign completes; a recipient the provider cannot be asked about is held
`unknown` with its reason.

Settings are shortened through the environment (tests/support/cluster.py FAST_ENV and per test), so each test
takes seconds to tens of seconds; every wait is for a condition, with a generous deadline.
"""

from __future__ import annotations

import csv
import re
import subprocess
import time
from collections import Counter

import pytest

from dispatcher.sandbox.core import Fault, SandboxState
from tests.support.cluster import EXE, OwnRedis, assert_witnessed, run_cluster, wait_completed, wait_for
from tests.support.services import REDIS_URL, require_service
from workers.settings import DispatchSettings

pytestmark = pytest.mark.slow

FAULT_ENV = {"SMSDISPATCH_BACKOFF_BASE": "0.2", "SMSDISPATCH_BACKOFF_CAP": "1"}


@pytest.fixture
def shared_broker() -> str:
    """Our database on the shared Redis, emptied first (the tests that kill Redis run their own)."""
    require_service("Redis", "127.0.0.1", 6379)
    import redis

    redis.Redis.from_url(REDIS_URL).flushdb()
    return REDIS_URL


def no_unknowns(counts: dict[str, int]) -> None:
    assert not counts.get("unknown"), f"recipients left unknown: {counts}"


def accepted_count(state: SandboxState, provider: str = "ghasedak") -> int:
    return len(state.accepted(provider))


def publish(cluster, chunk_ids: list[tuple[int, int]], times: int) -> None:
    """Publish send_chunk for each chunk `times` times, through an app on the cluster's broker."""
    from workers.celery_app import make_app
    from workers.settings import DispatchSettings

    app = make_app(DispatchSettings.from_env(cluster.env))
    try:
        with app.producer_or_acquire() as producer:
            for n in range(times):
                for chunk_id, attempt in chunk_ids:
                    # half with the attempt the chunk was published with, half without (a bare "look at N")
                    args = (chunk_id, attempt) if n % 2 == 0 else (chunk_id, None)
                    app.send_task("smsdispatch.send_chunk", args=args, producer=producer)
    finally:
        app.close()


def received_task_ids(log: str) -> Counter[str]:
    return Counter(re.findall(r"Task smsdispatch\.send_chunk\[([0-9a-f-]+)\] received", log))


# ---- 1. the broker restarted in the middle of a campaign -----------------------------------------------------
@pytest.mark.parametrize("appendonly", [False, True], ids=["empty", "aof"])
def test_broker_killed_and_restarted_mid_campaign(tmp_path, appendonly):
    """Redis (the broker, and the rate limiter's store) dies with SIGKILL mid-campaign and comes back:
    empty (queued messages lost; the sweep publishes the queued chunks again) or from its append-only
    file. Workers and beat reconnect."""
    with OwnRedis(tmp_path, appendonly=appendonly) as broker:
        state = SandboxState(seed=5, final_after_s=0.2, latency_ms=200)
        # A rate limit, so the shared limiter (on the same Redis, by default) goes down and comes back too.
        env = {**FAULT_ENV, "SMSDISPATCH_GHASEDAK_BATCH": "20", "SMSDISPATCH_GHASEDAK_RATE": "5000/s"}
        with run_cluster(tmp_path, broker.url, state=state, env=env) as cluster:
            cluster.workers(2, concurrency=4)
            cluster.beat()
            campaign, summary = cluster.send(2000)
            total = summary["recipients"]
            wait_for(lambda: accepted_count(state) >= total // 5, "a fifth of the campaign to go out", 60)
            broker.kill()
            sent_while_down = accepted_count(state)
            time.sleep(1.0)
            broker.start()
            assert sent_while_down < total, "the campaign finished before the broker was killed"
            counts = wait_completed(cluster.db, campaign, timeout=180)
            no_unknowns(counts)
            assert sum(counts.values()) == total
            assert_witnessed(cluster, campaign)
            assert accepted_count(state) == total  # every number of the campaign, once


# ---- 2. the provider misbehaves under real workers -------------------------------------------------------------
GHASEDAK_FAULTS: dict[str, tuple[Fault, float, dict[str, str]]] = {
    # Ghasedak code 10 "system error, try again" is transient: the chunk backs off and is sent again
    # (with random transient failures on top).
    "transient-code": (Fault("ghasedak", kind="code", code=10, times=6), 0.1, {}),
    # 503 means "not processed": transient.
    "http-503": (Fault("ghasedak", kind="http", status=503, times=4), 0.0, {}),
    # 500 before acceptance: the client cannot know nothing went out, so it is ambiguous; the checkid
    # lookup finds nothing and only then (after the grace) is the chunk queued again.
    "http-500-before-accept": (Fault("ghasedak", kind="http", status=500, times=3), 0.0, {}),
    # Accepted, then the reply never comes in time (read timeout) / is a 500: reconciled by checkid,
    # never resent.
    "accept-then-hang": (Fault("ghasedak", kind="accept_then_hang", seconds=4, times=3), 0.0, {}),
    "accept-then-500": (Fault("ghasedak", kind="accept_then_http", status=500, times=3), 0.0, {}),
    # The provider sits on the request past our read timeout and accepts it afterwards: a checkid that
    # is not found yet means "not sent" only after RECONCILE_GRACE, which must cover such a lag.
    "slow-accept-after-timeout": (
        Fault("ghasedak", kind="hang", seconds=4, times=3),
        0.0,
        {"SMSDISPATCH_GHASEDAK_RECONCILE_GRACE": "8"},
    ),
}


@pytest.mark.parametrize("case", list(GHASEDAK_FAULTS))
def test_provider_faults_under_real_workers(tmp_path, shared_broker, case):
    fault, fail_rate, case_env = GHASEDAK_FAULTS[case]
    state = SandboxState(seed=9, final_after_s=0.2, latency_ms=30, fail_rate=fail_rate)
    state.add_fault(Fault(**vars(fault)))
    env = {**FAULT_ENV, "SMSDISPATCH_GHASEDAK_BATCH": "25", **case_env}
    with run_cluster(tmp_path, shared_broker, state=state, env=env) as cluster:
        cluster.workers(2, concurrency=4)
        cluster.beat()
        campaign, summary = cluster.send(500)
        counts = wait_completed(cluster.db, campaign, timeout=120)
        assert not state.faults, "the scripted fault never struck"
        no_unknowns(counts)
        assert sum(counts.values()) == summary["recipients"]
        assert_witnessed(cluster, campaign)
        assert accepted_count(state) == summary["recipients"]
        # Calls beyond one per chunk: each refused call once more; a call the sandbox took, never.
        extra = state.calls[("ghasedak", "send")] - summary["chunks"]
        if fault.kind in ("accept_then_hang", "accept_then_http", "hang"):
            assert extra == 0, "a send that had gone out was sent again"
        elif fail_rate:
            assert extra >= fault.times
        else:
            assert extra == fault.times


@pytest.mark.parametrize("provider", ["mediapayamak", "amoot"])
def test_sent_box_providers_reconcile_ambiguous_sends(tmp_path, shared_broker, provider):
    """Media Payamak and Amoot are asked through their sent boxes (number and text): a send the sandbox
    took before failing is found there and recorded, one it never took is sent again after the grace."""
    state = SandboxState(seed=17, final_after_s=0.2, latency_ms=30)
    state.add_fault(Fault(provider, kind="accept_then_http", status=500, times=2))
    state.add_fault(Fault(provider, kind="http", status=500, times=2))
    up = f"SMSDISPATCH_{provider.upper()}_"
    env = {**FAULT_ENV, up + "BATCH": "25", up + "TIMEOUT": "1,2", up + "RECONCILE_GRACE": "2"}
    with run_cluster(tmp_path, shared_broker, state=state, env=env) as cluster:
        cluster.workers(2, concurrency=4)
        cluster.beat()
        campaign, summary = cluster.send(400, provider)
        counts = wait_completed(cluster.db, campaign, timeout=120)
        assert not state.faults
        no_unknowns(counts)
        assert_witnessed(cluster, campaign, provider)
        assert accepted_count(state, provider) == summary["recipients"]


def test_gateway_ambiguous_sends_are_reconciled_by_client_reference(tmp_path, shared_broker):
    """Ghasedak's gateway is asked by clientReferenceId (CheckSmsStatus Type=2): a send the sandbox took
    before answering 500 is found and recorded, never sent again; one it never took (a 500 before
    acceptance) is sent again after the grace."""
    provider, up = "ghasedak-gateway", "SMSDISPATCH_GHASEDAK_GATEWAY_"
    state = SandboxState(seed=19, final_after_s=0.2, latency_ms=30)
    state.add_fault(Fault(provider, kind="accept_then_http", status=500, times=2))
    state.add_fault(Fault(provider, kind="accept_then_hang", seconds=4, times=2))
    state.add_fault(Fault(provider, kind="http", status=500, times=2))
    env = {**FAULT_ENV, up + "BATCH": "25", up + "TIMEOUT": "1,2", up + "RECONCILE_GRACE": "2"}
    with run_cluster(tmp_path, shared_broker, state=state, env=env) as cluster:
        cluster.workers(2, concurrency=4)
        cluster.beat()
        campaign, summary = cluster.send(400, provider)
        counts = wait_completed(cluster.db, campaign, timeout=120)
        assert not state.faults
        no_unknowns(counts)
        assert_witnessed(cluster, campaign, provider)
        assert accepted_count(state, provider) == summary["recipients"]


def negin_env() -> dict[str, str]:
    return {**FAULT_ENV, "SMSDISPATCH_NEGIN_TIMEOUT": "1,2"}


def report_rows(cluster, campaign: int) -> list[dict[str, str]]:
    out = cluster.tmp / f"report-{campaign}.csv"
    done = subprocess.run(
        [*EXE, "report", str(campaign), "--out", str(out)],
        env=cluster.env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    with out.open(encoding="utf-8-sig") as fh:
        return list(csv.DictReader(fh))


def test_negin_ambiguous_sends_are_held_unknown_with_the_reason(tmp_path, shared_broker):
    """Negin cannot be asked whether an interrupted send went out. Under the default policy (`hold`) the
    recipient of an ambiguous call is held `unknown` with the reason and never sent again, whether the
    sandbox had in fact accepted it (accept then 500) or not (500 before accepting)."""
    state = SandboxState(seed=3, final_after_s=0.2, latency_ms=20)
    state.add_fault(Fault("negin", kind="accept_then_http", status=500, times=1))
    state.add_fault(Fault("negin", kind="http", status=500, times=1))
    with run_cluster(tmp_path, shared_broker, state=state, env=negin_env()) as cluster:
        cluster.workers(2, concurrency=4)
        cluster.beat()
        campaign, summary = cluster.send(60, "negin")
        counts = wait_completed(cluster.db, campaign, timeout=120)
        assert not state.faults
        assert counts.get("unknown") == 2, counts
        rows = assert_witnessed(cluster, campaign, "negin")
        held = {p for p, r in rows.items() if r["state"] == "unknown"}
        sandbox = Counter(m.phone for m in state.accepted("negin"))
        assert sorted(sandbox.get(p, 0) for p in held) == [0, 1]  # one had gone out, one had not; none twice
        report = [r for r in report_rows(cluster, campaign) if r["state"] == "unknown"]
        assert len(report) == 2
        assert all("no way to ask" in r["error"] for r in report), report


def test_negin_resend_policy_resends_the_ambiguous_recipient(tmp_path, shared_broker):
    """`--on-unknown resend` is the user's choice to resend what cannot be checked: the ambiguous
    recipient is queued again and sent. Where the sandbox had not accepted it (500 before accepting),
    it goes out exactly once. Where it had (accept then 500), the resend makes it twice: that is what
    the policy means and why `hold` is the default; the store keeps the id of the send it saw."""
    state = SandboxState(seed=3, final_after_s=0.2, latency_ms=20)
    state.add_fault(Fault("negin", kind="http", status=500, times=1))
    state.add_fault(Fault("negin", kind="accept_then_http", status=500, times=1))
    with run_cluster(tmp_path, shared_broker, state=state, env=negin_env()) as cluster:
        cluster.workers(2, concurrency=4)
        cluster.beat()
        campaign, summary = cluster.send(60, "negin", "--on-unknown", "resend")
        counts = wait_completed(cluster.db, campaign, timeout=120)
        assert not state.faults
        no_unknowns(counts)
        sandbox = Counter(m.phone for m in state.accepted("negin"))
        twice = frozenset(p for p, n in sandbox.items() if n == 2)
        assert len(twice) == 1, sandbox.most_common(3)
        assert_witnessed(cluster, campaign, "negin", sent_twice=twice)


@pytest.mark.parametrize("provider", ["ghasedak", "negin"])
def test_worker_killed_while_its_sends_hang_after_acceptance(tmp_path, shared_broker, provider):
    """The sandbox has accepted every call the worker has in flight and holds the replies back; then the
    whole worker is SIGKILLed. Those chunks lose their sender: the lease runs out, they become `unknown`,
    and reconciliation decides. Ghasedak is asked by checkid and they are recorded as sent (never sent
    again); Negin cannot be asked, so under `hold` they are held `unknown` with the reason."""
    import os
    import signal

    state = SandboxState(seed=13, final_after_s=0.2, latency_ms=20)
    state.add_fault(Fault(provider, kind="accept_then_hang", seconds=8, times=4))
    env = {**negin_env(), "SMSDISPATCH_NEGIN_TIMEOUT": "1,5", "SMSDISPATCH_GHASEDAK_TIMEOUT": "1,5"}
    env["SMSDISPATCH_GHASEDAK_BATCH"] = "25"
    with run_cluster(tmp_path, shared_broker, state=state, env=env) as cluster:
        victim = cluster.spawn("worker", "-c", "4", "-n", "victim@%h")
        cluster.beat()
        campaign, summary = cluster.send(300 if provider == "ghasedak" else 40, provider)
        wait_for(lambda: not state.faults, "the victim's four calls to hang after acceptance", 60, 0.02)
        os.kill(victim.pid, signal.SIGKILL)
        victim.wait(timeout=10)
        cluster.spawn("worker", "-c", "4", "-n", "survivor@%h")
        counts = wait_completed(cluster.db, campaign, timeout=120)
        rows = assert_witnessed(cluster, campaign, provider)
        held = [r for r in rows.values() if r["state"] == "unknown"]
        if provider == "ghasedak":
            no_unknowns(counts)
            assert accepted_count(state, provider) == summary["recipients"]
        else:
            assert len(held) == 4, counts
            assert all("no way to ask" in r["error"] for r in held)


@pytest.mark.parametrize("provider", ["ghasedak", "negin"])
def test_worker_frozen_past_its_lease_then_resumed(tmp_path, shared_broker, provider):
    """SIGSTOP: a worker stalls (a VM pause, swapping) with calls in flight, for longer than its lease.
    Its chunks expire into `unknown` while it is frozen: Ghasedak's are found by checkid, Negin's are
    held `unknown` (nobody can ask); the campaign completes without it. When it resumes, the replies it
    then reads are facts: Negin's held recipients become sent with their ids. Nothing is sent twice and
    the store agrees with the sandbox."""
    import os
    import signal

    state = SandboxState(seed=19, final_after_s=0.2, latency_ms=300)
    env = {**negin_env(), "SMSDISPATCH_GHASEDAK_BATCH": "25"}
    # The victim's four threads are frozen while each waits for a reply to a call the sandbox has
    # accepted (answered after 1.2 s, inside the 2 s read timeout). Freezing at a random moment could
    # also catch a thread between its claim and its request leaving; woken past the lease margin, it
    # hands the attempt back unsent (workers/operations/send.py, stalled_since_claim), and only a freeze
    # between that check and the request leaving remains a gap no worker can close.
    state.add_fault(Fault(provider, "send", "accept_then_hang", seconds=1.2, times=4))
    with run_cluster(tmp_path, shared_broker, state=state, env=env) as cluster:
        victim = cluster.spawn("worker", "-c", "4", "-n", "victim@%h")
        cluster.beat()
        campaign, summary = cluster.send(1000 if provider == "ghasedak" else 120, provider)
        wait_for(lambda: state.calls[(provider, "send")] >= 4, "the victim's four calls", 60, 0.01)
        os.kill(victim.pid, signal.SIGSTOP)
        try:
            cluster.spawn("worker", "-c", "4", "-n", "survivor@%h")
            counts = wait_completed(cluster.db, campaign, timeout=120)
        finally:
            os.kill(victim.pid, signal.SIGCONT)

        def victim_idle() -> bool:
            log = (cluster.tmp / "worker-0.log").read_text(errors="replace")
            done = len(re.findall(r"smsdispatch\.send_chunk\[[0-9a-f-]+\] (?:succeeded|raised)", log))
            return done == sum(received_task_ids(log).values())

        wait_for(victim_idle, "the resumed worker to finish what it held", 60, 0.2)
        if provider == "ghasedak":
            no_unknowns(counts)
            assert accepted_count(state) == summary["recipients"]
        rows = assert_witnessed(cluster, campaign, provider)  # read now, after the late replies
        assert not [p for p, r in rows.items() if r["state"] == "unknown"], "a known outcome left unknown"


# ---- 3. workers racing for the same chunk ------------------------------------------------------------------------
def test_workers_racing_for_the_same_chunks_send_each_once(tmp_path, shared_broker):
    """Every chunk published seven times (the campaign's own publish, several chunks to a message, + six
    from here, one each) before three workers start: they race for each chunk, and the claim lets exactly
    one send it."""
    env = {**FAULT_ENV, "SMSDISPATCH_GHASEDAK_BATCH": "20"}
    with run_cluster(tmp_path, shared_broker, env=env) as cluster:
        campaign, summary = cluster.send(600)
        store = cluster.store()
        try:
            chunks = store.claimable_chunks(limit=1000, campaign_id=campaign)
        finally:
            store.engine.dispose()
        publish(cluster, chunks, times=6)
        cluster.workers(3, concurrency=4)
        cluster.beat()
        counts = wait_completed(cluster.db, campaign, timeout=120)
        no_unknowns(counts)
        assert_witnessed(cluster, campaign)
        assert accepted_count(cluster.state) == summary["recipients"]
        assert cluster.state.calls[("ghasedak", "send")] == len(chunks)  # one call per chunk, no more
        received = received_task_ids(cluster.logs("worker"))
        own = -(-len(chunks) // DispatchSettings().chunks_per_message)  # the campaign's own messages
        assert sum(received.values()) >= 6 * len(chunks) + own  # the duplicates did reach the workers


# ---- 4. the same task message delivered twice ----------------------------------------------------------------------
def test_message_redelivered_after_visibility_timeout_while_still_running(tmp_path, shared_broker):
    """A 2 s visibility timeout and a provider that takes 3 s: Redis gives each send_chunk message to a
    second consumer while the first is still sending it. The second finds the chunk claimed."""
    state = SandboxState(seed=11, final_after_s=0.2, latency_ms=3000)
    env = {
        **FAULT_ENV,
        "SMSDISPATCH_VISIBILITY_TIMEOUT": "2",
        "SMSDISPATCH_GHASEDAK_BATCH": "50",
        "SMSDISPATCH_GHASEDAK_TIMEOUT": "1,10",
    }
    with run_cluster(tmp_path, shared_broker, state=state, env=env) as cluster:
        cluster.workers(2, concurrency=4)
        cluster.beat()
        campaign, summary = cluster.send(400)
        counts = wait_completed(cluster.db, campaign, timeout=120)
        no_unknowns(counts)
        assert_witnessed(cluster, campaign)
        assert accepted_count(state) == summary["recipients"]
        received = received_task_ids(cluster.logs("worker"))
        assert any(n >= 2 for n in received.values()), "no message was delivered twice"


def test_duplicate_reconcile_messages_never_reopen_a_chunk_being_sent(tmp_path, shared_broker):
    """The same messages, many times: while a Negin chunk is ambiguous (`unknown`, policy `resend`),
    reconcile and send_chunk messages for it keep arriving, as a backed-up queue or a redelivery does.
    The first reconcile queues it again and a worker sends it (slowly); a later reconcile of the same
    chunk must find it no longer `unknown` and leave it alone, else the chunk goes back to the queue
    mid-send and a second worker sends the same recipient again."""
    import threading

    from workers.celery_app import make_app
    from workers.settings import DispatchSettings

    state = SandboxState(seed=3, final_after_s=0.2, latency_ms=800)
    state.add_fault(Fault("negin", kind="http", status=500, times=1))  # nothing accepted: resend once
    env = {**negin_env(), "SMSDISPATCH_NEGIN_TIMEOUT": "1,5"}
    with run_cluster(tmp_path, shared_broker, state=state, env=env) as cluster:
        cluster.workers(2, concurrency=4)
        cluster.beat()
        campaign, summary = cluster.send(30, "negin", "--on-unknown", "resend")
        store = cluster.store()
        app = make_app(DispatchSettings.from_env(cluster.env))
        stop = threading.Event()
        try:
            (chunk_id,) = wait_for(
                lambda: store.unknown_chunks(campaign_id=campaign), "the ambiguous chunk", 60, 0.02
            )

            def hammer() -> None:
                with app.producer_or_acquire() as producer:
                    while not stop.is_set():
                        app.send_task("smsdispatch.reconcile", args=(chunk_id,), producer=producer)
                        app.send_task("smsdispatch.send_chunk", args=(chunk_id, None), producer=producer)
                        time.sleep(0.05)

            thread = threading.Thread(target=hammer, daemon=True)
            thread.start()
            counts = wait_completed(cluster.db, campaign, timeout=120)
        finally:
            stop.set()
            store.engine.dispose()
        thread.join(timeout=10)
        app.close()
        no_unknowns(counts)
        assert_witnessed(cluster, campaign, "negin")


def test_transient_status_failures_do_not_climb_the_polling_ladder(tmp_path, shared_broker):
    """8 % transient failures on every call, status calls included, and three failed status calls on top:
    a failed check is retried within seconds at its rung, so every recipient's first answer (its final
    report, which the sandbox has after 0.2 s) is recorded at the first rung: one recorded poll each. A
    failed call counted as an answer would have moved its recipients up the ladder (docs/architecture.md, "Delivery-status polling": the last
    reports of a chaos run came 8 minutes after sending)."""
    from sqlalchemy import func, select

    from campaigns.store import recipients_t

    state = SandboxState(seed=9, final_after_s=0.2, latency_ms=10, fail_rate=0.08)
    state.add_fault(Fault("ghasedak", "status", kind="http", status=503, times=3))
    env = {
        **FAULT_ENV,
        "SMSDISPATCH_POLL_INTERVALS": "3,30,60",
        "SMSDISPATCH_STATUS_RETRY_BASE": "0.5",
        "SMSDISPATCH_STATUS_RETRY_CAP": "2",
    }
    with run_cluster(tmp_path, shared_broker, state=state, env=env) as cluster:
        cluster.workers(2, concurrency=4)
        cluster.beat()
        campaign, summary = cluster.send(300)
        counts = wait_completed(cluster.db, campaign, timeout=180)
        assert not state.faults, "the scripted status failures never struck"
        assert_witnessed(cluster, campaign)
        no_unknowns(counts)
        store = cluster.store()
        try:
            r = recipients_t.c
            with store.engine.connect() as conn:
                polls = dict(
                    conn.execute(
                        select(r.polls, func.count())
                        .where(r.campaign_id == campaign, r.polls > 0)
                        .group_by(r.polls)
                    ).all()
                )
        finally:
            store.engine.dispose()
        assert polls and set(polls) == {1}, f"recipients by recorded polls: {polls}"
