"""Pages from templates (Jinja2, autoescaped), the session of a request, and the checks every form gets.

- `render(request, name, status=200, **ctx)`: the page in the request's language, with `w` (the words,
  `dispatcher.web.console.i18n.Words`), the CSP `nonce`, the session (`me`, `can(…)`) and its `csrf`
  token; a `?lang=` is remembered in a cookie.
- `session_of(request)`: the live session (`dispatcher.app.sessions.resume`) or NotLoggedIn (the page
  answers with a redirect to the login page, an htmx request with `HX-Redirect`).
- `checked_form(request, session)`: the POSTed form after the CSRF and Origin checks (Forgery: 403).
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

from jinja2 import Environment, FileSystemLoader, select_autoescape
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import FormData
from starlette.requests import Request
from starlette.responses import HTMLResponse

from dispatcher.app.sessions import Session
from dispatcher.web.console import security
from dispatcher.web.console.i18n import Words, asked_lang, lang_of

TEMPLATES = Path(__file__).parent / "templates"
env = Environment(
    loader=FileSystemLoader(str(TEMPLATES)),
    autoescape=select_autoescape(["html"]),
    trim_blocks=True,
    lstrip_blocks=True,
)
YEAR = 365 * 24 * 3600
env.globals["parse"] = lambda text: datetime.fromisoformat(text) if text else None


class NotLoggedIn(Exception):
    """No live session: the page redirects to the login page (`next` back here)."""


def url_with(request: Request, **changes: Any) -> str:
    """This page's path and query with some parameters changed (None removes one)."""
    params = dict(request.query_params)
    for k, v in changes.items():
        if v is None:
            params.pop(k, None)
        else:
            params[k] = str(v)
    query = urlencode(params)
    return request.url.path + (f"?{query}" if query else "")


def render(request: Request, name: str, status: int = 200, **ctx: Any) -> HTMLResponse:
    """The template `name` as a page (see the module doc)."""
    from dispatcher.app.identity import Permission, allows

    words = Words(lang_of(request))
    session: Session | None = getattr(request.state, "session", None)
    other = "en" if words.rtl else "fa"
    html = env.get_template(name).render(
        w=words,
        _=words,
        nonce=getattr(request.state, "nonce", ""),
        me=session.actor if session else None,
        csrf=ctx.pop("csrf", None) or (session.csrf if session else ""),
        can=lambda p: session is not None and allows(session.actor.role, Permission[p]),
        path=request.url.path,
        switch_url=url_with(request, lang=other),
        switch_label="English" if words.rtl else "فارسی",
        url_with=lambda **c: url_with(request, **c),
        **ctx,
    )
    response = HTMLResponse(html, status_code=status)
    asked = asked_lang(request)
    if asked is not None:
        response.set_cookie(security.LANG_COOKIE, asked.value, max_age=YEAR, path="/", samesite="lax")
    return response


async def session_of(request: Request) -> Session:
    """The request's live session (kept in `request.state.session`); NotLoggedIn without one."""
    from dispatcher.app.identity import Unauthenticated
    from dispatcher.app.sessions import resume

    token = security.read_cookie(request, security.SESSION_COOKIE)
    if not token:
        raise NotLoggedIn()
    try:
        session = await run_in_threadpool(resume, request.app.state.settings, token)
    except Unauthenticated:
        raise NotLoggedIn() from None
    request.state.session = session
    return session


async def checked_form(request: Request, session: Session) -> FormData:
    """The form, once its CSRF token and Origin pass (security.Forgery otherwise)."""
    form = await request.form(max_files=0)  # no form here takes a file (the upload page reads its own)
    given = form.get("csrf")
    security.check_csrf(
        request,
        session.csrf,
        (given if isinstance(given, str) else None) or request.headers.get("x-csrf-token"),
    )
    return form


def text(form: FormData, name: str) -> str:
    """A text field of the form ('' when absent)."""
    value = form.get(name)
    return value.strip() if isinstance(value, str) else ""
