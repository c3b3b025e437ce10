"""Who is asking: `Authorization: Bearer KEY`, and nothing else.

A request is authenticated by its bearer key alone (`dispatcher.app.identity.authenticate_key`): the API
never reads a cookie, so a browser's session cannot be ridden by another site (no CSRF token is needed
or read for a bearer request). `needs(Permission.X)` is the dependency an endpoint declares; 401 without
a valid key, 403 when its role lacks the permission (dispatcher/web/errors.py).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Annotated, Any

from fastapi import Depends, Request
from starlette.concurrency import run_in_threadpool


def bearer_token(request: Request) -> str | None:
    """The key of `Authorization: Bearer KEY`, or None. Cookies are not looked at."""
    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    token = token.strip()
    return token if scheme.lower() == "bearer" and token else None


async def current_actor(request: Request) -> Any:
    """The `Actor` of the request's bearer key (raises identity.Unauthenticated: 401)."""
    from dispatcher.app import identity

    token = bearer_token(request)
    if token is None:
        raise identity.Unauthenticated("no API key: send the header Authorization: Bearer KEY")
    settings = request.app.state.settings
    actor = await run_in_threadpool(identity.authenticate_key, settings, token)
    request.state.actor = actor
    return actor


def needs(permission: str) -> Callable[[Request], Awaitable[Any]]:
    """A dependency: the actor, once its role allows `permission` (a `Permission` member's name)."""

    async def dependency(request: Request) -> Any:
        from dispatcher.app import identity

        actor = await current_actor(request)
        identity.require(actor, identity.Permission[permission])
        return actor

    dependency.__name__ = f"needs_{permission.lower()}"
    return dependency


def principal(actor: Any) -> str:
    """Whose idempotency keys and drafts these are: `key:ID` for an API key, else the actor's name."""
    key_id = getattr(actor, "key_id", None)
    return f"key:{key_id}" if key_id is not None else str(getattr(actor, "who", "anonymous"))


# The dependencies endpoints declare, one per permission (dispatcher.app.identity.Permission).
Authenticated = Annotated[Any, Depends(current_actor)]
CanRead = Annotated[Any, Depends(needs("READ"))]
CanUpload = Annotated[Any, Depends(needs("UPLOAD"))]
CanSend = Annotated[Any, Depends(needs("SEND"))]
CanAddOptouts = Annotated[Any, Depends(needs("OPTOUT_ADD"))]
CanRemoveOptouts = Annotated[Any, Depends(needs("OPTOUT_REMOVE"))]
CanManage = Annotated[Any, Depends(needs("MANAGE"))]
