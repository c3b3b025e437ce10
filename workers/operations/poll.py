"""Delivery-status polling: claim what is due, ask the providers in batches, record each batch at once.

`plan_polls` claims due recipients (a committed claim with a lease, `Store.claim_due_polls`: one row of the
claim log, no write to the recipients; two pollers never ask about the same recipient at once, and a claim
whose poller vanished is taken over when its lease ends) and cuts them into batches of one provider account, at most the
client's `capabilities.max_status_batch` ids each. `poll_batch` asks about one batch and records the
answers with one set-based UPDATE. Beat's poll task publishes one `poll_batch` task per batch, carrying
the rows its claim read (`batch_message`), so the worker asks without reading them again;
the embedded runner calls `poll_once`, which does the same in-process. Checks back off
(settings.poll_intervals), respect the provider's call-level hints (`STATUS_HINTS`) and stop at a final
state; a recipient with no final report after settings.poll_max_age becomes `expired`, with the reason.

Only an answer moves a recipient up the ladder. A call that fails transiently (timeout, HTTP 5xx, a
transient code) is tried again within seconds: settings.status_retry_base, doubling per failure in a
row of that account in this process, capped at settings.status_retry_cap and the first interval; the
recipient keeps its rung (`Store.record_poll_retries`). A "too early" code (a hint's wait) likewise.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from itertools import groupby
from typing import Any

from campaigns.clock import utcnow
from campaigns.states import FINAL_RECIPIENT, RecipientState
from campaigns.store import DuePoll, RecipientUpdate
from workers import logs, metrics
from workers.deps import WorkerDeps
from workers.errors import ConfigurationError, ProviderError, TransientError
from workers.operations.backoff import poll_delay, status_retry_delay
from workers.settings import DispatchSettings
from workers.status import DeliveryStatus, StatusResult

log = logging.getLogger("workers.poll")

FINAL_FROM_STATUS: dict[DeliveryStatus, RecipientState] = {
    DeliveryStatus.DELIVERED: RecipientState.DELIVERED,
    DeliveryStatus.UNDELIVERED: RecipientState.UNDELIVERED,
    DeliveryStatus.FAILED: RecipientState.FAILED,
    DeliveryStatus.BLACKLISTED: RecipientState.BLACKLISTED,
    DeliveryStatus.EXPIRED: RecipientState.EXPIRED,
}


@dataclass(frozen=True)
class StatusHint:
    """What a provider's call-level status code says about every id it was asked for."""

    wait: float = 0.0  # ask again no earlier than this many seconds from now
    final: RecipientState | None = None  # the provider will never say more: this final state
    reason: str = ""


# (provider, raw code) -> hint. Source: shared/providers.md §3B "DeliveryResultCode" (Media Payamak's
# GetBatchDelivery): -5 "query at least 1 minute after sending -> retry"; -3 "one-week report window
# over -> mark expired". The client keeps a batch's call-level code as each id's raw code (and raises it,
# with retry_after, when every batch of the call failed). Any other code: the usual backoff.
STATUS_HINTS: dict[tuple[str, str], StatusHint] = {
    ("mediapayamak", "-5"): StatusHint(wait=60.0, reason="asked less than a minute after sending (code -5)"),
    ("mediapayamak", "-3"): StatusHint(
        final=RecipientState.EXPIRED, reason="the provider's one-week report window is over (code -3)"
    ),
}

# A claimed batch not recorded by then falls due again (a lost task message, a dead worker). Longer than
# a tick's worth of batches takes to go through the workers; shorter than the broker's visibility timeout.
CLAIM_LEASE = timedelta(seconds=300)
POLL_TICK_MAX = 50_000  # recipients one beat tick claims and publishes at most
# Recipients a tick claims and publishes at a time: what a worker holds of a tick at once. A tick's
# whole 50,000 (rows, DuePolls, messages) raised a worker's RSS by 30-45 MB for good (freed, the memory
# stays with the process), reached only once a campaign's backlog of due checks grew that large.
POLL_TICK_SLICE = 5_000
DEFAULT_STATUS_BATCH = 100


