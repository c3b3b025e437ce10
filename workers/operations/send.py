"""send_chunk: claim, rate-limit, call the provider, record (GOV.UK Notify's send_to_providers, with a claim).

Called alike by the Celery task and the local runner. The claim is a committed compare-and-set,
so a duplicate or redelivered message finds the chunk taken and does nothing; no database
transaction is open while the provider is being called.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum

from campaigns.clock import utcnow
from campaigns.records import RetryVerdict
from campaigns.states import RecipientState
from campaigns.store import ChunkPeek, ClaimedChunk, RecipientUpdate
from campaigns.text import count_parts
from campaigns.windows import parse_window
from workers import logs, metrics
from workers.deps import WorkerDeps
from workers.errors import (
    AccountError,
    AmbiguousSendError,
    ConfigurationError,
    RecipientRefusedError,
    RequestError,
    TransientError,
)
from workers.operations import failover
from workers.operations.backoff import poll_delay, retry_delay
from workers.operations.lease import lease_for, quick_terms, stalled_since_claim
from workers.providers.base import ProviderClient
from workers.status import DeliveryStatus, SendBatch, SendOutcome, SendResult

log = logging.getLogger("workers.send")

# Takes a chunk's record (a call that writes it) to run later, before the message is done with.
RecordLater = Callable[[Callable[[], object]], None]


class OutcomeKind(StrEnum):
    """What one send_chunk call did with its chunk."""

    SKIPPED = "skipped"  # not claimable (a duplicate or stale message): nothing done
    HELD = "held"  # outside the send window: nothing claimed, look again when it opens
    ACCEPTED = "accepted"  # the reply is recorded (every recipient has its verdict)
    REQUEUED = "requeued"  # part of the chunk did not go out: queued again for it
    RETRY = "retry"  # transient failure: backs off
    UNKNOWN = "unknown"  # ambiguous send: to be reconciled
    FAILED = "failed"  # the request is wrong, or the attempts are used up
    PAUSED = "paused"  # an account or configuration error paused the campaign
    THROTTLED = "throttled"  # the rate limit says later (maybe with its slot booked)
    SPLIT = "split"  # a number was refused in a multi-number call: halved and queued again
    REROUTED = "rerouted"  # moved to another provider of the campaign's route (`spawned` chunks)


@dataclass(frozen=True)
class Outcome:
    """What became of one send_chunk call; `requeue_in` asks the caller to try again that much later."""

    kind: OutcomeKind
    chunk_id: int
    attempt: int | None = None
    requeue_in: float | None = None
    detail: str = ""
    reserved: bool = False  # throttled with its rate-limit slot booked: send then without asking again
    spawned: tuple[int, ...] = ()  # new chunks (a failover move) the caller publishes now


def updates_from_results(
    chunk: ClaimedChunk, results: Sequence[SendResult], now: datetime, first_poll_in: float
) -> tuple[list[RecipientUpdate], bool]:
    """Per-recipient facts from a send reply, and whether some recipients are known not to have gone out.

    Every message of the chunk gets exactly one verdict: a message the client said nothing about
    is held as `unknown` (it may have gone out), never silently left pending.
    """
    messages = chunk.messages
    if len(results) == len(messages) and all(
        r.recipient_id == m.recipient_id for r, m in zip(results, messages, strict=True)
    ):
        in_order: Sequence[SendResult | None] = results  # the usual reply: one result per message, in order
    else:
        by_id = {r.recipient_id: r for r in results}
        in_order = [by_id.get(m.recipient_id) for m in messages]
    next_poll_at = now + timedelta(seconds=first_poll_in)
    sent, accepted = RecipientState.SENT, SendOutcome.ACCEPTED
    updates: list[RecipientUpdate] = []
    not_sent = False
    for msg, res in zip(messages, in_order, strict=True):
        if res is not None and res.outcome is accepted:
            updates.append(
                RecipientUpdate(
                    msg.recipient_id, sent, res.message_id, res.raw_code, None, next_poll_at, None, res.cost
                )
            )
        elif res is None or res.outcome is SendOutcome.UNKNOWN:
            reason = (res.error if res else None) or "the provider's reply said nothing about this number"
            updates.append(
                RecipientUpdate(
                    msg.recipient_id,
                    RecipientState.UNKNOWN,
                    res.message_id if res else None,
                    res.raw_code if res else None,
                    reason,
                )
            )
        elif res.outcome is SendOutcome.REFUSED:
            state = (
                RecipientState.BLACKLISTED
                if res.status is DeliveryStatus.BLACKLISTED
                else RecipientState.FAILED
            )
            updates.append(
                RecipientUpdate(
                    msg.recipient_id,
                    state,
                    res.message_id,
                    res.raw_code,
                    res.error or "refused by the provider",
                )
            )
        else:  # NOT_SENT: stays pending; the chunk goes back to the queue for it
            not_sent = True
    return updates, not_sent


def batch_for(chunk: ClaimedChunk) -> SendBatch:
    """The provider's batch of a claimed chunk: its messages as they are (`Message` is the store's `OutMessage`)."""
    return SendBatch(chunk.messages, chunk.sender)


def health_failure(deps: WorkerDeps, client: ProviderClient, exc: Exception) -> bool:
    """One more failure in a row at the client's account; True when its circuit is open now."""
    s = deps.settings
    deps.circuits_touched.add(client.settings.account_key)
    return deps.store.circuit_failure(
        client.settings.account_key, client.name, str(exc), s.circuit_failures, s.circuit_cooldown
    )


