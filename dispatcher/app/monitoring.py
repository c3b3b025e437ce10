"""Monitoring of a long-running process: its `/metrics`, `/healthz` and `/readyz` (docs/monitoring.md).

`start_monitoring` serves them on host:port beside a worker, beat or `serve`; `monitor_for_web` builds
the same routes for the web process. Processes that read the store for everyone (`serve`, `beat`,
`web`) add the store gauges (`workers.store_gauges.StoreGauges`); a worker exposes only what it did.
"""

from __future__ import annotations

import logging
import os

from prometheus_client import REGISTRY

from dispatcher.app.common import BadInput
from dispatcher.config import AppSettings
from workers import metrics
from workers.health import Readiness
from workers.metrics_server import Monitor, Running, serve
from workers.store_gauges import StoreGauges

log = logging.getLogger("dispatcher.monitoring")
ENABLED_ENV = "SMSDISPATCH_METRICS"  # "off" turns the web's /metrics off
STORE_EVERY_ENV = "SMSDISPATCH_METRICS_STORE_EVERY"  # seconds a store reading is reused (default 5)
CREDIT_EVERY_ENV = "SMSDISPATCH_METRICS_CREDIT_EVERY"  # seconds between balance calls (default 300)
_gauges: dict[str, StoreGauges] = {}


def _seconds(settings: AppSettings, name: str, default: float) -> float:
    text = (settings.env.get(name) or "").strip()
    try:
        return float(text) if text else default
    except ValueError:
        raise BadInput(f"{name}={text!r} is not a number of seconds; write one like {default:g}") from None


def add_store_gauges(settings: AppSettings) -> StoreGauges:
    """Register the store gauges in the default registry, once per process (a second call returns them)."""
    if "store" not in _gauges:
        from campaigns.db import make_engine

        collector = StoreGauges(
            make_engine(settings.dispatch.database_url, pool_size=2),
            distributed=bool(settings.dispatch.broker_url),
            env=settings.env,
            every=_seconds(settings, STORE_EVERY_ENV, 5.0),
            credit_every=_seconds(settings, CREDIT_EVERY_ENV, 300.0),
            heartbeat=settings.heartbeat,
        )
        REGISTRY.register(collector)
        _gauges["store"] = collector
    return _gauges["store"]


def monitor_for(settings: AppSettings, *, store_gauges: bool, metrics_on: bool = True) -> Monitor:
    """The three routes of this process (store gauges included when asked), build info set."""
    metrics.set_build_info()
    if store_gauges:
        add_store_gauges(settings)
    token = settings.env.get("SMSDISPATCH_METRICS_TOKEN") or os.environ.get("SMSDISPATCH_METRICS_TOKEN", "")
    return Monitor(readiness=Readiness(settings.dispatch), token=token, metrics=metrics_on)


def monitor_for_web(settings: AppSettings) -> Monitor:
    """The web process's routes: store gauges on, `/metrics` off when SMSDISPATCH_METRICS=off."""
    on = (settings.env.get(ENABLED_ENV) or "on").strip().lower() not in ("off", "0", "false", "no")
    return monitor_for(settings, store_gauges=on, metrics_on=on)


def start_monitoring(settings: AppSettings, host: str, port: int, *, store_gauges: bool) -> Running:
    """Serve /metrics, /healthz and /readyz on host:port (port 0: any free one; `Running.port` says which).
    BadInput (exit 2) when the port cannot be had."""
    if not 0 <= port <= 65535:
        raise BadInput(f"--metrics-port {port}: give a port between 1 and 65535")
    monitor = monitor_for(settings, store_gauges=store_gauges)
    try:
        running = serve(host, port, monitor)
    except OSError as exc:
        raise BadInput(
            f"--metrics-port {port}: cannot listen on {host}:{port} ({exc.strerror}); choose another port"
        ) from None
    log.info("metrics on http://%s:%s/metrics (health: /healthz, /readyz)", host, running.port)
    return running
