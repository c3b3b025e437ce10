"""Publishing chunks to the broker: only after the commit that queued them, and again by the sweep.

The database says what is due; the broker only rings the bell. A duplicate publish is harmless
(the claim turns it into a no-op), a lost one is found by the next sweep.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from campaigns.store import Store, utcnow
from campaigns.windows import closed_windows
from workers.settings import DispatchSettings


def publish_campaign(store: Store, campaign_id: int, task: Any) -> int:
    """Publish every claimable chunk of a campaign whose rows are committed (none while its window is closed)."""
    window = store.running_windows().get(campaign_id)
    if window and closed_windows({campaign_id: window}, utcnow()):
        return 0  # the sweep publishes them once the window opens
    published, last = 0, 0
    while batch := store.claimable_chunks(limit=1000, campaign_id=campaign_id, after_id=last):
        for chunk_id, attempt in batch:
            task.apply_async((chunk_id, attempt))
        published += len(batch)
        last = batch[-1][0]
    return published


def publish_due(store: Store, settings: DispatchSettings, task: Any, limit: int = 5000) -> int:
    """Re-publish queued chunks older than the grace period and retries that are due.

    Campaigns outside their send window are skipped: their chunks stay queued in the database (no
    broker message bounces every sweep) and are published by the first sweep after the window opens.
    """
    now = utcnow()
    closed = closed_windows(store.running_windows(), now)
    due = store.stale_chunks(now - timedelta(seconds=settings.queued_grace), now, limit, closed)
    for chunk_id, attempt in due:
        task.apply_async((chunk_id, attempt))
    return len(due)
