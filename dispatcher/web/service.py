"""What `smsdispatch web` does beside answering, by mode (`dispatcher.app.modes` chooses):

- embedded, no live `serve` on the database: the `serve` loop runs in a thread of this process
  (`dispatcher.engine.serve.Service`: sends what the API stores, starts scheduled work, picks up
  orphans, polls delivery, collects opt-outs, delivers webhooks through housekeeping);
- embedded with a live `serve`: nothing while it lives (the API only stores); a watcher starts the loop
  here if that `serve` stops beating;
- distributed: nothing; the API stores and rings the workers, beat runs housekeeping.
"""

from __future__ import annotations

import logging
import threading
import time

from dispatcher.app import open_store
from dispatcher.config import AppSettings

log = logging.getLogger("dispatcher.web")


class Background:
    """The serve loop of an embedded `web`, started and stopped with the server."""

    def __init__(self, settings: AppSettings, *, tick: float = 1.0) -> None:
        self.settings, self.tick = settings, tick
        self.stop_event = threading.Event()
        self.thread: threading.Thread | None = None
        self.store = None
        self.role = "distributed" if settings.dispatch.broker_url else "embedded"

    def start(self) -> str:
        """Start the loop when this process should send; returns what it does ('serving', 'served by …',
        'distributed')."""
        if self.settings.dispatch.broker_url:
            return "distributed: the workers send; beat runs housekeeping"
        from campaigns.store.heartbeats import live_service

        store = open_store(self.settings)
        assert store is not None
        self.store = store
        other = live_service(store.engine, stale=self.settings.heartbeat.stale)
        watcher = threading.Thread(target=self._watch, name="serve-watch", daemon=True)
        if other is not None:
            watcher.start()
            return f"embedded: a live `smsdispatch serve` sends (pid {other.pid} on {other.host})"
        self._serve_here()
        watcher.start()
        return "embedded: sending here (the serve loop runs in this process)"

    def _serve_here(self) -> None:
        from campaigns.store.heartbeats import live_service
        from dispatcher.app.modes import worker_deps
        from dispatcher.engine.serve import Service

        service = Service(
            worker_deps(self.settings, self.store), heartbeat=self.settings.heartbeat, tick=self.tick
        )
        self.thread = threading.Thread(target=service.run, args=(self.stop_event,), name="serve", daemon=True)
        self.thread.start()
        deadline = time.monotonic() + 10
        while (
            live_service(self.store.engine, stale=self.settings.heartbeat.stale) is None
            and time.monotonic() < deadline
        ):
            time.sleep(
                0.05
            )  # its heartbeat first: a campaign stored now is then handed to it, never sent inline

    def _watch(self) -> None:
        """Serve here when no live `serve` beats any more (the one that did stopped or died)."""
        from campaigns.store.heartbeats import live_service

        while not self.stop_event.wait(self.settings.heartbeat.stale):
            if self.thread is not None and self.thread.is_alive():
                continue
            try:
                if live_service(self.store.engine, stale=self.settings.heartbeat.stale) is None:
                    log.info("no live serve on the database: the serve loop starts here")
                    self._serve_here()
            except Exception as exc:  # noqa: BLE001 - a database outage: look again next time
                log.error("serve watcher: %s: %s", type(exc).__name__, exc)

    def stop(self) -> None:
        self.stop_event.set()
        if self.thread is not None:
            self.thread.join(timeout=60)