def status_update(
    due: DuePoll,
    result: StatusResult | None,
    now: datetime,
    intervals: Sequence[float],
    max_age: float,
    retry_after: float | None = None,
) -> RecipientUpdate:
    """The recipient's next state from one status answer (or none): pure."""
    status = result.status if result else DeliveryStatus.UNKNOWN
    code = result.raw_code if result else None
    cost = result.cost if result else None  # the provider's price for the message, where it says
    hint = STATUS_HINTS.get((due.provider, code or ""))
    if hint is not None and hint.final is not None:
        return RecipientUpdate(due.recipient_id, hint.final, None, code, hint.reason, cost=cost)
    if status in FINAL_FROM_STATUS:
        state = FINAL_FROM_STATUS[status]
        return RecipientUpdate(
            due.recipient_id,
            state,
            None,
            code,
            None,
            None,
            now if state is RecipientState.DELIVERED else None,
            cost=cost,
        )
    age = (now - due.sent_at).total_seconds() if due.sent_at else 0.0
    if age >= max_age:
        return RecipientUpdate(
            due.recipient_id,
            RecipientState.EXPIRED,
            None,
            code,
            f"no final delivery report within {max_age / 3600:g} h",
            cost=cost,
        )
    state = (
        RecipientState.SENT_TO_OPERATOR if status is DeliveryStatus.SENT_TO_OPERATOR else RecipientState.SENT
    )
    delay = max(poll_delay(due.polls + 1, intervals), retry_after or 0.0, hint.wait if hint else 0.0)
    return RecipientUpdate(
        due.recipient_id, state, None, code, None, now + timedelta(seconds=delay), cost=cost
    )


def batches_of(due: Sequence[DuePoll], max_batch: dict[str, int]) -> list[list[DuePoll]]:
    """Due recipients -> batches of one provider account, at most that provider's status batch: pure.

    `due` comes sorted by (provider, account, message id), so ids of one provider-side batch (Media
    Payamak's batchSmsId) stay together and are asked about in as few calls as possible.
    """
    out: list[list[DuePoll]] = []
    for (provider, _account), group in groupby(due, key=lambda d: (d.provider, d.account)):
        items = list(group)
        size = max(1, max_batch.get(provider, DEFAULT_STATUS_BATCH))
        out += [items[i : i + size] for i in range(0, len(items), size)]
    return out


def status_batch_sizes(deps: WorkerDeps, providers: set[str]) -> dict[str, int]:
    sizes: dict[str, int] = {}
    for provider in providers:
        try:
            sizes[provider] = deps.providers.get(provider).capabilities.max_status_batch
        except ConfigurationError:
            sizes[provider] = DEFAULT_STATUS_BATCH  # poll_batch records the failure per recipient
    return sizes


def plan_polls(
    deps: WorkerDeps, *, limit: int = 5000, now: datetime | None = None, lease: timedelta = CLAIM_LEASE
) -> list[list[DuePoll]]:
    """Claim the recipients due a check (committed, before any HTTP) and cut them into batches."""
    due = deps.store.claim_due_polls(limit, lease, now)
    return batches_of(due, status_batch_sizes(deps, {d.provider for d in due}))


@dataclass(frozen=True)
class Answers:
    """One status call's result for its batch: what to record as an answer (one rung up the ladder, or
    final), and who gets no answer this time (asked again at `retry_at`, same rung, `code` kept)."""

    updates: list[RecipientUpdate]
    retry: list[int]
    retry_at: datetime | None = None
    code: str | None = None


def answered(provider: str, result: StatusResult | None, failed_transiently: bool) -> bool:
    """Whether a status call said something about this recipient: pure.

    Not when the call failed transiently (a timeout, HTTP 5xx, a transient code) and gave nothing for
    it, nor when the provider's code only says "too early" (a `STATUS_HINTS` wait). Anything else,
    including "no news yet", is an answer and moves the recipient one rung up the ladder.
    """
    hint = STATUS_HINTS.get((provider, (result.raw_code if result else None) or ""))
    if hint is not None:
        return hint.final is not None or hint.wait <= 0
    unanswered = result is None or result.status is DeliveryStatus.UNKNOWN
    return not (failed_transiently and unanswered)


