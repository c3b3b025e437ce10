"""What the routers share: the settings, the store, running a use case off the event loop, and the
upload's folder and cap."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

from fastapi import Request
from starlette.concurrency import run_in_threadpool

from campaigns.store import Store
from dispatcher.app import open_store
from dispatcher.config import AppSettings
from dispatcher.web.forms import Upload, max_upload_bytes, read_upload, upload_dir

T = TypeVar("T")


def settings_of(request: Request) -> AppSettings:
    return request.app.state.settings


def store_of(request: Request) -> Store:
    """The process's store of the app's database (`dispatcher.app.open_store`: one engine and pool per
    database, migrated once; looked up at each request, so a SQLite file made anew is the new file)."""
    store = open_store(settings_of(request))
    assert store is not None
    return store


async def run(fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
    """A use case in the thread pool: long work (a million-row upload) never blocks the server."""
    return await run_in_threadpool(fn, *args, **kwargs)


async def upload_of(request: Request) -> Upload:
    env = settings_of(request).env
    return await read_upload(request, upload_dir(env), max_upload_bytes(env))


def with_actor(fn: Callable[..., T], actor: Any, *args: Any, **kwargs: Any) -> T:
    """Call a use case as `actor` (recorded in the audit) where it takes one."""
    import inspect

    if "actor" in inspect.signature(fn).parameters:
        kwargs["actor"] = actor
    return fn(*args, **kwargs)
