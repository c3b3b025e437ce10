"""An HTTP/1.1 keep-alive request handler for the sandbox (`smsdispatch sandbox --keep-alive`).

werkzeug's own handler answers every request with `Connection: close`: it cannot tell where an unread request
body ends, so it drains the socket after each reply (for up to 10 ms) and closes it. Our client then opens a new
TCP connection per call. Whether the real providers keep connections alive is not in the sources we have
(shared/providers.md is silent), so the sandbox can serve either way, and a bench can measure our side both
ways (docs/benchmarks.md).

This handler makes keep-alive safe by never leaving a body half read: a request's body (by its
`Content-Length`) is read whole before the app sees it, and the app's reply is collected whole and sent with
its `Content-Length`. A request it cannot frame that way (a chunked body, a body over `MAX_BODY`) goes to
werkzeug's handler, which answers and closes as it always did. So does a client that asks `Connection: close`,
or an HTTP/1.0 one (http.server decides, from the request line and headers).
"""

from __future__ import annotations

import io
import logging
import socket

from werkzeug.serving import WSGIRequestHandler

log = logging.getLogger("dispatcher.sandbox")

# bytes buffered for one request; a larger one is served as werkzeug serves it, and its connection closed
MAX_BODY = 64 * 1024 * 1024


class KeepAliveHandler(WSGIRequestHandler):
    """werkzeug's request handler, keeping the connection open between requests (see the module docstring)."""

    protocol_version = "HTTP/1.1"
    timeout = 60  # seconds an idle connection is kept before the server closes it

    def setup(self) -> None:
        super().setup()
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)  # replies are written whole

    def run_wsgi(self) -> None:
        length = self.headers.get("Content-Length")
        framed = "Transfer-Encoding" not in self.headers and (length is None or length.isdigit())
        if not framed or int(length or 0) > MAX_BODY or self.headers.get("Expect"):
            super().run_wsgi()  # werkzeug's way: answered, then `Connection: close`
            return
        body = self.rfile.read(int(length)) if length else b""
        self.environ = environ = self.make_environ()
        environ["wsgi.input"] = io.BytesIO(body)
        environ["CONTENT_LENGTH"] = str(len(body))
        status, headers, out = self._call_app(environ)
        code, _, reason = status.partition(" ")
        self.send_response(int(code), reason)
        for key, value in headers:
            if key.lower() not in ("content-length", "connection", "transfer-encoding"):
                self.send_header(key, value)
        self.send_header("Content-Length", str(len(out)))
        if self.close_connection:  # the client asked for it (or spoke HTTP/1.0)
            self.send_header("Connection", "close")
        # Head and body in ONE write: as two, on a kept connection, the body waited for the client's delayed
        # ACK of the head (Nagle's algorithm), 40 ms a reply.
        self._headers_buffer.append(b"\r\n")
        if self.command != "HEAD":
            self._headers_buffer.append(out)
        self.flush_headers()

    def _call_app(self, environ: dict) -> tuple[str, list[tuple[str, str]], bytes]:
        """(status line, headers, whole body) of the app's reply; a failing app is a 500, and the connection
        is closed after it."""
        started: list = []
        parts: list[bytes] = []

        def start_response(status, headers, exc_info=None):  # noqa: ANN001, ANN202 - WSGI
            started[:] = [status, headers]
            return parts.append

        try:
            result = self.server.app(environ, start_response)
            try:
                parts.extend(result)
            finally:
                if hasattr(result, "close"):
                    result.close()
            status, headers = started
        except Exception:  # noqa: BLE001 - a sandbox bug: answered as werkzeug does, and logged
            log.exception("sandbox: error on %s %s", self.command, self.path)
            self.close_connection = True
            return "500 INTERNAL SERVER ERROR", [("Content-Type", "text/plain")], b"internal server error"
        return status, headers, b"".join(parts)
