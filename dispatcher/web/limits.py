"""How much of a request body the server reads: 1 MB, except the uploads.

FastAPI reads and parses a JSON body whole before an endpoint's dependencies run, so before the bearer key
is even looked at, and Starlette spools a form's file parts to disk: an anonymous client could make the
process hold a body of any size. `BodyCap` refuses a body past `MAX_BODY` before the app reads it (413):
at once when its Content-Length says so, or, for a body without one (chunked transfer encoding), as soon
as the running count of what arrived passes it. The upload routes (`UPLOADS`) stream and cap their own
body (dispatcher/web/forms.py, SMSDISPATCH_MAX_UPLOAD_MB) after the caller's key or session is checked,
and are left to themselves.

A chunked body's overflow is raised from inside the app's `receive` as an HTTP 413 (`BodyTooLarge`):
FastAPI passes an `HTTPException` raised while it reads a body through (any other exception there becomes
its own 400 "error parsing the body"), so the API answers its JSON 413 and a console page its HTML one.
Should the app answer anything else once the cap was passed, its answer is replaced by the 413.
"""

from __future__ import annotations

from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from dispatcher.web.errors import answer

MAX_BODY = 1 << 20  # bytes: 10,000 numbers for the opt-out list are ~200 KB; a console form a few KB
UPLOADS = {("POST", "/api/v1/campaigns"), ("POST", "/api/v1/drafts"), ("POST", "/campaigns/new")}


class BodyTooLarge(HTTPException):
    """A request body past the cap (413), raised while the app reads it."""

    def __init__(self, line: str) -> None:
        super().__init__(413, line)


class BodyCap:
    """ASGI middleware: 413 for a body past `limit` bytes, outside `UPLOADS` (see the module doc)."""

    def __init__(self, app: ASGIApp, limit: int = MAX_BODY) -> None:
        self.app, self.limit = app, limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or (scope["method"], scope["path"].rstrip("/")) in UPLOADS:
            await self.app(scope, receive, send)
            return
        declared = dict(scope.get("headers") or []).get(b"content-length", b"")
        if declared.isdigit() and int(declared) > self.limit:
            await answer(413, "too_large", self._line())(scope, receive, send)
            return
        seen = 0
        over = replaced = False

        async def counted() -> Message:
            nonlocal seen, over
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > self.limit:
                    over = True
                    raise BodyTooLarge(self._line())
            return message

        async def answered(message: Message) -> None:
            nonlocal replaced
            if replaced:
                return
            if over and message["type"] == "http.response.start" and message["status"] != 413:
                replaced = True  # the app made the overflow something else (a 400): it is a 413
                await answer(413, "too_large", self._line())(scope, receive, send)
                return
            await send(message)

        await self.app(scope, counted, answered)

    def _line(self) -> str:
        return f"the request body is over {self.limit // 1024:,} KB; only the uploads take more"
