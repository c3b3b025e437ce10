"""The browser's side of security (OWASP ASVS 5.0 chapters 3 and 7; shared/research/console.md §7-8).

- Headers on every console response: a Content-Security-Policy with a fresh nonce per request and no
  'unsafe-inline' (scripts and styles only from this server or carrying the nonce), `frame-ancestors
  'self'`, `object-src 'none'`, `base-uri 'none'`, `form-action 'self'`; `X-Content-Type-Options: nosniff`,
  `Referrer-Policy: same-origin`, `X-Frame-Options: SAMEORIGIN`, and HSTS on HTTPS. The JSON API and
  its docs page keep their own (the docs page runs Swagger UI's inline script).
- The session cookie: HttpOnly, SameSite=Lax, Path=/, and Secure unless the original request was plain
  HTTP from loopback (`is_secure`); a secure one is named `__Host-smsd_session` (ASVS 3.3.1, 3.3.3).
  Behind a proxy listed in `smsdispatch web --trusted-proxies`, uvicorn rewrites the scheme and client
  from X-Forwarded-Proto/-For, so the proxy's word decides; nobody else's X-Forwarded-* is read.
- CSRF (ASVS 3.5.1): every state-changing request of a session carries the session's token, in the form
  field `csrf` or the header `X-CSRF-Token`, compared in constant time; a request whose `Origin` names
  another origin (or `null`) is refused first. The login form, before any session, uses a double-submit
  token: a random cookie and the same value in the form.
"""

from __future__ import annotations

import hmac
import ipaddress
import secrets

from starlette.requests import Request
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

SESSION_COOKIE = "smsd_session"
LOGIN_COOKIE = "smsd_login"
LANG_COOKIE = "smsd_lang"
NOT_CONSOLE = ("/api/", "/healthz")


class Forgery(Exception):
    """A state-changing request without the right CSRF token, or from another origin (HTTP 403)."""


def is_secure(request: Request) -> bool:
    """False only for plain HTTP from a loopback client (a developer's own machine); True otherwise, so a
    session cookie is never sent in clear over a network."""
    if request.url.scheme == "https":
        return True
    host = request.client.host if request.client else ""
    try:
        return not ipaddress.ip_address(host).is_loopback
    except ValueError:
        return host != "localhost"


def cookie_name(request: Request, base: str = SESSION_COOKIE) -> str:
    """`__Host-NAME` when the cookie is Secure (the browser then pins it to this host and path /)."""
    return f"__Host-{base}" if is_secure(request) else base


def set_cookie(
    response: Response, request: Request, base: str, value: str, max_age: int | None = None
) -> None:
    response.set_cookie(
        cookie_name(request, base),
        value,
        max_age=max_age,
        path="/",
        secure=is_secure(request),
        httponly=True,
        samesite="lax",
    )


def drop_cookie(response: Response, request: Request, base: str) -> None:
    response.delete_cookie(
        cookie_name(request, base), path="/", secure=is_secure(request), httponly=True, samesite="lax"
    )


def read_cookie(request: Request, base: str) -> str | None:
    return request.cookies.get(cookie_name(request, base))


def same_origin(request: Request) -> bool:
    """True when the request has no Origin header, or one naming this server's own origin."""
    origin = request.headers.get("origin")
    if origin is None:
        return True
    host = request.headers.get("host", "")
    return origin.lower() == f"{request.url.scheme}://{host}".lower()


def check_csrf(request: Request, expected: str, given: str | None) -> None:
    """Raise Forgery unless the request is same-origin and `given` equals `expected`."""
    if not same_origin(request):
        raise Forgery("refused: this request came from another site")
    if not given or not expected or not hmac.compare_digest(given.encode(), expected.encode()):
        raise Forgery("refused: the form had expired or was not ours; reload the page and try again")


def new_token() -> str:
    return secrets.token_urlsafe(32)


def csp(nonce: str) -> str:
    return (
        "default-src 'self'; "
        f"script-src 'self' 'nonce-{nonce}'; "
        f"style-src 'self' 'nonce-{nonce}'; "
        "img-src 'self' data:; font-src 'self'; connect-src 'self'; "
        "object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'self'"
    )


class SecurityHeaders:
    """ASGI middleware: a nonce for the request (`request.state.nonce`) and the headers above on every
    response outside the JSON API."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"].startswith(NOT_CONSOLE):
            await self.app(scope, receive, send)
            return
        nonce = secrets.token_urlsafe(18)
        scope.setdefault("state", {})["nonce"] = nonce
        https = scope.get("scheme") == "https"

        async def with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                extra = {
                    b"content-security-policy": csp(nonce).encode(),
                    b"x-content-type-options": b"nosniff",
                    b"x-frame-options": b"SAMEORIGIN",
                    b"referrer-policy": b"same-origin",
                }
                if https:
                    extra[b"strict-transport-security"] = b"max-age=31536000"
                names = {k.lower() for k, _ in headers}
                headers += [(k, v) for k, v in extra.items() if k not in names]
                message["headers"] = headers
            await send(message)

        await self.app(scope, receive, with_headers)
