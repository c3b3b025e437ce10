"""Request bodies over the cap (dispatcher/web/limits.py BodyCap) over real HTTP: `smsdispatch web`'s app
served by uvicorn on a loopback port in a thread (tests/support/console.py `Served`), spoken to through a
raw socket, so a body without Content-Length is sent as the chunked transfer encoding puts it on the wire."""

from __future__ import annotations

import json
import select
import socket
from urllib.parse import urlsplit

import pytest

from dispatcher.config import AppSettings
from tests.support.console import Served, console_env

pytestmark = pytest.mark.slow
CHUNK = 64 * 1024
SENT_AT_MOST = 8 << 20  # bytes: the test stops sending here whatever happens (the cap is 1 MB)


def chunked_post(url: str, path: str, content_type: str) -> tuple[int, bytes, int]:
    """POST an endless chunked body to `path` until the server answers; (status, body, bytes sent)."""
    where = urlsplit(url)
    sock = socket.create_connection((where.hostname, where.port), timeout=30)
    sent = 0
    try:
        sock.sendall(
            f"POST {path} HTTP/1.1\r\nHost: {where.netloc}\r\nContent-Type: {content_type}\r\n"
            "Transfer-Encoding: chunked\r\n\r\n".encode()
        )
        piece = f"{CHUNK:x}\r\n".encode() + b"1" * CHUNK + b"\r\n"
        while sent < SENT_AT_MOST:
            if select.select([sock], [], [], 0)[0]:
                break  # the server answered before the body ended
            try:
                sock.sendall(piece)
            except (BrokenPipeError, ConnectionResetError):
                break
            sent += CHUNK
        raw = b""
        while b"\r\n\r\n" not in raw or len(raw) < _expected(raw):
            got = sock.recv(65536)
            if not got:
                break
            raw += got
    finally:
        sock.close()
    head, _, body = raw.partition(b"\r\n\r\n")
    status = int(head.split(b" ", 2)[1]) if head else 0
    return status, body, sent


def _expected(raw: bytes) -> int:
    head, _, _ = raw.partition(b"\r\n\r\n")
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            return len(head) + 4 + int(value)
    return len(raw) + 1


@pytest.fixture
def served(tmp_path, sandbox_environ, monkeypatch):  # noqa: ANN201
    monkeypatch.chdir(tmp_path)
    with Served(AppSettings.from_env(console_env(tmp_path, sandbox_environ))) as running:
        yield running


def test_a_chunked_body_past_the_cap_is_413_for_the_api(served):
    """No Content-Length: the running count of what arrived passes 1 MB, and the answer is the API's 413,
    not FastAPI's 400 "error parsing the body", nor the 401 of a body read to its end."""
    status, body, sent = chunked_post(served.url, "/api/v1/optouts", "application/json")
    assert status == 413, (status, body[:300])
    error = json.loads(body)["error"]
    assert error["kind"] == "too_large" and "1,024 KB" in error["message"], error
    assert sent < SENT_AT_MOST, "the server read on past the cap instead of answering"


def test_a_chunked_form_past_the_cap_is_413_for_a_console_page(served):
    """The console's forms read their body themselves (Starlette's form parser): the same 413, as a page."""
    status, body, sent = chunked_post(served.url, "/login", "application/x-www-form-urlencoded")
    assert status == 413, (status, body[:300])
    assert b"<html" in body.lower() and b"1,024 KB" in body
    assert sent < SENT_AT_MOST
