"""The campaigns page: every campaign with the `summary` numbers, filtered by state and creation date,
newest first, a page at a time (`dispatcher.app.views.campaign_page`)."""

from __future__ import annotations

from fastapi import APIRouter, Request
from starlette.concurrency import run_in_threadpool
from starlette.responses import Response

from campaigns.states import CampaignState
from dispatcher import app
from dispatcher.app import BAD_INPUT
from dispatcher.web.console.i18n import latin_digits
from dispatcher.web.console.render import render, session_of

router = APIRouter()
PER_PAGE = 25


@router.get("/campaigns")
async def campaigns(request: Request) -> Response:
    await session_of(request)
    settings = request.app.state.settings
    state = request.query_params.get("state") or None
    since = latin_digits(request.query_params.get("since") or "").strip() or None
    cursor_text = request.query_params.get("before") or "0"
    cursor = int(cursor_text) if cursor_text.isdigit() else 0
    error = None
    try:
        rows, below = await run_in_threadpool(
            app.views.campaign_page,
            settings,
            state=state,
            since=since,
            cursor=cursor,
            limit=PER_PAGE,
            newest_first=True,
        )
    except BAD_INPUT as exc:  # a filter that cannot be read: the page, with the line that says why
        rows, below, error = [], None, " ".join(str(exc).split())
    totals = {
        "recipients": sum(r.recipients for r in rows),
        "sent": sum(r.sent for r in rows),
        "delivered": sum(r.delivered for r in rows),
        "failed": sum(r.counts.get("failed", 0) for r in rows),
        "parts": sum(r.parts for r in rows),
        "cost": sum(r.cost_estimated or 0 for r in rows),
    }
    return render(
        request,
        "campaigns.html",
        rows=rows,
        totals=totals,
        states=list(CampaignState),
        state=state or "",
        since=request.query_params.get("since") or "",
        next_before=below,
        first_page=not cursor,
        error=error,
    )
