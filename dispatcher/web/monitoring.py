"""Monitoring of the web process: `install(app, settings)` adds `/metrics`, `/readyz` (and `/healthz` when
the app has none) to a FastAPI app, and counts its HTTP requests.

- HTTP metrics come from prometheus-fastapi-instrumentator: `http_requests_total{handler,method,status}`
  and `http_request_duration_seconds{handler,method}`, where `handler` is the route template
  (`/api/v1/campaigns/{campaign_id}`), never the raw path, which can hold a phone number; a path no route
  matches is counted as `none`.
- `/metrics` carries them, what this process did itself (its sends, when the embedded serve loop runs
  here) and the store gauges (`workers.store_gauges`). It is not behind the login: set
  SMSDISPATCH_METRICS_TOKEN to ask for `Authorization: Bearer <token>`, or SMSDISPATCH_METRICS=off to
  serve no `/metrics` at all (`/readyz` stays).
- `/readyz`: 200 when the database (and the broker and Redis, when set) answer, else 503 naming which.

The app factory calls it once: `install(app, settings)` (docs/monitoring.md).
"""

from __future__ import annotations

from fastapi import FastAPI, Request
from fastapi.responses import Response

from dispatcher.app.monitoring import monitor_for_web
from dispatcher.config import AppSettings
from workers.metrics_server import Monitor

_instrumented: dict[str, object] = {}
EXCLUDED = ["/metrics", "/healthz", "/readyz"]


def instrumentator() -> object:
    """One instrumentator per process (its metrics are registered once in the default registry).

    The default metrics are made here, once, and handed to every app's middleware: left to itself, each
    app's middleware makes them anew, finds them already registered and then records nothing, so only the
    first app of a process (a test process makes many) would be counted."""
    if "it" not in _instrumented:
        from prometheus_fastapi_instrumentator import Instrumentator, metrics

        it = Instrumentator(
            should_group_status_codes=False,
            should_ignore_untemplated=False,
            should_group_untemplated=True,  # a path no route matches: handler="none", never the path itself
            excluded_handlers=EXCLUDED,
        )
        it.add(metrics.default())
        _instrumented["it"] = it
    return _instrumented["it"]


def _reply(monitor: Monitor, request: Request) -> Response:
    headers = {k: request.headers.get(k, "") for k in ("authorization", "accept")}
    reply = monitor.reply(request.method, request.url.path, headers)
    return Response(reply.body, status_code=reply.status, media_type=reply.content_type)


def install(app: FastAPI, settings: AppSettings) -> Monitor:
    """Add the monitoring routes and the HTTP metrics to `app` (once per app); returns its Monitor."""
    monitor = monitor_for_web(settings)
    instrumentator().instrument(app)  # type: ignore[attr-defined]
    paths = {getattr(route, "path", None) for route in app.routes}

    if monitor.metrics:

        @app.get("/metrics", include_in_schema=False)
        def metrics(request: Request) -> Response:  # a plain def: FastAPI runs it off the event loop
            return _reply(monitor, request)

    @app.get("/readyz", include_in_schema=False)
    def readyz(request: Request) -> Response:
        return _reply(monitor, request)

    if "/healthz" not in paths:

        @app.get("/healthz", include_in_schema=False)
        def healthz(request: Request) -> Response:
            return _reply(monitor, request)

    return monitor
