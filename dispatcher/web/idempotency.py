"""`Idempotency-Key`: a retried request gets the first one's answer, and never does the work twice.

The key is claimed by inserting a unique row in the database BEFORE the work (campaigns.store.apirequests),
so two identical requests racing, in one process or in two `web` processes, create one campaign: the
second waits for the first's answer and returns it. The same key with another body is 409. A request that
fails (an error answer: nothing was created) frees its key for a retry. Keys are per principal (an API key
cannot see another's) and live 24 hours.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import time
from collections.abc import Awaitable, Callable
from typing import Any

from fastapi import Request
from fastapi.responses import JSONResponse
from starlette.concurrency import run_in_threadpool

from campaigns.clock import utcnow
from campaigns.store import apirequests as kept
from dispatcher.app import BadInput
from dispatcher.web.errors import Conflict

HEADER = "idempotency-key"
WAIT_FOR_FIRST = 900.0  # seconds a retry waits for the first request's answer (a 1M-row upload's time)


def key_of(request: Request) -> str | None:
    key = request.headers.get(HEADER)
    if key is None:
        return None
    key = key.strip()
    if not key or len(key) > 200 or not key.isprintable():
        raise BadInput("Idempotency-Key: give 1 to 200 printable characters (a UUID is usual)")
    return key


async def once(
    request: Request,
    engine: Any,
    principal: str,
    digest: str,
    work: Callable[[], Awaitable[tuple[int, dict]]],
) -> JSONResponse:
    """Answer `work()`'s (status, body), once per Idempotency-Key (none: every time)."""
    key = key_of(request)
    if key is None:
        status, body = await work()
        return JSONResponse(body, status_code=status)
    request_hash = hashlib.sha256(f"{request.method} {request.url.path}\n{digest}".encode()).hexdigest()
    deadline = time.monotonic() + WAIT_FOR_FIRST
    while True:
        found = await run_in_threadpool(kept.claim_key, engine, principal, key, request_hash, utcnow())
        if found is None:
            break
        if found.request_hash != request_hash:
            raise Conflict(
                f"Idempotency-Key {key!r} was used for another request; use a new key for a new request"
            )
        while found is not None and found.status_code is None:
            if time.monotonic() > deadline:
                raise Conflict(
                    f"the first request with Idempotency-Key {key!r} is still being worked on; retry later"
                )
            await asyncio.sleep(0.2)
            found = await run_in_threadpool(kept.read_key, engine, principal, key)
        if found is not None and found.response is not None:
            return JSONResponse(
                json.loads(found.response),
                status_code=found.status_code,
                headers={"Idempotent-Replayed": "true"},
            )
        # freed (the first request failed): claim it again
    try:
        status, body = await work()
    except BaseException:
        await run_in_threadpool(kept.release_key, engine, principal, key)
        raise
    await run_in_threadpool(kept.complete_key, engine, principal, key, status, json.dumps(body, default=str))
    return JSONResponse(body, status_code=status)
