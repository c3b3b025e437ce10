"""A send answered with a redirect is never sent again at the new location: the reply is ambiguous (reconciled),
where requests' redirect walk re-POSTed a 307/308 (two sends) and turned a 302/303 into a GET."""

from __future__ import annotations

import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from workers.errors import AmbiguousSendError
from workers.status import Message, SendBatch


@pytest.mark.parametrize("cookie", [False, True], ids=["plain", "with-a-cookie"])
@pytest.mark.parametrize("status", [302, 307, 308])
def test_send_redirect_is_ambiguous_and_not_followed(
    status: int, cookie: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Also when the provider set a cookie (a load balancer's): such a session takes requests' full path,
    which followed the redirect before."""
    hits: list[tuple[str, str]] = []

    class Handler(BaseHTTPRequestHandler):
        def _answer(self) -> None:
            hits.append((self.command, self.path))
            self.rfile.read(int(self.headers.get("Content-Length") or 0))
            self.send_response(status)
            self.send_header("Location", "/elsewhere")
            self.send_header("Content-Length", "0")
            self.end_headers()

        do_POST = do_GET = _answer  # noqa: N815

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        monkeypatch.setenv("SMSDISPATCH_GHASEDAK_URL", f"http://127.0.0.1:{server.server_address[1]}/v2")
        monkeypatch.setenv("SMSDISPATCH_GHASEDAK_APIKEY", "k")
        from workers.providers.ghasedak import GhasedakClient

        client = GhasedakClient(GhasedakClient.load_settings())
        if cookie:
            client.session.cookies.set("lb", "node1", domain="127.0.0.1", path="/")
        batch = SendBatch(
            (Message(1, "+989120000001", "hi", "t-1"), Message(2, "+989120000002", "hi", "t-2")), ""
        )
        with pytest.raises(AmbiguousSendError):
            client.send(batch)
        assert hits == [("POST", "/v2/sms/send/pair")]  # once, and nothing at /elsewhere
    finally:
        server.shutdown()
        server.server_close()
