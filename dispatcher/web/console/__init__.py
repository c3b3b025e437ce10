"""The web console: pages for people, in Persian (right to left) by default and English on request, over
the same application layer as the CLI and the JSON API (`dispatcher.app`).

`install(app)` adds to the FastAPI app of `dispatcher.web.app`: the static files (`dispatcher/web/static`:
Vazirmatn, htmx, the Jalali date picker, the console's CSS and script), the security headers
(`security.SecurityHeaders`), the page routers (`pages/`: sign-in, campaigns, new campaign and its check,
a campaign, numbers and opt-outs, providers, users and keys) and the pages' error answers (an HTML page
with the same one line the CLI prints; the API's paths keep their JSON errors).

Modules: `security` (headers, cookies, CSRF), `render` (templates, the session of a request),
`i18n` and `catalogue` (language, digits, dates, the Persian words), `pages/*` (one router per area).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any
from urllib.parse import quote

from fastapi import FastAPI
from fastapi.staticfiles import StaticFiles
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from dispatcher.web.console import security
from dispatcher.web.console.render import NotLoggedIn, render

STATIC = Path(__file__).parent.parent / "static"


def install(app: FastAPI) -> None:
    """Mount the console on `app` (see the module doc)."""
    from dispatcher.web.console.pages import ROUTERS

    app.add_middleware(security.SecurityHeaders)
    app.mount("/static", StaticFiles(directory=str(STATIC)), name="static")
    for router in ROUTERS:
        app.include_router(router, include_in_schema=False)
    previous = dict(app.exception_handlers)
    for cls in {*previous, NotLoggedIn, security.Forgery}:
        app.add_exception_handler(cls, _handler(previous.get(cls)))


def _handler(api_handler: Any) -> Any:
    async def handle(request: Request, exc: Exception) -> Response:
        if request.url.path.startswith(security.NOT_CONSOLE) and api_handler is not None:
            return await api_handler(request, exc)
        return page_error(request, exc)

    return handle


def page_error(request: Request, exc: BaseException) -> Response:
    """What a page answers for an exception: the login page for no session, else an error page with the
    status and the one line the API would answer (dispatcher/web/errors.py decides both)."""
    from starlette.exceptions import HTTPException

    from dispatcher.web import errors

    if isinstance(exc, NotLoggedIn):
        target = "/login?next=" + quote(
            request.url.path + (f"?{request.url.query}" if request.url.query else "")
        )
        if request.headers.get("hx-request"):
            return Response(status_code=401, headers={"HX-Redirect": target})
        return RedirectResponse(target, status_code=303)
    if isinstance(exc, security.Forgery):
        return render(request, "error.html", 403, code=403, message=str(exc))
    if isinstance(exc, HTTPException):
        status, message = exc.status_code, str(exc.detail)
    else:
        answer = errors.classify(exc, words=str)  # the CLI's line: the page says it in its own words
        status = answer.status_code
        message = json.loads(bytes(answer.body))["error"]["message"]
    return render(request, "error.html", status, code=status, message=message)
