"""A new campaign in three requests, as GOV.UK Notify sends a file: upload (the form), check (the
preflight as a page, `GET /drafts/{id}`), send (exactly the rows checked: `app.drafts.send_draft`).

The upload is streamed to disk and capped like the API's (`dispatcher.web.forms.read_upload`); the
check is `app.drafts.check_draft(..., refuse=False)`, so a refused check is shown with its override
(ticked, it checks again over the kept file: `app.checked.recheck_request`) and cannot be sent. The
test send sends the three previews to the numbers typed (`app.checked.test_draft`).
"""

from __future__ import annotations

import shutil
from datetime import datetime
from pathlib import Path
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import FileResponse
from starlette.concurrency import run_in_threadpool
from starlette.responses import RedirectResponse, Response

from dispatcher.app import BAD_INPUT, Refused
from dispatcher.app.accounts import send_choices
from dispatcher.app.identity import Permission, require
from dispatcher.app.preflight.gather import ProviderUnreachable
from dispatcher.app.sessions import Session
from dispatcher.web.console import security
from dispatcher.web.console.i18n import latin_digits
from dispatcher.web.console.lines import CONTROLS
from dispatcher.web.console.render import checked_form, render, session_of, text
from dispatcher.web.forms import ALIASES, max_upload_bytes, read_upload, send_request, upload_dir

router = APIRouter()
# A check's override, where one option is the override: check code -> (option, value when ticked).
OVERRIDES = {
    "credit": ("allow_partial", True),
    "duplicate": ("allow_duplicate", True),
    "recent": ("skip_recent", True),
    "opt-out-token": ("campaign_type", "transactional"),
    "no-window": ("campaign_type", "transactional"),
}


def _override_label(field: str, value: object) -> str:
    """The check box of an override: its control's label, as every line naming the CLI's option calls it
    (`lines.CONTROLS`: `--allow-partial`, `--type transactional`)."""
    option = "--" + {v: k for k, v in ALIASES.items()}.get(field, field).replace("_", "-")
    return CONTROLS[option if value is True else f"{option} {value}"]


OVERRIDE_LABELS = {check: _override_label(*how) for check, how in OVERRIDES.items()}
CHECK_TITLES = {  # each preflight check in words (README, "Checks"); its line follows as the CLI prints it
    "credit": "The credit is below the cost",
    "duplicate": "The same list and text as an unfinished campaign",
    "recent": "Some recipients got a message recently",
    "opt-out-token": "The text has no opt-out token (لغو11)",
    "link": "The text has a link",
    "parts": "The messages are long",
    "empty-placeholder": "A placeholder is empty for some rows",
    "no-window": "A promotional campaign with no send window",
    "route": "A provider of the route is skipped",
}
LATIN = ("at", "budget", "max_parts", "window", "sheet")  # Persian digits typed here read as Latin


def _form_page(request: Request, status: int = 200, **ctx: Any) -> Response:
    choices = send_choices(request.app.state.settings)
    return render(request, "new.html", status, choices=choices, values=ctx.pop("values", {}), **ctx)


@router.get("/campaigns/new")
async def new_campaign(request: Request) -> Response:
    session = await session_of(request)
    require(session.actor, Permission.UPLOAD)
    return await run_in_threadpool(_form_page, request)


@router.post("/campaigns/new")
async def check(request: Request) -> Response:
    """Upload and check: the draft's check page, or the form again with the one line that went wrong."""
    from dispatcher.app.drafts import check_draft

    session = await session_of(request)
    if not security.same_origin(request):
        raise security.Forgery("refused: this request came from another site")
    require(session.actor, Permission.UPLOAD)
    settings = request.app.state.settings
    root = upload_dir(settings.env) / "console"
    await run_in_threadpool(sweep, root)
    up = await read_upload(request, root, max_upload_bytes(settings.env))
    try:
        security.check_csrf(request, session.csrf, up.fields.pop("csrf", None))
        for name in LATIN:
            if name in up.fields:
                up.fields[name] = latin_digits(up.fields[name])
        if up.file is not None and up.file.stat().st_size == 0:
            up.discard(keep_rejects=False)
            up.file = None
        values = dict(up.fields)
        try:
            request_ = send_request(up)
            answer = await run_in_threadpool(
                check_draft, settings, request_, _principal(session), refuse=False
            )
        except (*BAD_INPUT, Refused) as exc:
            shutil.rmtree(up.folder, ignore_errors=True)
            line = " ".join(str(exc).split())
            return await run_in_threadpool(lambda: _form_page(request, 400, values=values, error=line))
    except BaseException:
        shutil.rmtree(up.folder, ignore_errors=True)
        raise
    return RedirectResponse(f"/drafts/{answer['draft']}", status_code=303)


def sweep(root: Path) -> None:
    """Remove the uploaded files kept for drafts that were never sent and have expired (a sent draft's
    file is removed at once); rejects files stay, since campaigns link to them."""
    import time

    from campaigns.store.apirequests import DRAFT_TTL

    if not root.is_dir():
        return
    old = time.time() - DRAFT_TTL.total_seconds() - 3600
    for folder in root.iterdir():
        for path in folder.iterdir() if folder.is_dir() else ():
            if not path.name.endswith(".rejects.csv") and path.stat().st_mtime < old:
                path.unlink(missing_ok=True)
        if folder.is_dir() and not any(folder.iterdir()):
            folder.rmdir()


def _principal(session: Session) -> str:
    return session.actor.principal or session.actor.who


