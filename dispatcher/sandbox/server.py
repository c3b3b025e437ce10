"""The sandbox HTTP server: every twin under its prefix, plus a small admin API.

Admin API (JSON), for tests that run the sandbox in another process:
  GET  /_sandbox/messages[?provider=P]   every accepted message, in the order accepted; &offset=N&limit=M
                                         for a page of them (bench/soak.py reads a million so)
  GET  /_sandbox/outcome?phone=N         the final outcome the sandbox gives that number
  POST /_sandbox/faults                  {"provider", "op", "kind", "code", "status", "seconds", "times"}
  POST /_sandbox/renames                 {"provider", "path", "fields": {old: new}, "times"}: renamed keys
  POST /_sandbox/config                  {"latency_ms", "fail_rate", "final_after_s", "negin_min_interval_s", "credit": {P: n}}
  POST /_sandbox/inbox                   {"provider", "sender", "text", "line"}
  POST /_sandbox/reset
"""

from __future__ import annotations

import importlib
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from werkzeug.serving import BaseWSGIServer, make_server
from werkzeug.wrappers import Request, Response

from dispatcher.sandbox.core import PREFIXES, Fault, Rename, SandboxState
from dispatcher.sandbox.keepalive import KeepAliveHandler
from dispatcher.sandbox.twin import json_body, json_response, renamed

TWINS = {name: f"dispatcher.sandbox.{name.replace('-', '_')}" for name in PREFIXES}


class SandboxApp:
    def __init__(self, state: SandboxState) -> None:
        self.state = state
        self._twins: dict[str, object] = {}

    def twin(self, provider: str):  # noqa: ANN201 - a module with handle()
        if provider not in self._twins:
            self._twins[provider] = importlib.import_module(TWINS[provider])
        return self._twins[provider]

    def __call__(self, environ, start_response):  # noqa: ANN001, ANN204 - WSGI
        request = Request(environ)
        response = self.dispatch(request)
        return response(environ, start_response)

    def dispatch(self, request: Request) -> Response:
        path = request.path
        if path.startswith("/_sandbox/"):
            return self.admin(request, path[len("/_sandbox/") :])
        for provider, prefix in PREFIXES.items():
            if path == prefix or path.startswith(prefix + "/"):
                if self.state.latency_ms:
                    time.sleep(self.state.latency_ms / 1000)
                sub = path[len(prefix) :].strip("/")
                response = self.twin(provider).handle(request, sub, self.state)
                fields = self.state.take_rename(provider, sub)
                return renamed(response, fields) if fields else response
        return Response("not found", status=404)

    def admin(self, request: Request, what: str) -> Response:
        state = self.state
        if what == "messages":
            provider = request.args.get("provider")
            found = state.accepted(provider)
            offset = request.args.get("offset", 0, type=int)
            limit = request.args.get("limit", len(found), type=int)
            return json_response([m.as_dict() for m in found[offset : offset + limit]])
        if what == "outcome":
            return json_response(
                {
                    "phone": request.args.get("phone", ""),
                    "outcome": state.outcome(request.args.get("phone", "")),
                }
            )
        body = json_body(request) or {}
        if what == "faults" and request.method == "POST":
            state.add_fault(Fault(**body))
            return json_response({"ok": True})
        if what == "renames" and request.method == "POST":
            state.add_rename(Rename(**body))
            return json_response({"ok": True})
        if what == "config" and request.method == "POST":
            for key in ("latency_ms", "fail_rate", "final_after_s", "negin_min_interval_s"):
                if key in body:
                    setattr(state, key, float(body[key]))
            for provider, amount in (body.get("credit") or {}).items():
                state.credit[provider] = int(amount)
            return json_response({"ok": True})
        if what == "inbox" and request.method == "POST":
            return json_response(
                state.add_inbound(body["provider"], body["sender"], body["text"], body.get("line", ""))
            )
        if what == "reset" and request.method == "POST":
            state.reset()
            return json_response({"ok": True})
        return Response("unknown admin call", status=404)


@dataclass
class RunningSandbox:
    state: SandboxState
    server: BaseWSGIServer
    thread: threading.Thread

    @property
    def url(self) -> str:
        host, port = self.server.server_address[:2]
        return f"http://{host}:{port}"

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(timeout=5)

    def __enter__(self) -> RunningSandbox:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def quiet() -> None:
    """No access log line per request: a campaign makes thousands of them."""
    logging.getLogger("werkzeug").setLevel(logging.WARNING)


def make(state: SandboxState, host: str, port: int, keep_alive: bool) -> BaseWSGIServer:
    """The sandbox's server, not yet serving. `keep_alive`: HTTP/1.1 connections are kept open between requests
    (`keepalive.KeepAliveHandler`); else every reply closes its connection (werkzeug's own handler). Which of
    the two the real providers do is not documented: both are served, the client works with either."""
    handler = KeepAliveHandler if keep_alive else None
    return make_server(host, port, SandboxApp(state), threaded=True, request_handler=handler)


def start(
    state: SandboxState | None = None, host: str = "127.0.0.1", port: int = 0, *, keep_alive: bool = False
) -> RunningSandbox:
    """Serve in a background thread (port 0 picks a free port); for the demo and tests. `keep_alive`: see
    `make`."""
    quiet()
    state = state or SandboxState()
    server = make(state, host, port, keep_alive)
    thread = threading.Thread(target=server.serve_forever, name="sandbox", daemon=True)
    thread.start()
    return RunningSandbox(state, server, thread)


def serve_forever(
    state: SandboxState,
    host: str = "127.0.0.1",
    port: int = 8700,
    access_log: bool = False,
    on_ready: Callable[[str], None] | None = None,
    keep_alive: bool = False,
) -> None:
    """Serve in this thread until interrupted; `on_ready(url)` once listening (port 0: the port it got);
    `keep_alive`: see `make`. OSError when the port cannot be had."""
    if not access_log:
        quiet()
    server = make(state, host, port, keep_alive)
    if on_ready is not None:
        bound_host, bound_port = server.server_address[:2]
        on_ready(f"http://{bound_host}:{bound_port}")
    try:
        server.serve_forever()
    finally:
        server.server_close()
