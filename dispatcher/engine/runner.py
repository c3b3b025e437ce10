"""The embedded mode's engine: the distributed mode's parts, in one process.

`InProcessPublisher` plays the broker: chunk ids to send or reconcile run in a thread pool, and a
send asked for later (`requeue_in`, through the same `follow_up` rule as the Celery task) waits on a
timer heap, so no chunk is asked twice before its time. `LocalRunner` plays beat and the queue: it
runs the one housekeeping pass (workers.operations.housekeeping) every `housekeeping_every` seconds,
feeds the pool from the store's claimable chunks, and polls delivery status (collecting opt-out
replies every `optout_every` seconds on the way), until the campaign has nothing left to wait for.
It decides nothing itself (dramatiq's StubBroker in spirit).
"""

from __future__ import annotations

import heapq
import logging
import threading
import time
from collections.abc import Callable
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass
from types import TracebackType

from campaigns.clock import utcnow
from campaigns.states import CampaignState
from campaigns.windows import parse_window
from workers.deps import WorkerDeps
from workers.dispatch import MAX_COUNTDOWN, follow_up
from workers.operations.housekeeping import housekeeping
from workers.operations.optout import collect_optouts
from workers.operations.poll import poll_once
from workers.operations.reconcile import Reconciled, reconcile_chunk
from workers.operations.send import Outcome, send_chunk

log = logging.getLogger("dispatcher.engine.runner")

Progress = Callable[[], None]


@dataclass
class RunResult:
    state: str
    reason: str | None = None
    timed_out: bool = False


class InProcessPublisher:
    """A `workers.dispatch.Publisher` that runs the work in this process.

    One message per chunk at a time: a chunk already running, or waiting on the timer heap, is not
    published again (what a broker cannot know, this queue can). `step` starts the timers that are
    due and applies `follow_up` to every finished send, exactly as the Celery task does.
    """

    def __init__(self, deps: WorkerDeps, threads: int = 8, max_countdown: float = MAX_COUNTDOWN) -> None:
        self.deps = deps
        self.max_countdown = max_countdown
        self._pool = ThreadPoolExecutor(threads, thread_name_prefix="send")
        self._lock = threading.Lock()
        self._sending: dict[int, Future[Outcome]] = {}
        self._reconciling: dict[int, Future[Reconciled]] = {}
        self._timers: list[tuple[float, int, int | None, bool]] = []  # (due, chunk, attempt, reserved)
        self._timed: set[int] = set()

    def __enter__(self) -> InProcessPublisher:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self._pool.shutdown(wait=True)

    # ---- the Publisher protocol ----------------------------------------------------------------
    def send_chunk(
        self, chunk_id: int, attempt: int | None = None, *, reserved: bool = False, countdown: float = 0.0
    ) -> None:
        with self._lock:
            if chunk_id in self._sending or chunk_id in self._timed:
                return
            if countdown > 0:
                heapq.heappush(self._timers, (time.monotonic() + countdown, chunk_id, attempt, reserved))
                self._timed.add(chunk_id)
                return
            self._sending[chunk_id] = self._pool.submit(
                send_chunk, chunk_id, attempt, self.deps, reserved=reserved, reserve_within=self.max_countdown
            )

    def reconcile(self, chunk_id: int) -> None:
        with self._lock:
            if chunk_id not in self._reconciling:
                self._reconciling[chunk_id] = self._pool.submit(reconcile_chunk, chunk_id, self.deps)

    # ---- driving it ------------------------------------------------------------------------------
    @property
    def sending(self) -> int:
        """Sends running now (not those waiting on a timer)."""
        return len(self._sending)

    @property
    def pending(self) -> int:
        """Sends running or waiting on a timer: chunks this publisher holds a message for."""
        return len(self._sending) + len(self._timers)

    def step(self, timeout: float = 0.0) -> int:
        """Start the sends whose timer is due, wait up to `timeout` s for one to finish, and follow up on
        every finished one (log what raised). Returns how many sends finished."""
        now = time.monotonic()
        due: list[tuple[float, int, int | None, bool]] = []
        with self._lock:
            while self._timers and self._timers[0][0] <= now:
                due.append(heapq.heappop(self._timers))
                self._timed.discard(due[-1][1])
        for _, chunk_id, attempt, reserved in due:
            self.send_chunk(chunk_id, attempt, reserved=reserved)
        running = list(self._sending.values())
        if running and timeout > 0:
            wait(running, timeout=timeout, return_when=FIRST_COMPLETED)
        finished = 0
        with self._lock:
            done = [(c, f) for c, f in self._sending.items() if f.done()]
            for chunk_id, _ in done:
                del self._sending[chunk_id]
            for chunk_id, fut in [(c, f) for c, f in self._reconciling.items() if f.done()]:
                del self._reconciling[chunk_id]
                if fut.exception() is not None:
                    log.error("chunk %s: reconciliation raised", chunk_id, exc_info=fut.exception())
        for chunk_id, fut in done:
            finished += 1
            error = fut.exception()
            if error is not None:  # a bug must not stop the campaign; housekeeping recovers the chunk
                log.error("chunk %s: send raised", chunk_id, exc_info=error)
                continue
            follow_up(fut.result(), self, self.max_countdown)
        return finished