def routed(decision: failover.Decision, chunk_id: int, attempt: int | None) -> Outcome:
    """The outcome of a failover decision that did not send."""
    if decision.paused:
        return Outcome(OutcomeKind.PAUSED, chunk_id, attempt, detail=decision.detail)
    if decision.moved:
        return Outcome(
            OutcomeKind.REROUTED, chunk_id, attempt, detail=decision.detail, spawned=decision.spawned
        )
    if decision.later is not None:
        return Outcome(OutcomeKind.HELD, chunk_id, attempt, requeue_in=decision.later, detail=decision.detail)
    return Outcome(OutcomeKind.SKIPPED, chunk_id, attempt, detail=decision.detail)


def count_sent(provider: str, chunk: ClaimedChunk, results: Sequence[SendResult]) -> None:
    """The metrics of one send reply: accepted recipients, their parts and reported cost, refusals (final).
    A handful of increments per chunk; parts are counted per message only when part of it went out."""
    outcomes = [r.outcome for r in results]
    n_accepted = outcomes.count(SendOutcome.ACCEPTED)
    if n_accepted == len(results):  # the usual reply: all of them
        accepted: Sequence[SendResult] = results
    else:
        accepted = [r for r in results if r.outcome is SendOutcome.ACCEPTED]
    if n_accepted == len(chunk.messages):
        parts = chunk.parts
    else:
        ids = {r.recipient_id for r in accepted}
        parts = sum(count_parts(m.text) for m in chunk.messages if m.recipient_id in ids)
    metrics.sent(provider, n_accepted, parts, sum(r.cost or 0 for r in accepted))
    if SendOutcome.REFUSED in outcomes:
        refused = [r for r in results if r.outcome is SendOutcome.REFUSED]
        blacklisted = sum(r.status is DeliveryStatus.BLACKLISTED for r in refused)
        metrics.final(provider, RecipientState.BLACKLISTED, blacklisted)
        metrics.final(provider, RecipientState.FAILED, len(refused) - blacklisted)


def send_chunk(
    chunk_id: int,
    attempt: int | None,
    deps: WorkerDeps,
    *,
    reserved: bool = False,
    reserve_within: float = 0.0,
    record_later: RecordLater | None = None,
) -> Outcome:
    """Send one chunk if this call can claim it.

    `reserve_within`: a rate-limit wait up to that long is booked, and the outcome says `reserved`;
    the caller then calls again after `requeue_in` with `reserved=True`, which skips the limiter.
    `record_later`: a chunk every recipient of which was accepted hands its record to it (it runs it
    beside the next chunk's call, `send_many.send_chunks`) and the outcome is ACCEPTED at once; any other
    outcome is recorded before this returns. Counted in `smsdispatch_chunks_total{outcome}`.
    """
    with logs.bind(chunk=chunk_id):
        outcome = _send_chunk(
            chunk_id, attempt, deps, reserved=reserved, reserve_within=reserve_within, later=record_later
        )
    metrics.CHUNKS.labels(outcome.kind).inc()
    return outcome


