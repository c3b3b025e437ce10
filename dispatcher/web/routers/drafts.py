"""`/api/v1/drafts`: the console's two steps. Check a file (the same form as creating a campaign) and
keep the rows the check kept; send exactly those later, with the suppression list applied again."""

from __future__ import annotations

from fastapi import APIRouter, Request, Response

from dispatcher.app.drafts import check_draft, send_draft
from dispatcher.web.auth import (
    CanSend,
    CanUpload,
    principal,
)
from dispatcher.web.forms import send_request
from dispatcher.web.idempotency import once
from dispatcher.web.routers.campaigns import CREATE_BODY
from dispatcher.web.routers.common import run, settings_of, store_of, upload_of, with_actor
from dispatcher.web.wording import preflight_for_api

router = APIRouter(prefix="/drafts", tags=["drafts"])


@router.post(
    "",
    status_code=201,
    summary="Check a file and keep it as a draft (24 hours)",
    openapi_extra=CREATE_BODY,
)
async def create_draft(request: Request, actor: CanUpload) -> Response:
    up = await upload_of(request)
    try:
        request_ = send_request(up)
        callback = up.fields.get("callback_url") or None
        if "dry_run" in up.fields:
            from dispatcher.app import BadInput

            raise BadInput("dry_run does not go with a draft: a draft is a check that stores no campaign")

        async def work() -> tuple[int, dict]:
            body = await run(
                check_draft,
                settings_of(request),
                request_,
                principal(actor),
                callback_url=callback,
                callback_key_id=getattr(actor, "key_id", None),
            )
            return 201, preflight_for_api(body)

        return await once(request, store_of(request).engine, principal(actor), up.digest, work)
    finally:
        up.discard()


@router.post(
    "/{draft_id}/send", status_code=201, summary="Send a draft: a campaign from exactly its checked rows"
)
async def send(request: Request, draft_id: int, actor: CanSend) -> Response:
    async def work() -> tuple[int, dict]:
        return 201, await run(with_actor, send_draft, actor, settings_of(request), draft_id, principal(actor))

    return await once(request, store_of(request).engine, principal(actor), f"draft {draft_id}", work)
