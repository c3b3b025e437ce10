"""A campaign's report (CSV or Excel, streamed from a file written off the event loop), its delivery
chart (PNG, dispatcher/reports/chart*), its rejects file (the `rejects_file` its creation named, a path
on the server), and its recipients a page at a time."""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path
from typing import Any

from fastapi import APIRouter, Query, Request, Response
from fastapi.responses import FileResponse
from starlette.background import BackgroundTask

from campaigns.clock import utcnow
from campaigns.states import RecipientState
from campaigns.store import lookup
from dispatcher import app
from dispatcher.app import BadInput, NoCampaign
from dispatcher.web.auth import (
    CanRead,
)
from dispatcher.web.routers.common import run, settings_of, store_of

router = APIRouter(prefix="/campaigns", tags=["reports"])
TYPES = {
    "csv": "text/csv; charset=utf-8",
    "xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
}


def _scratch() -> Path:
    return Path(tempfile.mkdtemp(prefix="smsdispatch-report-"))


@router.get("/{campaign_id}/report", summary="One row per recipient, as `report --out` writes it")
async def report(
    request: Request,
    actor: CanRead,
    campaign_id: int,
    format: str = Query("csv", description="csv or xlsx"),  # noqa: A002 - the query parameter's name
) -> Response:
    if format not in TYPES:
        raise BadInput(f"format={format!r}: choose csv or xlsx")
    folder = _scratch()
    path = folder / f"campaign-{campaign_id}.{format}"
    try:
        await run(app.report, settings_of(request), campaign_id, path)
    except BaseException:
        shutil.rmtree(folder, ignore_errors=True)
        raise
    return FileResponse(
        path,
        media_type=TYPES[format],
        filename=path.name,
        background=BackgroundTask(shutil.rmtree, folder, True),
    )


@router.get("/{campaign_id}/chart.png", summary="Delivery over time (PNG)", response_class=Response)
async def chart(request: Request, campaign_id: int, actor: CanRead) -> Response:
    import importlib.util

    if importlib.util.find_spec("matplotlib") is None:
        raise BadInput("the chart needs matplotlib on the server: pip install 'smsdispatch[chart]'")
    folder = _scratch()

    def draw() -> bytes:
        from dispatcher.reports.chart_operators import campaign_charts

        _, view = app.campaign_view(settings_of(request), campaign_id)
        first = campaign_charts(store_of(request), view, folder / "delivery.png", utcnow())[0]
        return first.read_bytes()

    try:
        png = await run(draw)
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    return Response(png, media_type="image/png")


@router.get(
    "/{campaign_id}/rejects",
    summary="The file's rows refused at the check (row, value, reason, its columns); 404 when none",
    response_class=FileResponse,
)
async def rejects(request: Request, campaign_id: int, actor: CanRead) -> Response:
    _, view = await run(app.campaign_view, settings_of(request), campaign_id)
    path = Path(view.rejects_file) if view.rejects_file else None
    if path is None or not path.is_file() or _only_header(path):
        raise NoCampaign(f"campaign {campaign_id} has no rejected row (or its rejects file was purged)")
    return FileResponse(path, media_type=TYPES["csv"], filename=f"campaign-{campaign_id}-rejects.csv")


def _only_header(path: Path) -> bool:
    with path.open("rb") as fh:
        fh.readline()
        return not fh.readline().strip()


@router.get("/{campaign_id}/recipients", summary="The campaign's recipients, a page at a time")
async def recipients(
    request: Request,
    actor: CanRead,
    response: Response,
    campaign_id: int,
    state: str | None = Query(None, description="only recipients in this state"),
    cursor: int = Query(0, ge=0, description="the X-Next-Cursor of the previous page"),
    limit: int = Query(1000, ge=1, le=10000),
) -> list[dict[str, Any]]:
    if state is not None and state not in set(RecipientState):
        raise BadInput(f"state={state!r}: choose one of {', '.join(RecipientState)}")
    app.campaign_view(settings_of(request), campaign_id)  # NoCampaign: 404
    rows = await run(
        lookup.recipients_of, store_of(request).engine, campaign_id, state=state, after=cursor, limit=limit
    )
    if len(rows) == limit:
        response.headers["X-Next-Cursor"] = str(rows[-1]["id"])
    return rows
