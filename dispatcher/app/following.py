"""The seam between a campaign's progress and who is sending it, for `status`, `watch` and `list`; and
`follow`, which reads it until the campaign ends or pauses (`watch`, `send --wait` in distributed mode).

`read_shown` is `campaigns.progress.read_progress` plus the liveness verdict: a running campaign
nothing is sending shows no rate, no ETA, and `waiting.reason` `unattended` (campaigns/liveness.py).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Protocol

from campaigns.clock import utcnow
from campaigns.progress import CampaignProgress
from campaigns.states import CampaignState
from workers.statusdoc import liveness_of_view, read_shown

__all__ = ["Observer", "follow", "liveness_of_view", "read_shown"]
from campaigns.store import Store


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
