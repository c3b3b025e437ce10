"""One campaign: its progress live (the `progress` fragment, polled every 2 seconds by htmx until the
campaign ends; the whole page reloads without JavaScript), who sends it and what it waits for, the
delivery chart, pause/resume/cancel behind a confirmation page, the downloads (report as CSV and Excel,
the rejects file) and its history (the audit events). Every number comes from `app.status`, the same
document as `status --json` and the API's `GET /api/v1/campaigns/{id}`."""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

from fastapi import APIRouter, Request
from fastapi.responses import FileResponse
from starlette.background import BackgroundTask
from starlette.concurrency import run_in_threadpool
from starlette.responses import RedirectResponse, Response

from campaigns.clock import utcnow
from campaigns.states import RecipientState
from dispatcher import app
from dispatcher.app import BadInput, Control
from dispatcher.reports.outcomes import DESCRIPTIONS, OUTCOMES
from dispatcher.web.console.render import checked_form, render, session_of

router = APIRouter()
TYPES = {
    "csv": "text/csv; charset=utf-8",
    "xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
}
BAR_STATES = (*OUTCOMES[:5], RecipientState.SENT, RecipientState.SENT_TO_OPERATOR, RecipientState.PENDING)


def _facts(request: Request, campaign_id: int) -> dict:
    status = app.status(request.app.state.settings, campaign_id)
    p, v = status.progress, status.view
    counts = v.counts or {}
    total = max(p.total, 1)
    bars = [(s, counts.get(s, 0), DESCRIPTIONS[s]) for s in BAR_STATES if counts.get(s, 0)]
    return {
        "s": status,
        "v": v,
        "p": p,
        "sent_pct": 100 * p.sent / total,
        "final_pct": 100 * p.final / total,
        "bars": bars,
        "bar_total": sum(n for _, n, _ in bars) or 1,
        "live": not p.finished,
        "now": utcnow(),
    }


@router.get("/campaigns/{campaign_id:int}")
async def campaign(request: Request, campaign_id: int) -> Response:
    await session_of(request)
    from dispatcher.app.notices import for_campaign

    facts = await run_in_threadpool(_facts, request, campaign_id)
    lines = await run_in_threadpool(for_campaign, request.app.state.settings, campaign_id)
    return render(request, "campaign.html", notices=lines, **facts)


@router.get("/campaigns/{campaign_id:int}/progress")
async def progress(request: Request, campaign_id: int) -> Response:
    """The live part of the page (htmx swaps it in place; it stops asking once the campaign ended), and
    the history out of band (what a worker or the clock did: completed, paused at a cap)."""
    await session_of(request)
    facts = await run_in_threadpool(_facts, request, campaign_id)
    polled = request.headers.get("hx-request")  # htmx: the history too; otherwise the fragment alone
    return render(request, "progress_poll.html" if polled else "progress.html", **facts)


@router.get("/campaigns/{campaign_id:int}/confirm/{action}")
async def confirm(request: Request, campaign_id: int, action: str) -> Response:
    """Are you sure? (pause, resume, cancel): a page with the one button that does it."""
    session = await session_of(request)
    if action not in set(Control):
        raise BadInput(f"{action!r}: choose pause, resume or cancel")
    from dispatcher.app.identity import Permission, require

    require(session.actor, Permission.SEND)
    facts = await run_in_threadpool(_facts, request, campaign_id)
    return render(request, "confirm.html", action=action, **facts)


@router.post("/campaigns/{campaign_id:int}/{action}")
async def control(request: Request, campaign_id: int, action: str) -> Response:
    session = await session_of(request)
    form = await checked_form(request, session)
    if action not in set(Control):
        raise BadInput(f"{action!r}: choose pause, resume or cancel")
    budget = form.get("budget") if isinstance(form.get("budget"), str) else None
    await run_in_threadpool(
        app.control,
        request.app.state.settings,
        campaign_id,
        Control(action),
        budget=budget or None,
        actor=session.actor,
    )
    return RedirectResponse(f"/campaigns/{campaign_id}", status_code=303)


@router.get("/campaigns/{campaign_id:int}/report.{fmt}")
async def report(request: Request, campaign_id: int, fmt: str) -> Response:
    """The report as `report --out` writes it (written off the event loop, then streamed)."""
    await session_of(request)
    if fmt not in TYPES:
        raise BadInput(f"report.{fmt}: choose report.csv or report.xlsx")
    folder = Path(tempfile.mkdtemp(prefix="smsdispatch-report-"))
    path = folder / f"campaign-{campaign_id}.{fmt}"
    try:
        await run_in_threadpool(app.report, request.app.state.settings, campaign_id, path)
    except BaseException:
        shutil.rmtree(folder, ignore_errors=True)
        raise
    return FileResponse(
        path,
        media_type=TYPES[fmt],
        filename=path.name,
        background=BackgroundTask(shutil.rmtree, folder, True),
    )


@router.get("/campaigns/{campaign_id:int}/rejects.csv")
async def rejects(request: Request, campaign_id: int) -> Response:
    """The campaign's rejects file: every refused row with its number, value and reason."""
    await session_of(request)
    _, view = await run_in_threadpool(app.campaign_view, request.app.state.settings, campaign_id)
    path = Path(view.rejects_file) if view.rejects_file else None
    if path is None or not path.is_file():
        raise BadInput(f"campaign {campaign_id} has no rejects file on this server")
    return FileResponse(path, media_type=TYPES["csv"], filename=f"campaign-{campaign_id}-rejects.csv")
