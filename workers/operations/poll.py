"""poll_once: ask the providers for the delivery status of every recipient that is due a check.

Due recipients are grouped by provider, asked in the provider's batch size, and recorded with one
bulk update. Checks back off (settings.poll_intervals) and stop at a final state; a recipient with
no final report after settings.poll_max_age becomes `expired`.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Sequence
from datetime import datetime, timedelta

from campaigns.states import RecipientState
from campaigns.store import DuePoll, RecipientUpdate, utcnow
from workers.deps import WorkerDeps
from workers.errors import ConfigurationError, ProviderError
from workers.operations.backoff import poll_delay
from workers.status import DeliveryStatus, StatusResult

log = logging.getLogger("workers.poll")

FINAL_FROM_STATUS: dict[DeliveryStatus, RecipientState] = {
    DeliveryStatus.DELIVERED: RecipientState.DELIVERED,
    DeliveryStatus.UNDELIVERED: RecipientState.UNDELIVERED,
    DeliveryStatus.FAILED: RecipientState.FAILED,
    DeliveryStatus.BLACKLISTED: RecipientState.BLACKLISTED,
    DeliveryStatus.EXPIRED: RecipientState.EXPIRED,
}


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
        )
    age = (now - due.sent_at).total_seconds() if due.sent_at else 0.0
    if age >= max_age:
        return RecipientUpdate(
            due.recipient_id,
            RecipientState.EXPIRED,
            None,
            code,
            f"no final delivery report within {max_age / 3600:g} h",
        )
    state = (
        RecipientState.SENT_TO_OPERATOR if status is DeliveryStatus.SENT_TO_OPERATOR else RecipientState.SENT
    )
    delay = max(poll_delay(due.polls + 1, intervals), retry_after or 0.0)
    return RecipientUpdate(due.recipient_id, state, None, code, None, now + timedelta(seconds=delay))


def poll_once(deps: WorkerDeps, *, limit: int = 5000, now: datetime | None = None) -> int:
    """One pass over the recipients due a check; returns how many were looked at."""
    now = now or utcnow()
    due = deps.store.due_polls(limit, now)
    by_provider: dict[str, list[DuePoll]] = defaultdict(list)
    for d in due:
        by_provider[d.provider].append(d)
    settings = deps.settings
    updates: list[RecipientUpdate] = []
    for provider, items in by_provider.items():
        retry_after: float | None = None
        results: dict[str, StatusResult] = {}
        try:
            client = deps.providers.get(provider)
            results = {r.message_id: r for r in client.status([d.message_id for d in items])}
        except (ProviderError, ConfigurationError) as exc:
            # A failed status call changes nothing but the time of the next look.
            log.warning("status check at %s failed: %s", provider, exc)
            retry_after = getattr(exc, "retry_after", None)
        for d in items:
            updates.append(
                status_update(
                    d,
                    results.get(d.message_id),
                    now,
                    settings.poll_intervals,
                    settings.poll_max_age,
                    retry_after,
                )
            )
    deps.store.record_statuses(updates, now)
    return len(due)
