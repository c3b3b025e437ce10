"""`smsdispatch serve`: the embedded mode's one long-running process.

Every `tick` seconds it starts scheduled campaigns whose time has come (the housekeeping pass of a `LocalRunner.poll` round), picks up
running campaigns no live process is sending (their `send` was closed or killed, a previous `serve`
died: no live heartbeat, `campaigns.store.heartbeats.orphans`), sends each in a thread of its own with the
local runner (chunks held outside their window wait there until it opens), polls delivery and collects
opt-outs. It keeps a heartbeat of its own (`live_service` finds it: `send` then stores and returns) and
one per campaign it sends. A stop request (SIGTERM, SIGINT) claims no new chunk, lets the chunks in
flight finish, and returns 0. Events go to the `dispatcher.engine.serve` logger, one line each.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass, field
from datetime import timedelta

from campaigns.clock import utcnow
from campaigns.liveness import HeartbeatSettings, Role, clock
from campaigns.states import CampaignState
from campaigns.store.heartbeats import Beating, last_activity, orphans, prune
from workers.deps import WorkerDeps

log = logging.getLogger("dispatcher.engine.serve")
C = CampaignState


@dataclass
class Service:
    """deps: the store, providers and settings; tick: seconds between looks at the store;
    threads: send threads per campaign; heartbeat: beat period and staleness (campaigns.liveness)."""

    deps: WorkerDeps
    heartbeat: HeartbeatSettings = field(default_factory=HeartbeatSettings)
    tick: float = 1.0
    threads: int = 8
    _senders: dict[int, threading.Thread] = field(default_factory=dict)
    _states: dict[int, tuple[str, str | None]] = field(default_factory=dict)
    _pruned_at: float = -1e9

    def run(self, stop: threading.Event) -> int:
        """Serve until `stop` is set; then wait for the chunks in flight. Returns the exit code (0)."""
        from dispatcher.engine.runner import LocalRunner

        engine = self.deps.store.engine
        housekeeping = LocalRunner(self.deps, tick=self.tick, webhooks=False)
        webhooks = threading.Thread(target=self._webhooks, args=(stop,), name="webhooks", daemon=True)
        with Beating(engine, Role.SERVE, None, self.heartbeat):
            log.info("serving %s", _where(engine))
            webhooks.start()
            while not stop.is_set():
                try:
                    self._once(housekeeping, stop)
                except Exception as exc:  # noqa: BLE001 - a database or provider outage: say it, try again
                    log.error("this round failed, trying again: %s: %s", type(exc).__name__, exc)
                stop.wait(self.tick)
            busy = [cid for cid, t in self._senders.items() if t.is_alive()]
            if busy:
                log.info(
                    "stopping: finishing the chunks in flight of campaign(s) %s", ", ".join(map(str, busy))
                )
            for thread in self._senders.values():
                thread.join()
            webhooks.join(timeout=self.tick + 1)  # a POST in flight is leased: the next pass retries it
            self._say_changes()
        log.info("stopped")
        return 0

    def _once(self, housekeeping, stop: threading.Event) -> None:  # noqa: ANN001 - a LocalRunner
        now = utcnow()
        engine = self.deps.store.engine
        for cid in orphans(engine, now, self.heartbeat.stale):
            thread = self._senders.get(cid)
            if thread is not None and thread.is_alive():
                continue
            if thread is None:  # first time here: say where it was left
                since = last_activity(engine, cid)
                left = f" (nothing had been sending it since {clock(since, now)})" if since else ""
                log.info("campaign %s: picked up%s", cid, left, extra={"campaign": cid, "event": "picked_up"})
            self._senders[cid] = thread = threading.Thread(
                target=self._send, args=(cid, stop), name=f"campaign-{cid}", daemon=True
            )
            thread.start()
        # Delivery reports, reconciliation, the schedule, completion, opt-outs: one round, not a loop.
        housekeeping.poll(until_done=False)
        self._say_changes()
        if time.monotonic() - self._pruned_at > 3600:
            self._pruned_at = time.monotonic()
            prune(engine, utcnow() - _DAY)

    def _webhooks(self, stop: threading.Event) -> None:
        """Deliver the due webhooks every tick, apart from the loop that starts and polls campaigns (a
        receiver that never answers holds up its own deliveries only)."""
        from workers.operations.webhooks import deliver_due

        while not stop.is_set():
            try:
                deliver_due(self.deps)
            except Exception as exc:  # noqa: BLE001 - a database outage: say it, try again
                log.error("webhooks: %s: %s", type(exc).__name__, exc)
            stop.wait(self.tick)

    def _send(self, campaign_id: int, stop: threading.Event) -> None:
        """Send the campaign until it leaves `running` or the service stops, with a heartbeat for it."""
        from dispatcher.engine.runner import LocalRunner

        runner = LocalRunner(self.deps, threads=self.threads)
        try:
            with Beating(self.deps.store.engine, Role.SERVE, campaign_id, self.heartbeat):
                while not stop.is_set():
                    result = runner.send(campaign_id, stop=stop)
                    if result.state != C.RUNNING:
                        return
                    stop.wait(self.tick)  # all sent: the heartbeat stays while its reports come in
        except Exception as exc:  # noqa: BLE001 - the next round picks it up again
            log.error("campaign %s: sending stopped: %s: %s", campaign_id, type(exc).__name__, exc)

    def _say_changes(self) -> None:
        """One line per campaign state change seen since the last look."""
        for view in self.deps.store.campaigns():
            before = self._states.get(view.id)
            now = (view.state, view.state_reason)
            self._states[view.id] = now
            if before is None or before[0] == now[0]:
                continue
            line = _EVENTS.get((before[0], now[0]), "{state}")
            reason = f": {view.state_reason}" if view.state_reason and now[0] in _WITH_REASON else ""
            log.info(
                "campaign %s (%s): %s%s",
                view.id,
                view.name,
                line.format(state=now[0]),
                reason,
                extra={"campaign": view.id, "event": f"campaign_{now[0]}"},
            )


_DAY = timedelta(days=1)  # how long a dead process's last beat is kept (for "since …")
_WITH_REASON = frozenset({C.PAUSED, C.FAILED, C.CANCELLED})
_EVENTS = {
    (C.SCHEDULED, C.RUNNING): "started (its time came)",
    (C.DRAFT, C.RUNNING): "started",
    (C.PAUSED, C.RUNNING): "resumed",
    (C.RUNNING, C.COMPLETED): "completed",
    (C.RUNNING, C.PAUSED): "paused",
}


def _where(engine) -> str:  # noqa: ANN001
    """The database in one line, without its password."""
    return engine.url.render_as_string(hide_password=True)
