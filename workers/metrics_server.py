"""The monitoring endpoint of a process: `GET /metrics`, `GET /healthz` (alive), `GET /readyz` (its
database, broker and Redis answer; which did not, in the body).

`serve(host, port, ...)` runs it in a daemon thread (werkzeug's threaded WSGI server) beside a worker,
beat or `serve`; `asgi_app(...)` is the same three routes for the web process. With a token
(SMSDISPATCH_METRICS_TOKEN), `/metrics` wants `Authorization: Bearer <token>`; the health routes never
do (an orchestrator's probe carries no token, and they say nothing secret).

Prefork workers keep their counters in files (prometheus_client's multiprocess mode): when
PROMETHEUS_MULTIPROC_DIR is set, `process_registry()` reads them through a MultiProcessCollector,
as the client's documentation says.
"""

from __future__ import annotations

import hmac
import json
import logging
import os
import threading
from collections.abc import Awaitable, Callable, Iterable, MutableMapping
from dataclasses import dataclass
from typing import Any

from prometheus_client import REGISTRY, CollectorRegistry
from prometheus_client.exposition import choose_encoder

from workers.health import Readiness

TOKEN_ENV = "SMSDISPATCH_METRICS_TOKEN"
MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"
JSON = "application/json"


def process_registry() -> CollectorRegistry:
    """The registry to expose: the default one, or the multiprocess files' when PROMETHEUS_MULTIPROC_DIR is set."""
    if not os.environ.get(MULTIPROC_ENV):
        return REGISTRY
    from prometheus_client import multiprocess

    registry = CollectorRegistry()
    multiprocess.MultiProcessCollector(registry)
    return registry


@dataclass(frozen=True)
class Reply:
    status: int
    content_type: str
    body: bytes


class Monitor:
    """The three routes, framework-free: `reply(method, path, headers)`."""

    def __init__(
        self,
        registry: CollectorRegistry | None = None,
        readiness: Readiness | None = None,
        token: str | None = None,
        metrics: bool = True,
    ) -> None:
        self.registry = registry or process_registry()
        self.readiness = readiness
        self.token = token if token is not None else os.environ.get(TOKEN_ENV, "")
        self.metrics = metrics

    def reply(self, method: str, path: str, headers: dict[str, str]) -> Reply:
        if method not in ("GET", "HEAD"):
            return Reply(405, "text/plain", b"method not allowed\n")
        if path == "/healthz":
            return Reply(200, JSON, b'{"alive": true}\n')
        if path == "/readyz":
            if self.readiness is None:
                return Reply(200, JSON, b'{"ready": true, "checks": {}}\n')
            verdict = self.readiness.check()
            body = json.dumps(verdict.as_json()).encode() + b"\n"
            return Reply(200 if verdict.ready else 503, JSON, body)
        if path == "/metrics" and self.metrics:
            if self.token and not self._authorised(headers.get("authorization", "")):
                return Reply(401, "text/plain", b"bearer token required\n")
            encoder, content_type = choose_encoder(headers.get("accept", ""))
            return Reply(200, content_type, encoder(self.registry))
        return Reply(404, "text/plain", b"not found\n")

    def _authorised(self, header: str) -> bool:
        scheme, _, given = header.partition(" ")
        return scheme.lower() == "bearer" and hmac.compare_digest(given.strip().encode(), self.token.encode())

    # ---- WSGI ------------------------------------------------------------------------------------------
    def wsgi(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        headers = {
            "authorization": environ.get("HTTP_AUTHORIZATION", ""),
            "accept": environ.get("HTTP_ACCEPT", ""),
        }
        reply = self.reply(environ.get("REQUEST_METHOD", "GET"), environ.get("PATH_INFO", "/"), headers)
        start_response(
            f"{reply.status} {_REASONS.get(reply.status, '')}",
            [("Content-Type", reply.content_type), ("Content-Length", str(len(reply.body)))],
        )
        return [b"" if environ.get("REQUEST_METHOD") == "HEAD" else reply.body]

    # ---- ASGI ------------------------------------------------------------------------------------------
    async def asgi(
        self,
        scope: MutableMapping[str, Any],
        receive: Callable[[], Awaitable[Any]],
        send: Callable[[MutableMapping[str, Any]], Awaitable[None]],
    ) -> None:
        if scope["type"] != "http":
            return
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope.get("headers", [])}
        path = scope.get("path", "/")
        from anyio import to_thread  # the readiness checks and the store gauges block: not on the loop

        reply = await to_thread.run_sync(self.reply, scope.get("method", "GET"), path, headers)
        await send(
            {
                "type": "http.response.start",
                "status": reply.status,
                "headers": [
                    (b"content-type", reply.content_type.encode()),
                    (b"content-length", str(len(reply.body)).encode()),
                ],
            }
        )
        await send({"type": "http.response.body", "body": reply.body})


_REASONS = {
    200: "OK",
    401: "Unauthorized",
    404: "Not Found",
    405: "Method Not Allowed",
    503: "Service Unavailable",
}


class Running:
    """A monitoring server running in a daemon thread; `port` is the one it got (ask for 0: any free)."""

    def __init__(self, server: Any) -> None:
        self.server = server
        self.port: int = server.server_port
        self.thread = threading.Thread(target=server.serve_forever, name="metrics", daemon=True)
        self.thread.start()

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def serve(host: str, port: int, monitor: Monitor) -> Running:
    """Serve `monitor` on host:port in a daemon thread. Raises OSError when the port is taken."""
    from werkzeug.serving import make_server

    logging.getLogger("werkzeug").setLevel(logging.WARNING)  # no line per scrape
    return Running(make_server(host, port, monitor.wsgi, threaded=True))
