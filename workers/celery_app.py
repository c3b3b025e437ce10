"""The Celery application of the distributed mode, configured from the environment.

Delivery settings follow shared/research/celery.md §0: late acks, requeue when a worker process
dies, one reserved message per process, JSON only, and a visibility timeout of minutes, longer
than any countdown we ever use (countdowns are capped at MAX_COUNTDOWN). Results are not stored:
outcomes live in the database, the broker is only a doorbell.
"""

from __future__ import annotations

import os

from celery import Celery

from workers.settings import DispatchSettings

# seconds, the default of SMSDISPATCH_VISIBILITY_TIMEOUT; > the longest send (lease) and > MAX_COUNTDOWN
VISIBILITY_TIMEOUT = DispatchSettings.visibility_timeout
HOUSEKEEPING_EVERY = 5.0  # seconds between beat's housekeeping passes
POLL_EVERY = 5.0

SEND_QUEUE = "sms.send"
CONTROL_QUEUE = "sms.control"


def restore_every(visibility: float) -> tuple[float, int]:
    """kombu's (unacked_restore_interval, unacked_restore_throttle) for a visibility timeout.

    A worker looks for messages unacked longer than the timeout every interval x throttle seconds:
    kombu's 10 x 10 for the default 900 s, and a fifth of the timeout when it is shorter, so a short
    timeout (tests) brings a message back within seconds rather than after kombu's 100 s.
    """
    every = min(100.0, max(visibility / 5, 1.0))
    interval = min(10.0, every)
    return interval, max(1, round(every / interval))


def make_app(settings: DispatchSettings | None = None) -> Celery:
    settings = settings or DispatchSettings.from_env()
    broker = settings.broker_url or os.environ.get("SMSDISPATCH_BROKER_URL", "memory://")
    visibility = settings.visibility_timeout
    restore_interval, restore_throttle = restore_every(visibility)
    app = Celery("smsdispatch", broker=broker, include=["workers.tasks"])
    app.conf.update(
        task_serializer="json",
        accept_content=["json"],
        task_ignore_result=True,
        task_acks_late=True,
        task_reject_on_worker_lost=True,
        worker_prefetch_multiplier=1,
        worker_cancel_long_running_tasks_on_connection_loss=True,
        broker_connection_retry_on_startup=True,
        broker_connection_max_retries=None,
        broker_transport_options={
            "visibility_timeout": visibility,
            "unacked_restore_interval": restore_interval,
            "unacked_restore_throttle": restore_throttle,
            "socket_keepalive": True,
            "socket_connect_timeout": 5,
            "retry_on_timeout": True,
            "health_check_interval": 25,
        },
        visibility_timeout=visibility,
        worker_soft_shutdown_timeout=20.0,
        worker_enable_soft_shutdown_on_idle=True,
        task_default_queue=SEND_QUEUE,
        task_routes={
            "smsdispatch.send_chunk": {"queue": SEND_QUEUE},
            "smsdispatch.*": {"queue": CONTROL_QUEUE},
        },
        beat_schedule={
            "housekeeping": {"task": "smsdispatch.housekeeping", "schedule": HOUSEKEEPING_EVERY},
            # apart from housekeeping: a receiver that never answers holds up its own deliveries only
            "webhooks": {
                "task": "smsdispatch.webhooks",
                "schedule": HOUSEKEEPING_EVERY,
                "options": {"expires": HOUSEKEEPING_EVERY * 2},
            },
            "poll": {"task": "smsdispatch.poll", "schedule": POLL_EVERY},
            **optout_schedule(settings),
        },
    )
    return app


def optout_schedule(settings: DispatchSettings) -> dict[str, dict[str, object]]:
    """Opt-out collection every SMSDISPATCH_OPTOUT_EVERY seconds (0: never); a run not started by the
    next one's time expires, so workers back from an outage do not replay a backlog of them."""
    every = settings.optout_every
    if every <= 0:
        return {}
    return {
        "optouts": {"task": "smsdispatch.collect_optouts", "schedule": every, "options": {"expires": every}}
    }


app = make_app()
