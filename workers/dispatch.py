"""Publishing chunks to the broker: only after the commit that queued them, and again by the sweep.

The database says what is due; the broker only rings the bell. A duplicate publish is harmless
(the claim turns it into a no-op), a lost one is found by the next sweep.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from campaigns.store import Store, utcnow
from workers.settings import DispatchSettings


def publish_campaign(store: Store, campaign_id: int, task: Any) -> int:
    """Publish every claimable chunk of a campaign whose rows are committed."""
    published, last = 0, 0
    while batch := store.claimable_chunks(limit=1000, campaign_id=campaign_id, after_id=last):
        for chunk_id, attempt in batch:
            task.apply_async((chunk_id, attempt))
        published += len(batch)
        last = batch[-1][0]
    return published


def publish_due(store: Store, settings: DispatchSettings, task: Any, limit: int = 5000) -> int:
    """Re-publish queued chunks older than the grace period and retries that are due."""
    now = utcnow()
    due = store.stale_chunks(now - timedelta(seconds=settings.queued_grace), now, limit)
    for chunk_id, attempt in due:
        task.apply_async((chunk_id, attempt))
    return len(due)
