"""The HTTP API in tests: keys of each role made with the real identity use cases, the app in this
process (FastAPI's TestClient, its lifespan and serve loop included), `smsdispatch web` as a real
process on a free port, and a webhook receiver on loopback."""

from __future__ import annotations

import json
import subprocess
import threading
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx

from dispatcher.config import AppSettings
from tests.support.cluster import EXE, free_port, wait_for

WEBHOOK_SECRET = "test-server-webhook-secret"


def make_key(settings: AppSettings, role: str, name: str | None = None) -> tuple[str, int]:
    """A new API key of `role` (created as the command line, an admin); (the key, its id)."""
    from dispatcher.app import identity

    made = identity.create_key(settings, name or f"{role}-{time.monotonic_ns()}", role)
    return made.key, made.record.id


def bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


@contextmanager
def web_process(env: Mapping[str, str], cwd: Path, *extra: str) -> Iterator[str]:
    """`smsdispatch web` on a free loopback port; its base URL once /healthz answers."""
    port = free_port()
    log = (cwd / f"web-{port}.log").open("w")
    proc = subprocess.Popen(
        [*EXE, "web", "--port", str(port), *extra],
        env=dict(env),
        cwd=cwd,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}"

    def up() -> bool:
        if proc.poll() is not None:
            raise AssertionError(f"web exited {proc.returncode}: {(cwd / f'web-{port}.log').read_text()}")
        try:
            return httpx.get(url + "/healthz", timeout=1).status_code == 200
        except httpx.HTTPError:
            return False

    try:
        wait_for(up, "web's /healthz", timeout=60)
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)
        log.close()


@dataclass
class Receiver:
    """Webhooks received on loopback: (headers, body bytes) in order; `fail` answers 500 that many times."""

    url: str = ""
    got: list[tuple[dict[str, str], bytes]] = field(default_factory=list)
    fail: int = 0

    def events(self) -> list[str]:
        return [json.loads(body)["event"] for _, body in self.got]


@contextmanager
def receiver() -> Iterator[Receiver]:
    box = Receiver()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802 - http.server's name
            body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
            if box.fail > 0:
                box.fail -= 1
                self.send_response(500)
                self.end_headers()
                return
            box.got.append(({k.lower(): v for k, v in self.headers.items()}, body))
            self.send_response(204)
            self.end_headers()

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    box.url = f"http://127.0.0.1:{server.server_address[1]}/hooks"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield box
    finally:
        server.shutdown()
        server.server_close()
