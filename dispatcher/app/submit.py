"""A campaign submitted by a program (the HTTP API): prepare, preflight, create and hand it to whatever
sends (`dispatcher.app.modes`), in one call that never sends in the caller's thread.

In embedded mode the process that serves the API also runs the `serve` loop (or a live `serve` does),
which picks the stored campaign up within a tick; in distributed mode the workers are rung. The answer
is `send --json`'s object (`dispatcher.app.shapes.send_json`).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

from campaigns.states import CampaignState
from campaigns.store import Store
from dispatcher.app.actors import Actor
from dispatcher.app.campaign import CampaignSummary, SendRequest, create, dry_run, prepare
from dispatcher.app.common import BadInput
from dispatcher.app.modes import choose_mode
from dispatcher.app.preflight.usecase import preflight
from dispatcher.app.shapes import send_json
from dispatcher.config import AppSettings
from workers.webhook_targets import TargetRefused, check_target


@dataclass(frozen=True)
class Submitted:
    """The answer's body and whether a campaign was created (False: a dry run)."""

    body: dict[str, Any]
    created: bool
    campaign: int | None = None


def check_callback(settings: AppSettings, url: str | None) -> None:
    """BadInput unless `url` is an http(s) URL without credentials whose host resolves to public
    addresses only, or is listed in SMSDISPATCH_WEBHOOK_ALLOW_HOSTS (workers/webhook_targets.py; checked
    again at each delivery), and webhooks can be signed here."""
    if url is None:
        return
    try:
        check_target(url, settings.dispatch.webhook_allow_hosts)
    except TargetRefused as exc:
        raise BadInput(str(exc)) from None
    if not settings.dispatch.webhook_secret:
        raise BadInput(
            "callback_url needs SMSDISPATCH_WEBHOOK_SECRET set on the server (it signs the webhooks); "
            "ask the operator to set it, or leave callback_url out"
        )


def hand_over(settings: AppSettings, store: Store, summary: CampaignSummary) -> CampaignState:
    """Start a stored campaign where it is sent: the workers (distributed), a live `serve` (served), or the
    serve loop of this process, which picks it up by itself (embedded: never sent in the caller's thread)."""
    if summary.campaign is None or not summary.recipients:
        return CampaignState(summary.state)
    mode = choose_mode(settings, store)
    if mode.sends_here:
        return CampaignState(summary.state)
    return mode.start(summary.campaign).state


def submit(
    settings: AppSettings,
    request: SendRequest,
    *,
    as_dry_run: bool = False,
    callback_url: str | None = None,
    callback_key_id: int | None = None,
    actor: Actor | None = None,
) -> Submitted:
    """Check, store and start one campaign (or only check and count it: `as_dry_run`) as `actor` (None: the
    command line), who needs SEND to store one. Raises what `send` raises: BadInput and the BAD_INPUT
    family, Refused (nothing stored), Forbidden."""
    check_callback(settings, callback_url)
    prepared = prepare(settings, request, dry_run=as_dry_run)
    checked = preflight(settings, prepared, refuse=not as_dry_run)
    if as_dry_run:
        return Submitted(send_json(dry_run(prepared), checked, prepared.start), False)
    prepared.spec = dataclasses.replace(
        prepared.spec, callback_url=callback_url, callback_key_id=callback_key_id
    )
    summary = create(prepared, actor=actor)
    assert prepared.store is not None
    summary = dataclasses.replace(summary, state=hand_over(settings, prepared.store, summary))
    return Submitted(send_json(summary, checked, prepared.start), True, summary.campaign)
