"""Logging in and out. The login form is throttled by `identity.login` (10 failures per account or 30
per address in 15 minutes: Throttled, the page answers 429 with Retry-After), protected by a
double-submit token (there is no session yet), and rotates the session id (`sessions.log_in`)."""

from __future__ import annotations

from fastapi import APIRouter, Request
from starlette.concurrency import run_in_threadpool
from starlette.responses import RedirectResponse, Response

from dispatcher.web.console import security
from dispatcher.web.console.render import checked_form, render, session_of, text

router = APIRouter()


def safe_next(target: str | None) -> str:
    """Where to go after logging in: a path of this site only (never `//host` or a full URL)."""
    if not target or not target.startswith("/") or target.startswith("//") or "\\" in target:
        return "/campaigns"
    return target


@router.get("/")
async def home() -> Response:
    return RedirectResponse("/campaigns", status_code=303)


@router.get("/login")
async def login_page(request: Request) -> Response:
    token = security.read_cookie(request, security.LOGIN_COOKIE) or security.new_token()
    response = render(request, "login.html", csrf=token, next=safe_next(request.query_params.get("next")))
    security.set_cookie(response, request, security.LOGIN_COOKIE, token, max_age=3600)
    return response


@router.post("/login")
async def login(request: Request) -> Response:
    from dispatcher.app.identity import Throttled, Unauthenticated
    from dispatcher.app.sessions import SessionPolicy, log_in

    form = await request.form(max_files=0)  # a file part is refused at once, never spooled to disk
    expected = security.read_cookie(request, security.LOGIN_COOKIE) or ""
    given = form.get("csrf")
    security.check_csrf(request, expected, given if isinstance(given, str) else None)
    settings = request.app.state.settings
    target = safe_next(text(form, "next"))
    username = text(form, "username")

    def again(status: int, message: str, headers: dict[str, str] | None = None) -> Response:
        response = render(
            request, "login.html", status, csrf=expected, next=target, error=message, username=username
        )
        response.headers.update(headers or {})
        return response

    try:
        new = await run_in_threadpool(
            log_in,
            settings,
            username,
            form.get("password") if isinstance(form.get("password"), str) else "",
            request.client.host if request.client else None,
            security.read_cookie(request, security.SESSION_COOKIE),
        )
    except Throttled as exc:
        return again(429, "throttled", {"Retry-After": str(exc.retry_after_seconds)})
    except Unauthenticated:
        return again(401, "wrong")
    response = RedirectResponse(target, status_code=303)
    policy = SessionPolicy.from_env(settings.env)
    security.set_cookie(
        response, request, security.SESSION_COOKIE, new.token, max_age=int(policy.absolute.total_seconds())
    )
    security.drop_cookie(response, request, security.LOGIN_COOKIE)
    return response


@router.post("/logout")
async def logout(request: Request) -> Response:
    from dispatcher.app.sessions import log_out

    session = await session_of(request)
    await checked_form(request, session)
    await run_in_threadpool(
        log_out, request.app.state.settings, security.read_cookie(request, security.SESSION_COOKIE)
    )
    response = RedirectResponse("/login", status_code=303)
    security.drop_cookie(response, request, security.SESSION_COOKIE)
    return response
