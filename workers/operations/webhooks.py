"""Delivering the webhook outbox (campaigns.store.webhooks): beat's own `smsdispatch.webhooks` task in
distributed mode, a thread of its own in `serve` and an embedded `web`, and the housekeeping pass of the
other embedded runners (`send --wait`, `poll`). Never inside the loop that starts and polls campaigns: a
receiver that never answers holds up its own deliveries only. The due batch is POSTed in parallel, so a
pass takes one TIMEOUT at most, however many receivers hang.

Each due row is leased, POSTed with the campaign's status document (`workers.statusdoc`, what `status
--json` prints) under `{"event", "reason", "delivery", "at", "status"}`, signed (workers/webhooks.py), and
recorded: `delivered` on a 2xx answer; otherwise tried again after `webhook_delay(attempts)` until a day
has passed since the change, then `given_up` with the last error. Redirects are not followed. A URL whose
host now resolves to an address that is not public (unless SMSDISPATCH_WEBHOOK_ALLOW_HOSTS lists it) is
not called: the delivery fails with the reason (workers/webhook_targets.py), and so does a connection
that reaches such an address although the name resolved to a public one just before.
"""

from __future__ import annotations

import json
import logging
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta

import requests

from campaigns.clock import utcnow
from campaigns.store import webhooks as outbox
from workers.deps import WorkerDeps
from workers.statusdoc import read_status
from workers.webhook_targets import TargetRefused, check_target, public_session, refused_peer
from workers.webhooks import (
    DELIVERY_HEADER,
    EVENT_HEADER,
    SIGNATURE_HEADER,
    TIMESTAMP_HEADER,
    key_secret,
    sign,
)

log = logging.getLogger("workers.webhooks")
GIVE_UP_AFTER = timedelta(days=1)
DELAYS = (10.0, 30.0, 60.0, 300.0, 900.0, 1800.0, 3600.0)  # seconds; then hourly until the day is over
TIMEOUT = (3.05, 10.0)  # connect, read (seconds)
BATCH = 20  # deliveries per pass, POSTed in parallel (a pass waits one TIMEOUT at most)


def webhook_delay(attempts: int) -> float:
    """Seconds before the next try after `attempts` failed ones (>= 1): 10 s, 30 s, 1, 5, 15, 30 min, then 1 h."""
    return DELAYS[min(max(attempts, 1), len(DELAYS)) - 1]


def body_of(deps: WorkerDeps, delivery: outbox.Delivery) -> bytes:
    """The POST's JSON body: the change and the campaign's status now (None if it is gone)."""
    now = utcnow()
    found = read_status(deps.store, delivery.campaign_id, now, distributed=bool(deps.settings.broker_url))
    doc = {
        "event": delivery.event,
        "campaign": delivery.campaign_id,
        "reason": delivery.reason,
        "delivery": delivery.id,
        "at": delivery.created_at.isoformat(),
        "status": found.as_json() if found is not None else None,
    }
    return json.dumps(doc, ensure_ascii=False, default=str).encode()


def deliver_due(deps: WorkerDeps, now: datetime | None = None, *, limit: int = BATCH) -> int:
    """POST the due webhooks (at most `limit`); returns how many were delivered. Never raises for a
    receiver's fault (it is recorded); a database error goes up to the housekeeping pass."""
    now = now or utcnow()
    engine = deps.store.engine
    with engine.begin() as conn:
        due = outbox.claim_due(conn, now, now + timedelta(seconds=60), limit)
    if not due:
        return 0
    with ThreadPoolExecutor(len(due), thread_name_prefix="webhook") as pool:
        errors = list(pool.map(lambda d: _post(deps, d), due))
    delivered = 0
    for delivery, error in zip(due, errors, strict=True):
        done = utcnow()
        with engine.begin() as conn:
            if error is None:
                outbox.finish(conn, delivery.id, outbox.DELIVERED, done, None)
                delivered += 1
            elif done - delivery.created_at >= GIVE_UP_AFTER:
                outbox.finish(conn, delivery.id, outbox.GIVEN_UP, done, error)
                log.warning(
                    "webhook %s of campaign %s given up: %s", delivery.id, delivery.campaign_id, error
                )
            else:
                at = done + timedelta(seconds=webhook_delay(delivery.attempts + 1))
                outbox.retry(conn, delivery.id, at, error)
    return delivered


def _post(deps: WorkerDeps, delivery: outbox.Delivery) -> str | None:
    """One POST; None when the receiver took it (2xx), else the error in one line (no secret in it)."""
    secret = deps.settings.webhook_secret.reveal() if deps.settings.webhook_secret else ""
    if not secret:
        return "SMSDISPATCH_WEBHOOK_SECRET is not set where housekeeping runs; set it to sign webhooks"
    allowed = deps.settings.webhook_allow_hosts
    try:
        check_target(delivery.url, allowed)
    except TargetRefused as exc:
        return f"refused: {exc}"
    body = body_of(deps, delivery)
    stamp = int(time.time())
    headers = {
        "Content-Type": "application/json",
        "User-Agent": "smsdispatch-webhook",
        TIMESTAMP_HEADER: str(stamp),
        SIGNATURE_HEADER: sign(key_secret(secret, delivery.key_id), stamp, body),
        EVENT_HEADER: delivery.event,
        DELIVERY_HEADER: str(delivery.id),
    }
    try:
        with public_session(delivery.url, allowed) as session:
            answer = session.post(
                delivery.url, data=body, headers=headers, timeout=TIMEOUT, allow_redirects=False
            )
    except requests.RequestException as exc:
        peer = refused_peer(exc)
        if peer is not None:
            return f"refused: {peer.line}"
        return f"{type(exc).__name__}: could not reach the receiver"
    if 200 <= answer.status_code < 300:
        return None
    return f"HTTP {answer.status_code}"
