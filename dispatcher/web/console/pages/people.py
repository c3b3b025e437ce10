"""What support and admins look at: a number's history across campaigns, the opt-out list (search, add,
remove), the providers (balance, circuit), and the users and API keys with their roles and daily caps
(admins only). Each page reads or changes through `dispatcher.app`, which checks the permission."""

from __future__ import annotations

from fastapi import APIRouter, Request
from starlette.concurrency import run_in_threadpool
from starlette.responses import RedirectResponse, Response

from dispatcher import app
from dispatcher.app import BAD_INPUT
from dispatcher.app import identity as ident
from dispatcher.web.console.i18n import latin_digits
from dispatcher.web.console.render import checked_form, render, session_of, text

router = APIRouter()


@router.get("/numbers")
async def numbers(request: Request) -> Response:
    await session_of(request)
    phone = latin_digits(request.query_params.get("phone") or "").strip()
    found, rows, error = None, [], None
    if phone:
        try:
            found, rows = await run_in_threadpool(app.views.number_history, request.app.state.settings, phone)
        except BAD_INPUT as exc:
            error = str(exc)
    return render(request, "numbers.html", phone=phone, found=found, rows=rows, error=error)


def _done(request: Request, *names: str) -> dict[str, str]:
    """What the last change did, from the redirect's query (counts and names only: an error is never read
    from a URL, where anyone could write one; it is shown by the answer to the form that failed)."""
    return {n: request.query_params[n] for n in names if n in request.query_params}


@router.get("/optouts")
async def optouts(request: Request) -> Response:
    return await _optouts_page(request)


async def _optouts_page(request: Request, error: str | None = None) -> Response:
    await session_of(request)
    q = latin_digits(request.query_params.get("q") or "").strip()
    found = await run_in_threadpool(app.suppressions, request.app.state.settings)
    rows = found.rows
    if q:
        digits = q.lstrip("0+")
        rows = [r for r in rows if digits in r.phone or q.lower() in (r.reason or "").lower()]
    done = _done(request, "added", "removed") if error is None else {"error": error}
    return render(
        request,
        "optouts.html",
        400 if error else 200,
        rows=rows[-500:][::-1],
        total=len(found.rows),
        q=q,
        done=done,
    )


@router.get("/optouts/{action}")
async def optouts_again(request: Request, action: str) -> Response:
    """The address of a form's answer, opened again (the language switch of an error): the page itself."""
    return RedirectResponse("/optouts", status_code=303)


@router.post("/optouts/{action}")
async def optouts_change(request: Request, action: str) -> Response:
    session = await session_of(request)
    form = await checked_form(request, session)
    phones = [
        p
        for p in latin_digits(text(form, "phones")).replace("،", ",").replace("\n", ",").split(",")
        if p.strip()
    ]
    settings = request.app.state.settings
    try:
        if action == "add":
            done = await run_in_threadpool(
                lambda: app.suppress(
                    settings, phones, text(form, "reason") or "added by hand", actor=session.actor
                )
            )
        elif action == "remove":
            done = await run_in_threadpool(lambda: app.unsuppress(settings, phones, actor=session.actor))
        else:
            raise app.BadInput(f"{action!r}: add or remove")
    except BAD_INPUT as exc:
        return await _optouts_page(request, error=_line(exc))
    return RedirectResponse(f"/optouts?{action}ed={done.changed}", status_code=303)


@router.get("/providers")
async def providers(request: Request) -> Response:
    await session_of(request)
    from dispatcher.app.accounts import price_settings

    settings = request.app.state.settings
    rows = await run_in_threadpool(app.check_providers, settings)
    prices = await run_in_threadpool(price_settings, settings)
    return render(request, "providers.html", rows=rows, prices=prices)


@router.get("/users")
async def users(request: Request) -> Response:
    return await _users_page(request)


async def _users_page(request: Request, error: str | None = None) -> Response:
    session = await session_of(request)
    settings = request.app.state.settings
    people = await run_in_threadpool(lambda: ident.list_users(settings, actor=session.actor))
    keys = await run_in_threadpool(lambda: ident.list_keys(settings, actor=session.actor))
    return render(
        request,
        "users.html",
        400 if error else 200,
        people=people,
        keys=keys,
        roles=list(ident.Role),
        done=_done(request, "done") if error is None else {"error": error},
    )


@router.get("/users/{action}")
async def users_again(request: Request, action: str) -> Response:
    return RedirectResponse("/users", status_code=303)


@router.post("/users/{action}")
async def users_change(request: Request, action: str) -> Response:
    """add, disable (a user); create, revoke (a key). A new key is shown once, on the page answered."""
    session = await session_of(request)
    form = await checked_form(request, session)
    settings, who = request.app.state.settings, session.actor
    name = text(form, "name")
    caps = {
        "daily_cap_rial": latin_digits(text(form, "daily_cap_rial")) or None,
        "daily_cap_parts": latin_digits(text(form, "daily_cap_parts")) or None,
    }
    try:
        if action == "add":
            password = form.get("password") if isinstance(form.get("password"), str) else ""
            await run_in_threadpool(
                lambda: ident.add_user(settings, name, text(form, "role"), password, actor=who, **caps)
            )
        elif action == "disable":
            await run_in_threadpool(lambda: ident.disable_user(settings, name, actor=who))
        elif action == "create-key":
            days = latin_digits(text(form, "expires_days"))
            new = await run_in_threadpool(
                lambda: ident.create_key(
                    settings,
                    name,
                    text(form, "role"),
                    expires_days=int(days) if days.isdigit() else None,
                    actor=who,
                    **caps,
                )
            )
            shown = render(request, "newkey.html", new=new)
            shown.headers["Cache-Control"] = "no-store"
            return shown
        elif action == "revoke-key":
            await run_in_threadpool(lambda: ident.revoke_key(settings, name, actor=who))
        else:
            raise app.BadInput(f"{action!r}: add, disable, create-key or revoke-key")
    except BAD_INPUT as exc:
        return await _users_page(request, error=_line(exc))
    return RedirectResponse(f"/users?done={action}", status_code=303)


def _line(exc: BaseException) -> str:
    return " ".join(str(exc).split())[:500]
