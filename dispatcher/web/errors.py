"""Errors as the API answers them: `{"error": {"kind", "message", …}}` with the status of its kind, never
a traceback or a secret.

| status | kind | when |
|---|---|---|
| 400 | `bad_input` | what the CLI refuses with exit 2: the same one line (row, field, fix); a provider the request chose that has no credential on this server (its name and the variable to set) |
| 401 | `unauthenticated` | no bearer key, or an unknown, revoked or expired one |
| 403 | `forbidden` | the key's role does not allow the action |
| 404 | `not_found` | no such campaign, draft or number |
| 409 | `conflict` | an Idempotency-Key reused for another body, a draft sent already, a state that forbids it |
| 413 | `too_large` | an upload over SMSDISPATCH_MAX_UPLOAD_MB, a workbook that inflates past its guard |
| 422 | `refused` | a preflight check refused it (with `check` and `override`), as the CLI's exit 3 |
| 429 | `throttled` | too many attempts (with `retry_after`) |
| 502 | `provider` | a provider is unreachable or refuses our credentials (the server's problem) |
| 500 | `internal` | anything else: one line, logged on the server with its traceback |
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from campaigns.load.xlsx import InflationError
from dispatcher.app import BAD_INPUT, NoCampaign, Refused
from dispatcher.app.campaign import StateConflict
from dispatcher.app.drafts import DraftTaken, NoDraft
from dispatcher.app.preflight.gather import CredentialsRejected, ProviderUnreachable
from dispatcher.web.wording import for_api
from workers.errors import MissingCredential, ProviderError

log = logging.getLogger("dispatcher.web")


class ApiError(Exception):
    """An answer other than success, raised by the web layer itself."""

    def __init__(self, status: int, kind: str, message: str, **extra: Any) -> None:
        super().__init__(message)
        self.status, self.kind, self.message, self.extra = status, kind, message, extra


class TooLarge(ApiError):
    def __init__(self, message: str) -> None:
        super().__init__(413, "too_large", message)


class Conflict(ApiError):
    def __init__(self, message: str) -> None:
        super().__init__(409, "conflict", message)


def error_body(kind: str, message: str, **extra: Any) -> dict[str, Any]:
    return {"error": {"kind": kind, "message": message, **extra}}


def answer(
    status: int, kind: str, message: str, headers: dict[str, str] | None = None, **extra: Any
) -> JSONResponse:
    return JSONResponse(error_body(kind, message, **extra), status_code=status, headers=headers)


def classify(exc: BaseException, words: Callable[[str], str] = for_api) -> JSONResponse:
    """The answer for an exception raised by a use case or the web layer. `words`: the use case's line
    (written as the CLI says it) in the caller's words: the API's fields and endpoints by default
    (dispatcher/web/wording.py); the console translates the line itself and passes it unchanged."""
    if isinstance(exc, ApiError):
        return answer(exc.status, exc.kind, exc.message, **exc.extra)
    if isinstance(exc, Refused):
        override = words(exc.override) if exc.override else exc.override
        return answer(422, "refused", words(str(exc)), check=exc.check, override=override)
    if isinstance(exc, NoCampaign):  # never the server's database path or a command to run
        return answer(404, "not_found", exc.public)
    if isinstance(exc, NoDraft):
        return answer(404, "not_found", words(str(exc)))
    if isinstance(exc, DraftTaken | StateConflict):
        return answer(409, "conflict", words(str(exc)))
    if isinstance(exc, MissingCredential):  # the request's provider is not configured here: never a 502
        return answer(400, "bad_input", _one_line(exc), provider=exc.provider)
    if isinstance(exc, CredentialsRejected | ProviderError | ProviderUnreachable):
        return answer(502, "provider", words(_one_line(exc)))
    if isinstance(exc, InflationError):
        return answer(413, "too_large", str(exc))
    if isinstance(exc, BAD_INPUT):
        return answer(400, "bad_input", words(_one_line(exc)))
    identity = _identity_answer(exc)
    if identity is not None:
        return identity
    log.exception("internal error: %s", type(exc).__name__)
    return answer(500, "internal", f"internal error ({type(exc).__name__}); see the server's log")


def _one_line(exc: BaseException) -> str:
    return " ".join(str(exc).split()) or type(exc).__name__


def _identity_answer(exc: BaseException) -> JSONResponse | None:
    """401/403/429 for the identity errors (dispatcher.app.identity), when that module is there."""
    try:
        from dispatcher.app import identity
    except ImportError:
        return None
    if isinstance(exc, identity.Unauthenticated):
        return answer(401, "unauthenticated", str(exc), headers={"WWW-Authenticate": "Bearer"})
    if isinstance(exc, identity.Forbidden):
        return answer(403, "forbidden", str(exc))
    if isinstance(exc, identity.Throttled):
        retry = int(getattr(exc, "retry_after_seconds", 0) or 0)
        return answer(429, "throttled", str(exc), headers={"Retry-After": str(retry)}, retry_after=retry)
    return None


def install(app: FastAPI) -> None:
    """Register the handlers: every exception becomes an error body."""

    async def _known(request: Request, exc: Exception) -> JSONResponse:
        return classify(exc)

    known: list[type[BaseException]] = [
        ApiError,
        Refused,
        CredentialsRejected,
        ProviderError,
        ProviderUnreachable,
        *BAD_INPUT,
    ]
    try:
        from dispatcher.app.identity import IdentityError

        known.append(IdentityError)
    except ImportError:
        pass
    for cls in known:  # handled where they are raised: no traceback in the log for a caller's mistake
        app.add_exception_handler(cls, _known)
    app.add_exception_handler(Exception, _known)  # anything else: 500, its traceback in the server's log

    @app.exception_handler(RequestValidationError)
    async def _invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        first = exc.errors()[0] if exc.errors() else {}
        where = ".".join(str(x) for x in first.get("loc", ()) if x != "body")
        return answer(
            400, "bad_input", f"{where or 'request'}: {first.get('msg', 'invalid')}; fix the request"
        )

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        kinds = {
            404: "not_found",
            405: "bad_input",
            401: "unauthenticated",
            403: "forbidden",
            413: "too_large",
        }
        return answer(exc.status_code, kinds.get(exc.status_code, "bad_input"), str(exc.detail))