class LocalRunner:
    def __init__(
        self,
        deps: WorkerDeps,
        threads: int = 8,
        tick: float = 0.2,
        housekeeping_every: float = 2.0,
        poll_every: float = 1.0,
        *,
        reconcile_every: float | None = None,
        webhooks: bool = True,
    ) -> None:
        """`housekeeping_every`: seconds between housekeeping passes (`reconcile_every` is its old name);
        `poll_every`: seconds between delivery-status polls while sending; `tick`: the loop's pace;
        `webhooks`: whether the housekeeping pass delivers them (`serve` delivers them on a thread)."""
        self.deps = deps
        self.webhooks = webhooks
        self.poll_every = poll_every
        self.threads = threads
        self.tick = tick
        self.housekeeping_every = housekeeping_every if reconcile_every is None else reconcile_every
        self._housekept_at = -1e9
        self._optouts_at = -1e9

    def _housekeeping(self, publisher: InProcessPublisher, *, force: bool = False) -> None:
        """The housekeeping pass beat runs, here at most every `housekeeping_every` seconds."""
        now = time.monotonic()
        if force or now - self._housekept_at >= self.housekeeping_every:
            self._housekept_at = now
            housekeeping(self.deps, publisher, webhooks=self.webhooks)

    def _collect_optouts(self) -> None:
        """Read the inboxes for opt-outs, at most every `settings.optout_every` seconds (0: never)."""
        every = self.deps.settings.optout_every
        now = time.monotonic()
        if every > 0 and now - self._optouts_at >= every:
            self._optouts_at = now
            collect_optouts(self.deps)

    def _feed(self, campaign_id: int, publisher: InProcessPublisher, window: str | None) -> None:
        """The queue's side: publish claimable chunks of the campaign while the pool has room (none while
        its send window is closed; housekeeping publishes them when it opens)."""
        room = self.threads * 2 - publisher.pending
        # Only once half the queue is free: one read tops up `threads` sends, not one read per finished send.
        if room < max(self.threads, 1) or (window and parse_window(window).seconds_until_open(utcnow()) > 0):
            return
        limit = room + publisher.pending  # those already held come back too, and are not published twice
        for chunk_id, attempt in self.deps.store.claimable_chunks(limit, utcnow(), campaign_id):
            publisher.send_chunk(chunk_id, attempt)

    def send(
        self,
        campaign_id: int,
        *,
        timeout: float | None = None,
        progress: Progress | None = None,
        stop: threading.Event | None = None,
    ) -> RunResult:
        """Send every chunk of the campaign; returns when none is left in flight, or it pauses.

        `stop` set (by `smsdispatch serve` on SIGTERM): no new chunk is claimed, the ones in flight
        finish (the pool's exit waits for them), and it returns with `timed_out` True.
        """
        store = self.deps.store
        deadline = None if timeout is None else time.monotonic() + timeout
        view = store.campaign(campaign_id)
        window = view.window if view is not None else None
        with (
            InProcessPublisher(self.deps, self.threads) as publisher,
            ThreadPoolExecutor(1, thread_name_prefix="poll") as poll_pool,
        ):
            poller: Future[int] | None = None
            polled_at = -1e9
            state_at, state, reason = -1e9, "", None
            while True:
                self._housekeeping(publisher)
                # Delivery reports of the chunks already sent are collected while the rest still goes out,
                # in one thread of its own, so a long campaign's first reports do not wait for its last chunk.
                if (poller is None or poller.done()) and time.monotonic() - polled_at >= self.poll_every:
                    if poller is not None and poller.exception() is not None:
                        log.error("status polling raised", exc_info=poller.exception())
                    polled_at = time.monotonic()
                    poller = poll_pool.submit(poll_once, self.deps)
                # The state is read at most every tick while sends run (a pause or cancel already stops
                # their claims; this only ends the loop), and every turn when none runs.
                if not publisher.sending or time.monotonic() - state_at >= min(self.tick, 0.1):
                    state_at = time.monotonic()
                    state, reason = store.campaign_state(campaign_id)
                if state == CampaignState.SCHEDULED and not publisher.sending:
                    time.sleep(self.tick)  # housekeeping starts it when its time comes
                    continue
                if state != CampaignState.RUNNING and not publisher.sending:
                    return RunResult(state, reason)
                if state == CampaignState.RUNNING:
                    self._feed(campaign_id, publisher, window)
                if publisher.sending:
                    if publisher.step(self.tick) and progress:
                        progress()
                else:
                    publisher.step()
                    if not store.sending_open(campaign_id):
                        return RunResult(*store.campaign_state(campaign_id))
                    time.sleep(self.tick)
                if (deadline is not None and time.monotonic() > deadline) or (
                    stop is not None and stop.is_set()
                ):
                    return RunResult(*store.campaign_state(campaign_id), timed_out=True)

    def poll(
        self,
        *,
        campaign_id: int | None = None,
        until_done: bool = True,
        timeout: float | None = None,
        progress: Progress | None = None,
        waiting: Callable[[], None] | None = None,
    ) -> bool:
        """Poll delivery status until nothing awaits a report (or once); True when all is settled.

        `progress()` after a round that looked at recipients; `waiting()` after every round (a display
        of what is awaited and when the next check is due)."""
        store = self.deps.store
        deadline = None if timeout is None else time.monotonic() + timeout
        with InProcessPublisher(self.deps, self.threads) as publisher:
            while True:
                self._housekeeping(publisher)
                publisher.step()
                looked = poll_once(self.deps)
                self._collect_optouts()
                if looked and progress:
                    progress()
                if waiting:
                    waiting()
                settled = self._settled(campaign_id)
                if settled or not until_done:
                    self._housekeeping(publisher, force=True)  # completes what just settled
                    return settled
                if deadline is not None and time.monotonic() > deadline:
                    return False
                nxt = store.next_poll_time()
                pause = self.tick if nxt is None else min(max((nxt - utcnow()).total_seconds(), 0.05), 1.0)
                time.sleep(pause)

    def _settled(self, campaign_id: int | None) -> bool:
        store = self.deps.store
        if campaign_id is not None:
            return store.unfinished(campaign_id) == 0
        return store.next_poll_time() is None and not store.unknown_chunks(limit=1)
