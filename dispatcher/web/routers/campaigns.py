"""`/api/v1/campaigns`: create (a file or a JSON list), list, status, pause, resume, cancel.

Bodies are the CLI's `--json` outputs: `send --json` (create), `summary --json` rows (list, with the
next page's cursor in `X-Next-Cursor`), `status --json` (one campaign, and the answer to a control).
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Query, Request, Response

from dispatcher import app
from dispatcher.app import BadInput, Control
from dispatcher.app.submit import submit
from dispatcher.web.auth import (
    CanRead,
    CanSend,
    CanUpload,
    principal,
)
from dispatcher.web.forms import flag, send_request
from dispatcher.web.idempotency import once
from dispatcher.web.routers.common import run, settings_of, store_of, upload_of, with_actor
from dispatcher.web.wording import preflight_for_api

router = APIRouter(prefix="/campaigns", tags=["campaigns"])
_TEXT = {"type": "string"}
_FIELDS = {
    name: _TEXT
    for name in (
        "provider", "message", "name", "at", "window", "type", "sender", "column", "sheet", "on_unknown",
        "budget", "max_parts", "allow_partial", "allow_duplicate", "skip_recent", "dry_run", "callback_url",
    )
}  # fmt: skip
# The body is read by dispatcher/web/forms.py (streamed), so its shape is declared here for the OpenAPI.
CREATE_BODY = {
    "requestBody": {
        "required": True,
        "content": {
            "multipart/form-data": {
                "schema": {
                    "type": "object",
                    "required": ["file", "provider", "message"],
                    "properties": {"file": {"type": "string", "format": "binary"}, **_FIELDS},
                }
            },
            "application/json": {
                "schema": {
                    "type": "object",
                    "required": ["recipients", "provider", "message"],
                    "properties": {
                        "recipients": {
                            "type": "array",
                            "maxItems": 10000,
                            "items": {"type": "object", "required": ["phone"], "additionalProperties": _TEXT},
                        },
                        **_FIELDS,
                    },
                }
            },
        },
    }
}
CREATE_DOC = """Create a campaign: multipart `file` plus form fields named as `send`'s options (provider,
message, name, at, window, type, sender, column, sheet, on_unknown, budget, max_parts, allow_partial,
allow_duplicate, skip_recent, dry_run, callback_url), or a JSON body with `"recipients": [{"phone", …}]`
(at most 10,000) and the same fields. 201 with `send --json`'s object; 200 and no campaign for dry_run.
An `Idempotency-Key` header makes a retry return the same campaign (another body: 409)."""


@router.post(
    "",
    status_code=201,
    description=CREATE_DOC,
    summary="Create and send a campaign",
    openapi_extra=CREATE_BODY,
)
async def create_campaign(request: Request, actor: CanUpload) -> Response:
    # The role is checked twice: may it upload at all (CanUpload), before a byte of the body is read; then
    # may it send, once the body says whether this is a dry run.
    from dispatcher.app import identity

    settings = settings_of(request)
    up = await upload_of(request)
    stored: list[int] = []  # the campaign this request created, whose rejects file it names
    try:
        dry = flag(up.fields, "dry_run")
        identity.require(actor, identity.Permission.UPLOAD if dry else identity.Permission.SEND)
        callback = up.fields.get("callback_url") or None
        request_ = send_request(up)

        async def work() -> tuple[int, dict]:
            done = await run(
                with_actor,
                submit,
                actor,
                settings,
                request_,
                as_dry_run=dry,
                callback_url=callback,
                callback_key_id=getattr(actor, "key_id", None),
            )
            if done.created and done.campaign is not None:
                stored.append(done.campaign)
            return (201 if done.created else 200), preflight_for_api(done.body)

        return await once(request, store_of(request).engine, principal(actor), up.digest, work)
    finally:
        # A refusal, a dry run or a replay stored no campaign: nothing names their rejects file, which holds
        # phone numbers no purge would ever reach.
        up.discard(keep_rejects=bool(stored))


@router.get("", summary="Campaigns (summary --json rows), a page at a time")
async def list_campaigns(
    request: Request,
    actor: CanRead,
    response: Response,
    since: str | None = Query(None, description="created since: 24h, 7d, or a date-time (Tehran or Jalali)"),
    state: str | None = Query(None, description="only campaigns in this state"),
    cursor: int = Query(0, ge=0, description="the X-Next-Cursor of the previous page"),
    limit: int = Query(100, ge=1, le=1000),
) -> list[dict[str, Any]]:
    settings = settings_of(request)

    def page() -> tuple[list[dict[str, Any]], int | None]:
        rows, after = app.views.campaign_page(settings, state=state, since=since, cursor=cursor, limit=limit)
        return [r.as_json() for r in rows], after

    rows, next_cursor = await run(page)
    if next_cursor is not None:
        response.headers["X-Next-Cursor"] = str(next_cursor)
    return rows


@router.get("/{campaign_id}", summary="A campaign's status (status --json)")
async def campaign_status(request: Request, campaign_id: int, actor: CanRead) -> dict[str, Any]:
    found = await run(app.status, settings_of(request), campaign_id)
    return found.as_json()


async def _control(
    request: Request, campaign_id: int, action: Control, actor: Any, **caps: str | None
) -> dict:
    settings = settings_of(request)

    def act() -> dict[str, Any]:
        # A resumed campaign is sent by the serve loop (embedded) or the workers (distributed), not here.
        with_actor(app.control, actor, settings, campaign_id, action, **caps)
        return app.status(settings, campaign_id).as_json()

    return await run(act)


@router.post("/{campaign_id}/pause", summary="Pause at the next chunk; the status after")
async def pause(request: Request, campaign_id: int, actor: CanSend) -> dict[str, Any]:
    return await _control(request, campaign_id, Control.PAUSE, actor)


@router.post(
    "/{campaign_id}/resume", summary="Resume (optionally raising budget / max_parts); the status after"
)
async def resume(request: Request, campaign_id: int, actor: CanSend) -> dict[str, Any]:
    body: dict[str, Any] = {}
    if await request.body():
        try:
            body = await request.json()
        except ValueError:
            raise BadInput(
                'the body is not JSON; send {"budget": "50,000"} or {"max_parts": 400}, or nothing'
            ) from None
    if not isinstance(body, dict) or set(body) - {"budget", "max_parts"}:
        raise BadInput("resume takes budget and max_parts only")
    caps = {k: (None if body.get(k) is None else str(body[k])) for k in ("budget", "max_parts")}
    return await _control(request, campaign_id, Control.RESUME, actor, **caps)


@router.post("/{campaign_id}/cancel", summary="Cancel: unsent recipients become cancelled; the status after")
async def cancel(request: Request, campaign_id: int, actor: CanSend) -> dict[str, Any]:
    return await _control(request, campaign_id, Control.CANCEL, actor)
