"""What support asks first (every message a number got), the suppression list, the providers, and the
purge of finished campaigns' numbers (admins)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Query, Request
from pydantic import BaseModel, Field

from campaigns.store import lookup
from dispatcher import app
from dispatcher.app.shapes import suppressions_json
from dispatcher.web.auth import (
    CanAddOptouts,
    CanManage,
    CanRead,
    CanRemoveOptouts,
)
from dispatcher.web.routers.common import run, settings_of, store_of, with_actor

router = APIRouter(tags=["recipients and opt-outs"])


@router.get("/recipients", summary="Every message a number got, across campaigns (newest first)")
async def messages_to(
    request: Request,
    actor: CanRead,
    phone: str = Query(..., description="the number as people write it: 0912…, +98912…, ۰۹۱۲…"),
) -> dict[str, Any]:
    e164 = app.phones_or_fail([phone])[0]
    rows = await run(lookup.messages_to, store_of(request).engine, e164)
    return {"phone": e164, "messages": rows}


class OptoutsIn(BaseModel):
    phones: list[str] = Field(..., min_length=1, max_length=10000)
    reason: str = "added by hand"


@router.get("/optouts", summary="The suppression list (optouts --json)")
async def optouts(request: Request, actor: CanRead) -> dict[str, Any]:
    found = await run(app.suppressions, settings_of(request))
    return suppressions_json(found)


@router.post("/optouts", summary="Suppress numbers (optouts add)")
async def optouts_add(request: Request, body: OptoutsIn, actor: CanAddOptouts) -> dict[str, Any]:
    done = await run(with_actor, app.suppress, actor, settings_of(request), body.phones, body.reason)
    return {"added": done.changed, "already": done.unchanged}


@router.delete("/optouts/{phone}", summary="Take a number off the suppression list (optouts remove)")
async def optouts_remove(request: Request, phone: str, actor: CanRemoveOptouts) -> dict[str, Any]:
    done = await run(with_actor, app.unsuppress, actor, settings_of(request), [phone])
    if not done.changed:
        from dispatcher.app import NoCampaign

        raise NoCampaign(f"{phone} is not on the suppression list")
    return {"removed": done.changed}


@router.get(
    "/providers", summary="Credentials and balance of every configured provider (providers check --json)"
)
async def providers(request: Request, actor: CanRead) -> list[dict[str, Any]]:
    rows = await run(app.check_providers, settings_of(request))
    return [r.as_json() for r in rows]


class PurgeIn(BaseModel):
    older_than_days: int = Field(..., description="campaigns that finished more than this many days ago")


@router.post(
    "/purge",
    summary="Remove the numbers, columns and texts of campaigns finished more than N days ago (purge --json)",
    tags=["data"],
)
async def purge(request: Request, body: PurgeIn, actor: CanManage) -> dict[str, Any]:
    from dispatcher.app.purge import purge as purge_campaigns

    done = await run(purge_campaigns, settings_of(request), body.older_than_days, actor=actor)
    return done.as_json()
