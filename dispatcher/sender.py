"""The seam between a campaign's progress and who is sending it, for `status`, `watch` and `list`.

`read_shown` is `campaigns.progress.read_progress` plus the liveness verdict: a running campaign
nothing is sending shows no rate, no ETA, and `waiting.reason` `unattended` (campaigns/liveness.py).
"""

from __future__ import annotations

from datetime import datetime

from campaigns.liveness import Liveness, attended
from campaigns.progress import CampaignProgress, read_progress
from campaigns.store import CampaignView, Store
from campaigns.store.heartbeats import read_liveness


def read_shown(
    store: Store, campaign_id: int, now: datetime, *, distributed: bool
) -> tuple[CampaignView | None, CampaignProgress | None, Liveness | None]:
    """(view, progress as shown, liveness), or three Nones when there is no such campaign."""
    view, progress = read_progress(store, campaign_id, now)
    if view is None or progress is None:
        return None, None, None
    live = liveness_of_view(store, view, now, distributed=distributed)
    return view, attended(progress, live), live


def liveness_of_view(store: Store, view: CampaignView, now: datetime, *, distributed: bool) -> Liveness:
    """The liveness verdict of one campaign (a few small reads of the heartbeats and chunks)."""
    return read_liveness(
        store.engine,
        view.id,
        view.state,
        now,
        distributed=distributed,
        queued_chunks=view.chunk_counts.get("queued", 0),
        pending=view.counts.get("pending", 0) if view.counts else None,
        started_at=view.started_at,
    )
