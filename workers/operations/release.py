"""release_due: the periodic housekeeping beat (or the local runner) does every few seconds.

Starts scheduled campaigns whose time has come, turns chunks whose sender vanished (lease over)
into `unknown` for reconciliation, and completes campaigns with nothing left to wait for. Every
step is a conditional update, so running it twice, or from two places, is harmless.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from campaigns.store import utcnow
from workers.deps import WorkerDeps


@dataclass(frozen=True)
class Released:
    started: list[int] = field(default_factory=list)
    expired_leases: list[int] = field(default_factory=list)
    completed: list[int] = field(default_factory=list)


def release_due(deps: WorkerDeps, now: datetime | None = None) -> Released:
    now = now or utcnow()
    return Released(
        started=deps.store.start_due(now),
        expired_leases=deps.store.expire_leases(now),
        completed=deps.store.complete_finished(now),
    )
