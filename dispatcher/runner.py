"""The embedded mode's engine: the same operations as the Celery tasks, run by a thread pool.

It decides nothing itself (dramatiq's StubBroker in spirit): it asks the store what is claimable,
hands chunk ids to `send_chunk`, reconciles `unknown` chunks, runs the housekeeping of
`release_due`, and polls delivery status (collecting opt-out replies every `optout_every` seconds
on the way), until the campaign has nothing left to wait for.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor, wait
from dataclasses import dataclass

from campaigns.states import CampaignState
from campaigns.store import utcnow
from workers.deps import WorkerDeps
from workers.operations.optout import collect_optouts
from workers.operations.poll import poll_once
from workers.operations.reconcile import reconcile_chunk
from workers.operations.release import release_due
from workers.operations.send import Outcome, send_chunk

log = logging.getLogger("dispatcher.runner")

Progress = Callable[[], None]


@dataclass
class RunResult:
    state: str
    reason: str | None = None
    timed_out: bool = False


class LocalRunner:
    def __init__(
        self,
        deps: WorkerDeps,
        threads: int = 8,
        tick: float = 0.2,
        reconcile_every: float = 2.0,
        poll_every: float = 1.0,
    ) -> None:
        self.deps = deps
        self.poll_every = poll_every
        self.threads = threads
        self.tick = tick
        self.reconcile_every = reconcile_every
        self._reconciled_at: dict[int, float] = {}
        self._optouts_at = -1e9

    def _collect_optouts(self) -> None:
        """Read the inboxes for opt-outs, at most every `settings.optout_every` seconds (0: never)."""
        every = self.deps.settings.optout_every
        now = time.monotonic()
        if every > 0 and now - self._optouts_at >= every:
            self._optouts_at = now
            collect_optouts(self.deps)

    def _reconcile(self) -> None:
        """Ask about `unknown` chunks, each at most every `reconcile_every` seconds (not every tick)."""
        now = time.monotonic()
        for chunk_id in self.deps.store.unknown_chunks():
            if now - self._reconciled_at.get(chunk_id, -1e9) >= self.reconcile_every:
                self._reconciled_at[chunk_id] = now
                reconcile_chunk(chunk_id, self.deps)

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
        with (
            ThreadPoolExecutor(self.threads, thread_name_prefix="send") as pool,
            ThreadPoolExecutor(1, thread_name_prefix="poll") as poll_pool,
        ):
            inflight: dict[int, Future[Outcome]] = {}
            not_before: dict[int, float] = {}
            poller: Future[int] | None = None
            polled_at = -1e9
            while True:
                release_due(self.deps)
                self._reconcile()
                # Delivery reports of the chunks already sent are collected while the rest still goes out,
                # in one thread of its own, so a long campaign's first reports do not wait for its last chunk.
                if (poller is None or poller.done()) and time.monotonic() - polled_at >= self.poll_every:
                    if poller is not None and poller.exception() is not None:
                        log.error("status polling raised", exc_info=poller.exception())
                    polled_at = time.monotonic()
                    poller = poll_pool.submit(poll_once, self.deps)
                state, reason = store.campaign_state(campaign_id)
                if state == CampaignState.SCHEDULED and not inflight:
                    time.sleep(self.tick)  # release_due starts it when its time comes
                    continue
                if state != CampaignState.RUNNING and not inflight:
                    return RunResult(state, reason)
                now = time.monotonic()
                if state == CampaignState.RUNNING:
                    for chunk_id, attempt in store.claimable_chunks(self.threads * 2, utcnow(), campaign_id):
                        if (
                            chunk_id in inflight
                            or not_before.get(chunk_id, 0) > now
                            or len(inflight) >= self.threads * 2
                        ):
                            continue
                        inflight[chunk_id] = pool.submit(send_chunk, chunk_id, attempt, self.deps)
                if inflight:
                    done, _ = wait(list(inflight.values()), timeout=self.tick, return_when="FIRST_COMPLETED")
                    for chunk_id, fut in list(inflight.items()):
                        if fut in done:
                            del inflight[chunk_id]
                            try:
                                outcome = fut.result()
                            except Exception:  # noqa: BLE001 - a bug must not stop the campaign; the lease sweep recovers the chunk
                                log.exception("chunk %s: send raised", chunk_id)
                                continue
                            if outcome.kind in ("throttled", "held") and outcome.requeue_in:
                                not_before[chunk_id] = time.monotonic() + outcome.requeue_in
                            if progress:
                                progress()
                elif not store.sending_open(campaign_id):
                    return RunResult(*store.campaign_state(campaign_id))
                else:
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
    ) -> bool:
        """Poll delivery status until nothing awaits a report (or once); True when all is settled."""
        store = self.deps.store
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            release_due(self.deps)
            self._reconcile()
            looked = poll_once(self.deps)
            self._collect_optouts()
            if looked and progress:
                progress()
            release_due(self.deps)
            settled = self._settled(campaign_id)
            if settled or not until_done:
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
