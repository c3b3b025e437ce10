"""The seam between a campaign's progress and who is sending it, for `status`, `watch` and `list`; and
`follow`, which reads it until the campaign ends or pauses (`watch`, `send --wait` in distributed mode).

`read_shown` is `campaigns.progress.read_progress` plus the liveness verdict: a running campaign
nothing is sending shows no rate, no ETA, and `waiting.reason` `unattended` (campaigns/liveness.py).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import datetime
from typing import Protocol

from campaigns.clock import utcnow
from campaigns.liveness import Liveness, attended
from campaigns.progress import CampaignProgress, read_progress
from campaigns.states import CampaignState
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


class Observer(Protocol):
    def show(self, p: CampaignProgress) -> None: ...


def follow(
    store: Store,
    campaign_id: int,
    bars: Observer,
    *,
    interval: float = 1.0,
    sleep: Callable[[float], None] = time.sleep,
    distributed: bool = False,
) -> CampaignProgress:
    """Read the campaign's progress until it is completed, cancelled, failed or paused; returns the last.

    A running campaign nothing is sending shows it (no rate, no ETA, `unattended`)."""
    while True:
        _, p, _ = read_shown(store, campaign_id, utcnow(), distributed=distributed)
        if p is None:
            raise LookupError(f"no campaign {campaign_id}")
        bars.show(p)
        if p.finished or p.state == CampaignState.PAUSED:
            return p
        sleep(interval)
