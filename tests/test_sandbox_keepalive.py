"""The sandbox's --keep-alive: HTTP/1.1 connections kept between requests, a body left unread by the app never
taken for the next request line, and our client's sends going through on a kept connection."""

from __future__ import annotations

import http.client
from urllib.parse import urlsplit

import pytest
from werkzeug.serving import WSGIRequestHandler

from dispatcher.sandbox.server import start


def _exchange(
    conn: http.client.HTTPConnection, method: str, path: str, body: bytes = b""
) -> tuple[int, bytes]:
    conn.request(method, path, body=body or None, headers={"Content-Type": "application/json"})
    response = conn.getresponse()
    return response.status, response.read()


@pytest.mark.parametrize("keep_alive", [False, True])
def test_connection_kept_only_with_keep_alive(keep_alive: bool) -> None:
    with start(keep_alive=keep_alive) as sandbox:
        parts = urlsplit(sandbox.url)
        conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=10)
        try:
            assert _exchange(conn, "POST", "/_sandbox/config", b'{"latency_ms": 0}')[0] == 200
            first = conn.sock
            # a body the app never reads (an unknown path), then a request that must still be read whole
            assert _exchange(conn, "POST", "/nowhere", b"x" * 5000)[0] == 404
            status, body = _exchange(conn, "GET", "/_sandbox/messages?limit=1")
            assert (status, body) == (200, b"[]")
            assert (conn.sock is first and first is not None) is keep_alive
        finally:
            conn.close()


def test_client_sends_on_a_kept_connection(monkeypatch: pytest.MonkeyPatch) -> None:
    from dispatcher.sandbox.core import sandbox_env
    from workers.providers.ghasedak import GhasedakClient
    from workers.status import Message, SendBatch, SendOutcome

    accepted = [0]  # TCP connections the sandbox accepted (each gets its own request handler)
    setup = WSGIRequestHandler.setup

    def counted(handler: WSGIRequestHandler) -> None:
        accepted[0] += 1
        setup(handler)

    monkeypatch.setattr(WSGIRequestHandler, "setup", counted)
    with start(keep_alive=True) as sandbox:
        for key, value in sandbox_env(sandbox.url).items():
            monkeypatch.setenv(key, value)
        client = GhasedakClient(GhasedakClient.load_settings())
        for start_id in (1, 101):
            batch = SendBatch(
                tuple(Message(i, f"+98912{i:07d}", "hi", f"t-{i}") for i in range(start_id, start_id + 100)),
                "",
            )
            results = client.send(batch)
            assert [r.outcome for r in results] == [SendOutcome.ACCEPTED] * 100
        assert len(sandbox.state.accepted("ghasedak")) == 200
        assert accepted == [1], accepted  # both sends on the one connection the sandbox kept
