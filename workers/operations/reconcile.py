"""reconcile_chunk: find out whether a chunk in `unknown` went out, before anything is sent again.

The provider is asked (Ghasedak by our checkids; Media Payamak and Amoot through their lists of
sent messages). Found messages are recorded as sent; if every remaining one is known not sent, the
chunk is queued again for just those. Where the provider cannot be asked, or cannot tell within
settings.reconcile_max_age, the campaign's policy decides: `hold` (default) marks them `unknown`
with the reason, `resend` queues them again. An answer the client could not read (a sent-box row
without a number, a lookup without its list) is "cannot tell", never "not sent": the clients answer
UNKNOWN for every message such a row could be (workers/providers/evidence.py), so the chunk waits here
and the policy's reason names what was missing.
"""

from __future__ import annotations

import logging
from collections import Counter
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum

from campaigns.clock import utcnow
from campaigns.states import OnUnknown, RecipientState
from campaigns.store import ClaimedChunk, RecipientUpdate
from campaigns.text import count_parts
from workers import logs, metrics
from workers.deps import WorkerDeps
from workers.errors import ConfigurationError, ProviderError
from workers.operations.backoff import poll_delay
from workers.operations.send import batch_for
from workers.status import SendOutcome

log = logging.getLogger("workers.reconcile")


class ReconcileKind(StrEnum):
    """What one reconciliation of an `unknown` chunk concluded."""

    FOUND = "found"  # the provider has them: recorded as sent (the rest, known not sent, queued again)
    REQUEUED = "requeued"  # known not sent (or resent by policy): queued again
    HELD = "held"  # the policy `hold`: recipients marked `unknown` with the reason
    WAITING = "waiting"  # the provider cannot tell yet: asked again later
    NOTHING = "nothing"  # nothing left to decide (no pending recipient, or no longer unknown)


@dataclass(frozen=True)
class Reconciled:
    kind: ReconcileKind
    chunk_id: int
    found: int = 0
    detail: str = ""


def apply_policy(deps: WorkerDeps, chunk: ClaimedChunk, reason: str) -> Reconciled:
    """The campaign's `--on-unknown` policy, for the chunk as reconciliation loaded it (the store acts
    only if it is still that `unknown` chunk: a duplicate reconcile message changes nothing)."""
    if chunk.on_unknown == OnUnknown.RESEND:
        if not deps.store.resend_unknown(chunk, f"resent by policy: {reason}"):
            return Reconciled(ReconcileKind.NOTHING, chunk.chunk_id, detail="no longer unknown")
        return Reconciled(ReconcileKind.REQUEUED, chunk.chunk_id, detail=reason)
    held = deps.store.hold_unknown(chunk, reason)
    if not held:  # another reconciliation decided first: its verdict, not ours, is counted
        return Reconciled(ReconcileKind.NOTHING, chunk.chunk_id, detail="no longer unknown")
    metrics.final(chunk.provider, RecipientState.UNKNOWN, held)
    return Reconciled(
        ReconcileKind.HELD, chunk.chunk_id, detail=f"{held} recipients held as unknown: {reason}"
    )


def reconcile_chunk(chunk_id: int, deps: WorkerDeps, now: datetime | None = None) -> Reconciled:
    """Ask the provider about an `unknown` chunk's pending recipients and record what it says (the
    module docstring); returns the verdict, counted in `smsdispatch_reconciliations_total{verdict}`. A
    failed call is logged and decides nothing (`waiting`). Two processes may reconcile the same chunk at
    once: only the one whose write changed rows counts its verdict and the recipients it found; the other
    finds the chunk no longer unknown (`nothing`)."""
    with logs.bind(chunk=chunk_id):
        verdict = _reconcile_chunk(chunk_id, deps, now)
    metrics.RECONCILIATIONS.labels(verdict.kind).inc()
    return verdict


def _reconcile_chunk(chunk_id: int, deps: WorkerDeps, now: datetime | None) -> Reconciled:
    now = now or utcnow()
    chunk = deps.store.load_chunk(chunk_id)
    logs.tag(campaign=chunk.campaign_id, provider=chunk.provider)
    if not chunk.messages:
        deps.store.record_reconciled(chunk, [], requeue=False, now=now)
        return Reconciled(ReconcileKind.NOTHING, chunk_id)
    try:
        client = deps.providers.get(chunk.provider)
    except ConfigurationError as exc:
        return Reconciled(ReconcileKind.WAITING, chunk_id, detail=str(exc))
    if client.capabilities.reconcile == "none":
        return apply_policy(
            deps,
            chunk,
            f"{chunk.provider} offers no way to ask whether an interrupted send went out",
        )
    # The moment our send began: clients measure their "not found means not sent" grace from it,
    # and those that search by time widen their own window for clock differences.
    since = chunk.sending_since or now
    silent = "no answer about it"
    try:
        results = client.reconcile(batch_for(chunk), since)
    except ProviderError as exc:
        log.warning("chunk %s: reconciliation call failed: %s", chunk_id, exc)
        results, silent = [], f"the last call failed: {exc}"
    by_id = {r.recipient_id: r for r in results}
    updates: list[RecipientUpdate] = []
    undecided = parts = 0
    why: Counter[str] = Counter()  # what the undecided results say
    for msg in chunk.messages:
        res = by_id.get(msg.recipient_id)
        if res is not None and res.outcome is SendOutcome.ACCEPTED:
            next_poll = now + timedelta(seconds=poll_delay(0, deps.settings.poll_intervals))
            updates.append(
                RecipientUpdate(
                    msg.recipient_id,
                    RecipientState.SENT,
                    res.message_id,
                    res.raw_code,
                    None,
                    next_poll,
                    cost=res.cost,
                )
            )
            parts += count_parts(msg.text)
        elif res is None or res.outcome is SendOutcome.UNKNOWN:
            undecided += 1
            why[(res.error if res is not None else None) or silent] += 1
    recorded = deps.store.record_reconciled(chunk, updates, requeue=undecided == 0, now=now)
    if not recorded.current:  # reconciled meanwhile (by another process, or by its send's late reply)
        return Reconciled(ReconcileKind.NOTHING, chunk_id, detail="no longer unknown")
    _count_found(chunk.provider, updates, recorded.found, parts)
    if undecided == 0:
        found = ReconcileKind.FOUND if recorded.found else ReconcileKind.REQUEUED
        return Reconciled(found, chunk_id, recorded.found)
    age = (now - chunk.sending_since).total_seconds() if chunk.sending_since else 0.0
    if age >= deps.settings.reconcile_max_age:
        said = why.most_common(1)[0][0]
        return apply_policy(
            deps,
            chunk,
            f"{chunk.provider} could not say within {deps.settings.reconcile_max_age:g} s whether it was sent"
            f" ({said})",
        )
    return Reconciled(ReconcileKind.WAITING, chunk_id, recorded.found, detail=f"{undecided} still undecided")


def _count_found(provider: str, updates: list[RecipientUpdate], found: int, parts: int) -> None:
    """The provider had them: accepted, though the send that took them was not counted (it was ambiguous).
    Counts the `found` rows this process wrote, not what it was told: where some were already recorded
    (the send's late reply), their parts and cost in proportion."""
    if found <= 0 or not updates:
        return
    share = found / len(updates)
    metrics.sent(provider, found, round(parts * share), sum(u.cost or 0 for u in updates) * share)
