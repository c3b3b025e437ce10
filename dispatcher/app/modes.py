"""The two ways a campaign is sent and followed, chosen in one place (`choose_mode`).

- Embedded (no SMSDISPATCH_BROKER_URL): the sending runs in this process, in `LocalRunner`'s
  thread pool, and stops when the process does.
- Distributed (a broker is set): Celery workers send; this process only rings the bell
  (`publish_campaign`) and, to follow, reads the database.

Both take an optional `Observer` (anything with `show(CampaignProgress)`, e.g. the CLI's
`ProgressBars`) and return a `StartResult`; neither prints. A new mode (e.g. handing campaigns to
a long-running service, as `Served` does) is one more `Mode` here and one more branch in `choose_mode`.

- Served (no broker, a live `smsdispatch serve` on the same database): the service sends; this
  process only stores the campaign and, to follow, reads the database.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import TYPE_CHECKING

from campaigns.clock import utcnow
from campaigns.progress import CampaignProgress, read_progress
from campaigns.states import CampaignState
from campaigns.store import Store
from dispatcher.app.following import Observer
from workers.deps import ProviderPool, WorkerDeps

if TYPE_CHECKING:
    from dispatcher.config import AppSettings
    from dispatcher.engine.runner import LocalRunner


class ModeKind(StrEnum):
    EMBEDDED = "embedded"
    SERVED = "served"  # embedded, with a live `smsdispatch serve` on the same database
    DISTRIBUTED = "distributed"


@dataclass(frozen=True)
class StartResult:
    """Where the campaign stands when `start` returns (after sending here, or after publishing)."""

    campaign: int
    state: CampaignState
    reason: str | None = None
    handed_to: str | None = None  # "pid 4242 on host-a": the live `serve` that sends it (served mode)


def worker_deps(settings: AppSettings, store: Store) -> WorkerDeps:
    """What the operations need, from explicit settings (provider accounts read from `settings.env`)."""
    return WorkerDeps(store=store, providers=ProviderPool(settings.env), settings=settings.dispatch)


def _refresher(
    store: Store, campaign_id: int, observer: Observer | None, every: float = 1.0
) -> Callable[..., None]:
    """A progress callback for the runner: re-reads the store at most every `every` seconds."""
    last = [-1e9]

    def refresh(force: bool = False) -> None:
        now = time.monotonic()
        if observer is not None and (force or now - last[0] >= every):
            last[0] = now
            _, p = read_progress(store, campaign_id, utcnow())
            if p is not None:
                observer.show(p)

    return refresh


def follow_campaign(
    store: Store, campaign_id: int, observer: Observer, *, interval: float = 1.0, distributed: bool = False
) -> CampaignProgress:
    """Read the campaign's progress until it completes, stops or pauses (the sending happens elsewhere);
    KeyboardInterrupt stops following only."""
    from dispatcher.app.following import follow as follow_store

    return follow_store(store, campaign_id, observer, interval=interval, distributed=distributed)  # type: ignore[arg-type]


class Mode:
    kind: ModeKind
    sends_here: bool  # True: the campaign is sent by this process, for as long as it runs

    def __init__(self, settings: AppSettings, store: Store) -> None:
        self.settings = settings
        self.store = store

    def start(
        self, campaign_id: int, *, follow: bool = False, observer: Observer | None = None
    ) -> StartResult:
        """Send a running (or scheduled) campaign; with `follow`, until every delivery report is in."""
        raise NotImplementedError

    def resumed(self, campaign_id: int) -> bool:
        """After a resume: True when the remaining chunks go out on their own (else `start` them)."""
        raise NotImplementedError

    def _result(self, campaign_id: int) -> StartResult:
        state, reason = self.store.campaign_state(campaign_id)
        return StartResult(campaign_id, CampaignState(state), reason)


class Embedded(Mode):
    kind = ModeKind.EMBEDDED
    sends_here = True

    def runner(self) -> LocalRunner:
        from dispatcher.engine.runner import LocalRunner

        return LocalRunner(worker_deps(self.settings, self.store))

    def start(
        self, campaign_id: int, *, follow: bool = False, observer: Observer | None = None
    ) -> StartResult:
        state = self.store.campaign_state(campaign_id)[0]
        if state not in (CampaignState.RUNNING, CampaignState.SCHEDULED):
            return self._result(campaign_id)
        from campaigns.liveness import Role
        from campaigns.store.heartbeats import Beating

        runner = self.runner()
        refresh = _refresher(self.store, campaign_id, observer)
        beats = self.settings.heartbeat
        # The heartbeat says who sends the campaign (status, list, watch; `serve` leaves it alone while
        # it is fresh); Ctrl-C lets the chunks in flight finish and ends it (KeyboardInterrupt goes on up).
        with Beating(self.store.engine, Role.SEND, campaign_id, settings=beats):
            refresh(force=True)
            result = runner.send(campaign_id, progress=refresh)
            refresh(force=True)
            if follow and result.state == CampaignState.RUNNING:
                runner.poll(campaign_id=campaign_id, progress=refresh)
                refresh(force=True)
        return self._result(campaign_id)

    def resumed(self, campaign_id: int) -> bool:
        return False  # the caller sends the rest here (`start`), with its own progress display


class Served(Mode):
    """Embedded, with a live `smsdispatch serve` on the same database: it sends; this process only
    follows, in the database, when asked."""

    kind = ModeKind.SERVED
    sends_here = False

    def __init__(self, settings: AppSettings, store: Store, service: str) -> None:
        super().__init__(settings, store)
        self.service = service

    def start(
        self, campaign_id: int, *, follow: bool = False, observer: Observer | None = None
    ) -> StartResult:
        if follow:
            p = follow_campaign(self.store, campaign_id, observer or _Quiet())
            return StartResult(campaign_id, CampaignState(p.state), p.reason, self.service)
        state, reason = self.store.campaign_state(campaign_id)
        return StartResult(campaign_id, CampaignState(state), reason, self.service)

    def resumed(self, campaign_id: int) -> bool:
        return True  # serve picks a running campaign with no live sender up by itself


class Distributed(Mode):
    kind = ModeKind.DISTRIBUTED
    sends_here = False

    def _publish(self, campaign_id: int) -> None:
        from workers.dispatch import publish_campaign
        from workers.settings import DispatchSettings
        from workers.tasks import PUBLISHER

        publish_campaign(self.store, campaign_id, PUBLISHER, DispatchSettings.from_env().chunks_per_message)

    def start(
        self, campaign_id: int, *, follow: bool = False, observer: Observer | None = None
    ) -> StartResult:
        # The rows are committed; ring the bell. Beat publishes a scheduled campaign when it is due.
        if self.store.campaign_state(campaign_id)[0] == CampaignState.RUNNING:
            self._publish(campaign_id)
        if follow:  # the workers send; this process follows them in the database
            p = follow_campaign(self.store, campaign_id, observer or _Quiet(), distributed=True)
            return StartResult(campaign_id, CampaignState(p.state), p.reason)
        return self._result(campaign_id)

    def resumed(self, campaign_id: int) -> bool:
        self._publish(campaign_id)  # its queued chunks' messages were dropped while it was paused
        return True


class _Quiet:
    def show(self, p: CampaignProgress) -> None:
        pass


def choose_mode(settings: AppSettings, store: Store) -> Mode:
    """The one place the mode is chosen: distributed when a broker is configured; else served when a
    `smsdispatch serve` is alive on the same database (campaigns.store.heartbeats.live_service); else embedded."""
    if settings.dispatch.broker_url:
        return Distributed(settings, store)
    from campaigns.store.heartbeats import live_service

    service = live_service(store.engine, stale=settings.heartbeat.stale)
    if service is not None:
        return Served(settings, store, f"pid {service.pid} on {service.host}")
    return Embedded(settings, store)


def poll_here(
    settings: AppSettings,
    store: Store,
    *,
    until_done: bool = False,
    timeout: float | None = None,
    waiting: Callable[[int, datetime | None], None] | None = None,
) -> bool:
    """Delivery-status polling in this process (what workers do on their own); True when all is final.
    `waiting(awaiting, next_check_at)` after every round: recipients still awaiting a report, and when
    the next of them is due a check (UTC; None when none is)."""
    from dispatcher.engine.runner import LocalRunner

    def tell() -> None:
        if waiting is not None:
            waiting(store.awaiting_reports(), store.next_poll_time())

    runner = LocalRunner(worker_deps(settings, store))
    return runner.poll(until_done=until_done, timeout=timeout, waiting=tell if waiting else None)