@router.get("/drafts/{draft_id:int}")
async def draft(request: Request, draft_id: int) -> Response:
    """The check page (GOV.UK Notify's check_messages): what to fix first, then every number."""
    return await _check_page(request, draft_id)


async def _check_page(
    request: Request, draft_id: int, error: str | None = None, status: int = 400
) -> Response:
    """The check page; `error`: the line of the form that failed (`status`: 400, 422 for a refusal), never
    read from the URL."""
    from dispatcher.app.checked import draft_view, rejected_rows

    session = await session_of(request)
    settings = request.app.state.settings
    view = await run_in_threadpool(draft_view, settings, draft_id, _principal(session))
    if view.campaign_id is not None:
        return RedirectResponse(f"/campaigns/{view.campaign_id}", status_code=303)
    rows = await run_in_threadpool(rejected_rows, view.rejects_file)
    tests = [int(x) for x in request.query_params.get("tests", "").split(",") if x.isdigit()]
    start = view.check.get("start") or {}
    return render(
        request,
        "check.html",
        status if error else 200,
        d=view,
        a=view.answer,
        c=view.check,
        rejected_rows=rows,
        overrides=OVERRIDES,
        override_labels=OVERRIDE_LABELS,
        check_titles=CHECK_TITLES,
        tests=tests,
        error=error,
        start_at=_moment(start.get("at")),
        first_send=_moment(start.get("first_send")),
    )


@router.get("/drafts/{draft_id:int}/rejects.csv")
async def draft_rejects(request: Request, draft_id: int) -> Response:
    from dispatcher.app.checked import draft_view

    session = await session_of(request)
    view = await run_in_threadpool(draft_view, request.app.state.settings, draft_id, _principal(session))
    path = view.rejects_file
    if not path.is_file():
        from dispatcher.app import BadInput

        raise BadInput("this check rejected no row")
    name = f"{Path(view.check.get('file_name') or 'upload').stem}.rejects.csv"
    return FileResponse(path, media_type="text/csv; charset=utf-8", filename=name)


@router.post("/drafts/{draft_id:int}/recheck")
async def recheck(request: Request, draft_id: int) -> Response:
    """Check again over the kept file: the message edited, overrides ticked. A new draft."""
    from dispatcher.app.checked import draft_view, recheck_request
    from dispatcher.app.drafts import check_draft

    session = await session_of(request)
    form = await checked_form(request, session)
    require(session.actor, Permission.UPLOAD)
    settings = request.app.state.settings
    view = await run_in_threadpool(draft_view, settings, draft_id, _principal(session))
    changes: dict[str, Any] = {}
    if text(form, "message"):
        changes["message"] = text(form, "message")
    for code in form.getlist("override"):
        if code in OVERRIDES:
            option, value = OVERRIDES[code]
            changes[option] = value
    try:
        request_ = recheck_request(view, changes)
        answer = await run_in_threadpool(check_draft, settings, request_, _principal(session), refuse=False)
    except (*BAD_INPUT, Refused) as exc:
        return await _check_page(request, draft_id, _line(exc))
    return RedirectResponse(f"/drafts/{answer['draft']}", status_code=303)


@router.post("/drafts/{draft_id:int}/test")
async def test(request: Request, draft_id: int) -> Response:
    """Send the previews to the numbers typed (one test campaign per preview)."""
    from dispatcher.app.checked import test_draft

    session = await session_of(request)
    form = await checked_form(request, session)
    phones = [p for p in latin_digits(text(form, "phones")).replace("،", ",").split(",") if p.strip()]
    try:
        ids = await run_in_threadpool(
            lambda: test_draft(
                request.app.state.settings, draft_id, _principal(session), phones, actor=session.actor
            )
        )
    except BAD_INPUT as exc:
        return await _check_page(request, draft_id, _line(exc))
    return RedirectResponse(f"/drafts/{draft_id}?tests=" + ",".join(map(str, ids)), status_code=303)


@router.post("/drafts/{draft_id:int}/send")
async def send(request: Request, draft_id: int) -> Response:
    """Send exactly what was checked; the campaign's page."""
    from dispatcher.app.checked import draft_view
    from dispatcher.app.drafts import DraftTaken, NoDraft, send_draft

    session = await session_of(request)
    await checked_form(request, session)
    settings = request.app.state.settings
    await run_in_threadpool(draft_view, settings, draft_id, _principal(session))  # only one's own drafts
    try:
        done = await run_in_threadpool(
            lambda: send_draft(settings, draft_id, _principal(session), actor=session.actor)
        )
    except (*BAD_INPUT, Refused, ProviderUnreachable) as exc:  # a provider not configured since the check,
        # the credit spent meanwhile, the provider not answering: the check page says what
        if isinstance(exc, DraftTaken | NoDraft):
            raise
        status = 422 if isinstance(exc, Refused) else 502 if isinstance(exc, ProviderUnreachable) else 400
        return await _check_page(request, draft_id, _line(exc), status)
    return RedirectResponse(f"/campaigns/{done['campaign']}", status_code=303)


@router.get("/drafts/{draft_id:int}/{action}")  # after rejects.csv: its own path wins
async def draft_again(request: Request, draft_id: int, action: str) -> Response:
    """The address of a form's answer, opened again (the language switch of an error): the check page."""
    return RedirectResponse(f"/drafts/{draft_id}", status_code=303)


def _moment(found: dict | None) -> datetime | None:
    return datetime.fromisoformat(found["at"]) if found else None


def _line(exc: BaseException) -> str:
    return " ".join(str(exc).split())[:500]