def _send_chunk(
    chunk_id: int,
    attempt: int | None,
    deps: WorkerDeps,
    *,
    reserved: bool,
    reserve_within: float,
    later: RecordLater | None,
) -> Outcome:
    store = deps.store
    peek: ChunkPeek | None = None
    if attempt is not None:
        # One statement peeks and, when the chunk needs nothing the peek is for (window, route, daily cap,
        # rate limit), claims (campaigns/store/quick.py); otherwise it is the peek, and the usual path goes on.
        providers, lease = quick_terms(deps)
        if providers:
            got = store.claim_quick(chunk_id, attempt, lease, providers)
            if got is None:
                return Outcome(OutcomeKind.SKIPPED, chunk_id, detail="no such chunk")
            if isinstance(got, ClaimedChunk):
                logs.tag(provider=got.provider, campaign=got.campaign_id)
                return _deliver(deps, got, deps.providers.get(got.provider), (), later)
            peek = got
    if peek is None:
        peek = store.chunk_cost(chunk_id, attempt)
    if peek is None:
        return Outcome(OutcomeKind.SKIPPED, chunk_id, detail="no such chunk")
    provider, parts, window, claimable = peek.provider, peek.parts, peek.window, peek.claimable
    logs.tag(provider=provider)
    route = peek.route if len(peek.route) > 1 else ()
    if not claimable:  # a duplicate or stale message: drop it before it spends rate-limit budget
        return Outcome(
            OutcomeKind.SKIPPED,
            chunk_id,
            attempt,
            detail="claimed elsewhere, already sent, not due, or campaign not running",
        )
    if window:
        wait_for_window = parse_window(window).seconds_until_open(utcnow())
        if wait_for_window > 0:  # outside the send window: nothing claimed, look again when it opens
            return Outcome(
                OutcomeKind.HELD,
                chunk_id,
                attempt,
                requeue_in=wait_for_window,
                detail=f"outside the send window {window}",
            )
    if route:  # failover: the circuit is checked before anything is claimed or called
        decision = failover.before_claim(deps, chunk_id, peek.attempt, provider, route)
        if not decision.proceed:
            return routed(decision, chunk_id, attempt)
    try:
        client = deps.providers.get(provider)
    except ConfigurationError as exc:
        # Cannot even build the client: pause rather than fail, the user can fix the setting and resume.
        store.pause_campaign_of_chunk(chunk_id, str(exc))
        return Outcome(OutcomeKind.PAUSED, chunk_id, detail=str(exc))
    if not reserved:
        wait = deps.limiter.acquire(
            client.settings.account_key, max(parts, 1), client.settings.rate, reserve_within=reserve_within
        )
        if wait > 0:
            metrics.RATE_LIMIT_WAIT.labels(client.name).inc(wait)
            if wait > reserve_within > 0:  # not booked, and too long for a publisher to hold: no message
                # waits in line for it, so housekeeping publishes it once the wait can be booked
                store.defer_queued(chunk_id, utcnow() + timedelta(seconds=wait - reserve_within))
            return Outcome(
                OutcomeKind.THROTTLED, chunk_id, attempt, requeue_in=wait, reserved=wait <= reserve_within
            )

    chunk = store.claim_chunk(
        chunk_id, attempt, lease_for(deps, (client.settings.connect_timeout, client.settings.read_timeout))
    )
    if chunk is None:
        return Outcome(
            OutcomeKind.SKIPPED,
            chunk_id,
            attempt,
            detail="claimed elsewhere, already sent, not due, or campaign not running",
        )
    logs.tag(campaign=chunk.campaign_id)
    return _deliver(deps, chunk, client, route, later)