def unanswered_update(
    due: DuePoll, code: str | None, now: datetime, max_age: float
) -> RecipientUpdate | None:
    """A recipient without an answer this time: expired when past `max_age` (with the reason), else None
    (asked again soon, at the same rung): pure."""
    age = (now - due.sent_at).total_seconds() if due.sent_at else 0.0
    if age < max_age:
        return None
    reason = f"no final delivery report within {max_age / 3600:g} h"
    return RecipientUpdate(due.recipient_id, RecipientState.EXPIRED, None, code, reason)


def retry_in(
    provider: str, code: str | None, failures: int, settings: DispatchSettings, retry_after: float | None
) -> float:
    """Seconds until an unanswered recipient is asked again: pure.

    After `failures` transient failures in a row (0: the code only said "too early"): settings'
    status retry backoff, never later than the first poll interval; at least the provider's
    retry_after and its code's hint wait.
    """
    hint = STATUS_HINTS.get((provider, code or ""))
    delay = 0.0
    if failures > 0:
        cap = min(settings.status_retry_cap, settings.poll_intervals[0])
        delay = status_retry_delay(failures, base=settings.status_retry_base, cap=cap)
    return max(delay, retry_after or 0.0, hint.wait if hint else 0.0)


def ask(deps: WorkerDeps, batch: Sequence[DuePoll], now: datetime) -> Answers:
    """One status call for one batch (no DB transaction open) -> the answers and who to ask again soon."""
    with logs.bind(provider=batch[0].provider):
        return _ask(deps, batch, now)


def _ask(deps: WorkerDeps, batch: Sequence[DuePoll], now: datetime) -> Answers:
    settings = deps.settings
    provider, account = batch[0].provider, batch[0].account
    retry_after: float | None = None
    results: dict[str, StatusResult] = {}
    failed_transiently = False
    try:
        client = deps.providers.get(provider)
        results = {r.message_id: r for r in client.status([d.message_id for d in batch])}
    except (ProviderError, ConfigurationError) as exc:
        # A failed status call changes nothing but the time of the next look (and keeps its code).
        log.warning("status check at %s failed: %s", provider, exc)
        failed_transiently = isinstance(exc, TransientError)
        retry_after = getattr(exc, "retry_after", None)
        code = getattr(exc, "code", None)
        if code is not None:
            results = {d.message_id: StatusResult(d.message_id, DeliveryStatus.UNKNOWN, code) for d in batch}
    streak = f"{provider}:{account}"
    failures = deps.status_failures.failed(streak) if failed_transiently else 0
    if not failed_transiently:
        deps.status_failures.succeeded(streak)
    updates: list[RecipientUpdate] = []
    retry: list[int] = []
    codes: set[str | None] = set()
    for d in batch:
        result = results.get(d.message_id)
        if answered(provider, result, failed_transiently):
            updates.append(
                status_update(d, result, now, settings.poll_intervals, settings.poll_max_age, retry_after)
            )
            continue
        code = result.raw_code if result else None
        expired = unanswered_update(d, code, now, settings.poll_max_age)
        if expired is not None:
            updates.append(expired)
        else:
            retry.append(d.recipient_id)
            codes.add(code)
    count_answers(provider, batch, results, updates, now)
    if not retry:
        return Answers(updates, [])
    delay = max(retry_in(provider, c, failures, settings, retry_after) for c in codes)
    return Answers(
        updates, retry, now + timedelta(seconds=delay), next(iter(codes)) if len(codes) == 1 else None
    )


def count_answers(
    provider: str,
    batch: Sequence[DuePoll],
    results: dict[str, StatusResult],
    updates: Sequence[RecipientUpdate],
    now: datetime,
) -> None:
    """The metrics of one status call: final outcomes (one increment per state), the delivery reports
    among them (a final status the provider gave), and how long the delivered ones took."""
    finals = Counter(u.state for u in updates if u.state in FINAL_RECIPIENT)
    for state, n in finals.items():
        metrics.final(provider, state, n)
    reports = Counter(FINAL_FROM_STATUS[r.status] for r in results.values() if r.status in FINAL_FROM_STATUS)
    for state, n in reports.items():
        metrics.DELIVERY_REPORTS.labels(provider, state).inc(n)
    if reports.get(RecipientState.DELIVERED):
        latency = metrics.DELIVERY_LATENCY.labels(provider)
        for d in batch:
            r = results.get(d.message_id)
            if r is not None and r.status is DeliveryStatus.DELIVERED and d.sent_at is not None:
                latency.observe(max((now - d.sent_at).total_seconds(), 0.0))


