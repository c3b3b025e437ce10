"""What a send reply means for a chunk's recipients and the metrics: pure functions over the claimed chunk
and the provider client's results (`workers.status.SendResult`), used by `send.send_chunk`."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta

from campaigns.states import RecipientState
from campaigns.store import ClaimedChunk, RecipientUpdate
from campaigns.text import count_parts
from workers import metrics
from workers.status import DeliveryStatus, SendOutcome, SendResult


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