def _deliver(
    deps: WorkerDeps,
    chunk: ClaimedChunk,
    client: ProviderClient,
    route: tuple[str, ...],
    later: RecordLater | None = None,
) -> Outcome:
    """A claimed chunk: call the provider and record what it said (or how the call failed)."""
    store, settings, chunk_id = deps.store, deps.settings, chunk.chunk_id
    if not chunk.messages:
        store.record_send(chunk, [], requeue=False)
        return Outcome(OutcomeKind.ACCEPTED, chunk_id, chunk.attempt, detail="nothing left to send")
    late = stalled_since_claim(chunk, settings.lease_margin)
    if late is not None:
        # The thread stalled between its claim and its call (a paused VM, swapping, SIGSTOP) for longer than
        # the lease's margin: the call could now outlive the lease, which may even have run out already, the
        # chunk reconciled as not sent and given to another worker. Nothing has gone out: the attempt is
        # handed back (a compare-and-set on this attempt, a no-op for a chunk taken over) and never sent late.
        store.chunk_retry(chunk, late, 0.0, max_attempts=chunk.attempt + 1)
        log.warning("chunk %s: %s", chunk_id, late)
        return Outcome(OutcomeKind.RETRY, chunk_id, chunk.attempt, requeue_in=0.0, detail=late)

    try:
        results = client.send(batch_for(chunk))
    except RecipientRefusedError as exc:
        new = store.split_chunk(chunk, str(exc))
        return Outcome(
            OutcomeKind.SPLIT, chunk_id, chunk.attempt, requeue_in=0.0, detail=f"split off chunk {new}: {exc}"
        )
    except TransientError as exc:
        opened = health_failure(deps, client, exc)
        if route and (opened or chunk.attempt >= settings.max_attempts):
            moved = failover.after_failure(
                deps, chunk, route, str(exc), account_level=False, forward_only=not opened
            )
            if moved is not None:
                return routed(moved, chunk_id, chunk.attempt)
        delay = retry_delay(
            chunk.attempt, base=settings.backoff_base, cap=settings.backoff_cap, retry_after=exc.retry_after
        )
        verdict = store.chunk_retry(chunk, str(exc), delay, settings.max_attempts)
        if verdict == RetryVerdict.FAILED:
            metrics.final(client.name, RecipientState.FAILED, len(chunk.messages))
            return Outcome(OutcomeKind.FAILED, chunk_id, chunk.attempt, detail=str(exc))
        return Outcome(OutcomeKind.RETRY, chunk_id, chunk.attempt, requeue_in=delay, detail=str(exc))
    except AmbiguousSendError as exc:
        health_failure(deps, client, exc)
        store.chunk_unknown(chunk, str(exc))
        log.warning("chunk %s: ambiguous send, to be reconciled: %s", chunk_id, exc)
        return Outcome(OutcomeKind.UNKNOWN, chunk_id, chunk.attempt, detail=str(exc))
    except AccountError as exc:
        deps.circuits_touched.add(client.settings.account_key)
        store.circuit_open(client.settings.account_key, client.name, str(exc), settings.circuit_cooldown)
        if route:
            moved = failover.after_failure(deps, chunk, route, str(exc), account_level=True)
            if moved is not None:
                return routed(moved, chunk_id, chunk.attempt)
        store.pause_for_account(chunk, str(exc))
        log.error("chunk %s: account-level error, campaign paused: %s", chunk_id, exc)
        return Outcome(OutcomeKind.PAUSED, chunk_id, chunk.attempt, detail=str(exc))
    except RequestError as exc:
        if store.chunk_failed(chunk, str(exc)):
            metrics.final(client.name, RecipientState.FAILED, len(chunk.messages))
        return Outcome(OutcomeKind.FAILED, chunk_id, chunk.attempt, detail=str(exc))

    count_sent(client.name, chunk, results)
    account = client.settings.account_key
    if route or account in deps.circuits_touched:  # one write a chunk only where a circuit may be open
        store.circuit_success(account, chunk.sending_since)
        deps.circuits_touched.discard(account)
    now = utcnow()
    updates, not_sent = updates_from_results(chunk, results, now, poll_delay(0, settings.poll_intervals))
    if later is not None and not not_sent:  # nothing to re-publish: the record may run beside the next call
        later(lambda: store.record_send(chunk, updates, requeue=False, now=now))
        return Outcome(OutcomeKind.ACCEPTED, chunk_id, chunk.attempt)
    store.record_send(chunk, updates, requeue=not_sent, now=now)
    if not_sent:
        return Outcome(
            OutcomeKind.REQUEUED,
            chunk_id,
            chunk.attempt,
            requeue_in=0.0,
            detail="part of the chunk did not go out",
        )
    return Outcome(OutcomeKind.ACCEPTED, chunk_id, chunk.attempt)