def record(deps: WorkerDeps, answers: Answers, now: datetime | None = None) -> int:
    """Record one batch's answers (one set-based UPDATE) and its retries (one UPDATE); rows written."""
    written = deps.store.record_statuses(answers.updates, now)
    if answers.retry and answers.retry_at is not None:
        written += deps.store.record_poll_retries(answers.retry, answers.retry_at, answers.code, now)
    return written


def batch_message(batch: Sequence[DuePoll]) -> dict[str, Any]:
    """One claimed batch (of one provider account, as `batches_of` cuts them) as beat's poll task publishes
    it, JSON: {"provider", "account", "rows": [[recipient id, campaign id, message id, sent at in epoch
    seconds or None, polls so far], ...]}. About 40 bytes a recipient."""
    first = batch[0]
    rows = [
        [d.recipient_id, d.campaign_id, d.message_id, d.sent_at.timestamp() if d.sent_at else None, d.polls]
        for d in batch
    ]
    return {"provider": first.provider, "account": first.account, "rows": rows}


def batch_from_message(message: Mapping[str, Any]) -> list[DuePoll]:
    """`batch_message`'s inverse: the claimed recipients as DuePolls."""
    provider, account = str(message["provider"]), str(message["account"])
    return [
        DuePoll(
            int(rid),
            int(cid),
            provider,
            account,
            str(mid),
            None if at is None else datetime.fromtimestamp(float(at), UTC),
            int(polls),
        )
        for rid, cid, mid, at, polls in message["rows"]
    ]


def poll_batch(
    recipient_ids: Sequence[int],
    deps: WorkerDeps,
    now: datetime | None = None,
    *,
    claimed: Mapping[str, Any] | None = None,
) -> int:
    """Ask about one claimed batch and record it with one set-based UPDATE; returns how many were asked.

    `claimed` (`batch_message`): the batch as its claim read it, asked about without reading it again (a
    read by id cost as much database time per recipient as a third of the record, bench/poll.py). A
    duplicate message of a batch already recorded then asks the provider once more; its answers change no
    final recipient (the record writes only rows still awaiting a report). Without it (a message of an
    earlier version), the recipients still awaiting a report are read by id first.
    """
    batch = batch_from_message(claimed) if claimed else deps.store.polls_of(recipient_ids)
    if not batch:
        return 0  # already final (a duplicate task message), nothing to ask
    asked = 0
    for group in batches_of(batch, status_batch_sizes(deps, {d.provider for d in batch})):
        record(deps, ask(deps, group, now or utcnow()), now)
        asked += len(group)
    return asked


def poll_tick(
    deps: WorkerDeps,
    publish: Callable[[list[DuePoll]], object],
    *,
    limit: int = POLL_TICK_MAX,
    slice_size: int = POLL_TICK_SLICE,
    now: datetime | None = None,
) -> int:
    """Beat's tick: claim up to `limit` due recipients, `slice_size` at a time, and `publish` each slice's
    batches (`plan_polls`) before claiming the next, so no more than a slice is held in memory at once.
    Stops at the first slice that finds fewer than it asked for; returns how many were claimed."""
    claimed = 0
    while claimed < limit:
        want = min(slice_size, limit - claimed)
        got = 0
        for batch in plan_polls(deps, limit=want, now=now):
            publish(batch)
            got += len(batch)
        claimed += got
        if got < want:
            break
    return claimed


def poll_once(deps: WorkerDeps, *, limit: int = 5000, now: datetime | None = None) -> int:
    """Embedded mode: claim what is due and poll every batch in this process; returns how many were asked."""
    asked = 0
    for batch in plan_polls(deps, limit=limit, now=now):
        record(deps, ask(deps, batch, now or utcnow()), now)
        asked += len(batch)
    return asked
