"""Celery task metrics from Celery's own signals, under celery-exporter's metric names.

celery-exporter (danihodovic/celery-exporter, on PyPI as prometheus-exporter-celery) was tried: its
0.11.2 wheel installs a top-level package named `src`, no console script, and pins redis < 6 and
prometheus-client < 0.22, below what this project runs. So each worker counts its own tasks here, with
the exporter's names and labels (`name`, `hostname`, `queue_name`), and its ready-made Grafana
dashboards still work on them:

    celery_task_sent_total, celery_task_received_total, celery_task_started_total,
    celery_task_succeeded_total, celery_task_failed_total{...,exception}, celery_task_retried_total,
    celery_task_rejected_total, celery_task_revoked_total, celery_task_runtime (seconds),
    celery_worker_up{hostname}, celery_worker_tasks_active{hostname}

`install(hostname)` connects the handlers once per process (a worker, or beat for `sent`).
"""

from __future__ import annotations

import socket
import threading
import time
from typing import Any

from celery import signals
from prometheus_client import Counter, Gauge, Histogram

LABELS = ["name", "hostname", "queue_name"]
SENT = Counter("celery_task_sent", "Sent when a task message is published.", LABELS)
RECEIVED = Counter("celery_task_received", "Sent when the worker receives a task.", LABELS)
STARTED = Counter("celery_task_started", "Sent just before the worker executes the task.", LABELS)
SUCCEEDED = Counter("celery_task_succeeded", "Sent if the task executed successfully.", LABELS)
FAILED = Counter(
    "celery_task_failed",
    "Sent if the execution of the task failed.",
    ["name", "hostname", "exception", "queue_name"],
)
RETRIED = Counter(
    "celery_task_retried", "Sent if the task failed, but will be retried in the future.", LABELS
)
REJECTED = Counter("celery_task_rejected", "The task was rejected by the worker.", LABELS)
REVOKED = Counter("celery_task_revoked", "Sent if the task has been revoked.", LABELS)
RUNTIME = Histogram("celery_task_runtime", "Histogram of task runtime measurements.", LABELS)
WORKER_UP = Gauge(
    "celery_worker_up",
    "Indicates if a worker is up (1 while its process runs).",
    ["hostname"],
    multiprocess_mode="liveall",
)
ACTIVE = Gauge(
    "celery_worker_tasks_active",
    "The number of tasks the worker is currently processing",
    ["hostname"],
    multiprocess_mode="livesum",
)

_started: dict[str, float] = {}
_lock = threading.Lock()
_installed = False
_host = {"name": socket.gethostname()}


def _queue(request: Any) -> str:
    info = getattr(request, "delivery_info", None) or {}
    return str(info.get("routing_key") or info.get("exchange") or "")


def _labels(task: Any) -> tuple[str, str, str]:
    request = getattr(task, "request", None)
    host = getattr(request, "hostname", None) or _host["name"]
    return (getattr(task, "name", "") or "", str(host), _queue(request))


def _on_published(sender: Any = None, headers: Any = None, routing_key: str = "", **_: Any) -> None:
    name = (headers or {}).get("task") or str(sender or "")
    SENT.labels(name, _host["name"], routing_key or "").inc()


def _on_received(request: Any = None, **_: Any) -> None:
    RECEIVED.labels(
        getattr(request, "name", "") or "", getattr(request, "hostname", "") or _host["name"], _queue(request)
    ).inc()


def _on_prerun(task_id: str = "", task: Any = None, **_: Any) -> None:
    labels = _labels(task)
    STARTED.labels(*labels).inc()
    ACTIVE.labels(labels[1]).inc()
    with _lock:
        _started[task_id] = time.perf_counter()


def _on_postrun(task_id: str = "", task: Any = None, **_: Any) -> None:
    labels = _labels(task)
    ACTIVE.labels(labels[1]).dec()
    with _lock:
        began = _started.pop(task_id, None)
    if began is not None:
        RUNTIME.labels(*labels).observe(time.perf_counter() - began)


def _on_success(sender: Any = None, **_: Any) -> None:
    SUCCEEDED.labels(*_labels(sender)).inc()


def _on_failure(sender: Any = None, exception: BaseException | None = None, **_: Any) -> None:
    name, host, queue = _labels(sender)
    FAILED.labels(name, host, type(exception).__name__ if exception else "", queue).inc()


def _on_retry(sender: Any = None, request: Any = None, **_: Any) -> None:
    name, host, _q = _labels(sender)
    RETRIED.labels(name, host, _queue(request)).inc()


def _on_rejected(message: Any = None, **_: Any) -> None:
    info = getattr(message, "delivery_info", None) or {}
    headers = getattr(message, "headers", None) or {}
    REJECTED.labels(headers.get("task", ""), _host["name"], str(info.get("routing_key", ""))).inc()


def _on_revoked(request: Any = None, **_: Any) -> None:
    REVOKED.labels(getattr(request, "name", "") or "", _host["name"], _queue(request)).inc()


def _on_ready(sender: Any = None, **_: Any) -> None:
    hostname = getattr(sender, "hostname", None)
    if hostname:
        _host["name"] = hostname
    WORKER_UP.labels(_host["name"]).set(1)


def install(hostname: str | None = None) -> None:
    """Connect the handlers (once per process). `hostname`: the worker's node name until Celery says it."""
    global _installed
    if _installed:
        return
    _installed = True
    if hostname:
        _host["name"] = hostname
    signals.after_task_publish.connect(_on_published, weak=False)
    signals.task_received.connect(_on_received, weak=False)
    signals.task_prerun.connect(_on_prerun, weak=False)
    signals.task_postrun.connect(_on_postrun, weak=False)
    signals.task_success.connect(_on_success, weak=False)
    signals.task_failure.connect(_on_failure, weak=False)
    signals.task_retry.connect(_on_retry, weak=False)
    signals.task_rejected.connect(_on_rejected, weak=False)
    signals.task_revoked.connect(_on_revoked, weak=False)
    signals.worker_ready.connect(_on_ready, weak=False)
