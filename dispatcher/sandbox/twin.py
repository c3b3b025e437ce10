"""Helpers every provider twin uses to speak HTTP and to apply faults the same way."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from typing import Any

from werkzeug.wrappers import Request, Response

from dispatcher.sandbox.core import Fault, FaultKind, SandboxState


def json_response(obj: Any, status: int = 200) -> Response:
    return Response(json.dumps(obj, ensure_ascii=False), status=status, mimetype="application/json")


def renamed(response: Response, fields: dict[str, str]) -> Response:
    """The same JSON answer with its keys renamed at any depth (old -> new, "" drops the key); an answer
    that is not JSON is left as it is (core.Rename)."""
    try:
        body = json.loads(response.get_data(as_text=True))
    except ValueError:
        return response

    def walk(node: Any) -> Any:
        if isinstance(node, dict):
            pairs = ((fields.get(k, k), walk(v)) for k, v in node.items())
            return {k: v for k, v in pairs if k != ""}
        return [walk(v) for v in node] if isinstance(node, list) else node

    return json_response(walk(body), response.status_code)


def plain(status: int, text: str | None = None) -> Response:
    """A reply with no provider envelope, as a proxy or a crashed server would give."""
    return Response(
        text or f"<html><body><h1>{status}</h1>Server Error</body></html>",
        status=status,
        mimetype="text/html",
    )


def params(request: Request) -> dict[str, str]:
    """Form fields, then query parameters (providers accept GET too), as one dict of strings."""
    out = {k: v for k, v in request.args.items()}
    out.update({k: v for k, v in request.form.items()})
    return out


def json_body(request: Request) -> dict[str, Any] | None:
    try:
        data = request.get_json(force=True, silent=True)
    except Exception:  # noqa: BLE001 - a twin answers bad JSON like the provider would
        return None
    return data if isinstance(data, dict) else None


def before_accept(
    fault: Fault | None, render_code: Callable[[int | str], Response], transient_code: int | str
) -> Response | None:
    """Apply a fault that strikes before anything is accepted; None means go on normally."""
    if fault is None:
        return None
    if fault.kind == FaultKind.CODE:
        return render_code(fault.code if fault.code is not None else transient_code)
    if fault.kind == FaultKind.TRANSIENT:
        return render_code(transient_code)
    if fault.kind == FaultKind.HTTP:
        return plain(fault.status)
    if fault.kind == FaultKind.HANG:
        time.sleep(fault.seconds)
    return None


def after_accept(fault: Fault | None, response: Response) -> Response:
    """Apply a fault that strikes after the messages were accepted (an ambiguous send)."""
    if fault is None:
        return response
    if fault.kind == FaultKind.ACCEPT_THEN_HTTP:
        return plain(fault.status)
    if fault.kind == FaultKind.ACCEPT_THEN_HANG:
        time.sleep(fault.seconds)
    return response


def admit_send(
    state: SandboxState,
    provider: str,
    count: int,
    render_code: Callable[[int | str], Response],
    transient_code: int | str,
    credit_code: int | str,
) -> tuple[Fault | None, Response | None]:
    """The gate every twin's send passes: a scripted or random fault first, then the credit.

    Returns the fault (for `after_accept`) and a response when the send is refused here.
    """
    fault = state.take_fault(provider, "send")
    early = before_accept(fault, render_code, transient_code)
    if early is not None:
        return fault, early
    if not state.charge(provider, count):
        return fault, render_code(credit_code)
    return fault, None
