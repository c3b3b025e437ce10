"""A campaign from a file to the providers: prepare (check, open, plan), dry_run or create, start
(in the mode `dispatcher.modes` chooses), and control (pause, resume, cancel)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from pathlib import Path
from typing import Any

from campaigns.load import RecipientLoader
from campaigns.plan import PlannedBlock, batch_size, plan
from campaigns.states import CampaignState
from campaigns.store import CampaignSpec, Store
from campaigns.text import Template, fold_arabic
from campaigns.windows import parse_when, parse_window
from dispatcher.app.common import BadInput, campaign_view, open_store, resolve_route
from dispatcher.config import AppSettings
from dispatcher.modes import Mode, Observer, StartResult, choose_mode
from workers.providers.base import ProviderClient


# ---- prepare and create ------------------------------------------------------------------------------
class OnUnknown(StrEnum):
    """What to do with recipients whose send could not be confirmed."""

    HOLD = "hold"
    RESEND = "resend"


@dataclass(frozen=True)
class SendRequest:
    """What the user asks for; `at` and `window` as typed (ISO-8601 or Jalali; `HH:MM-HH:MM` or 'any')."""

    file: Path
    provider: str
    message: str
    sender: str | None = None
    column: str | None = None
    sheet: str | None = None  # a workbook's sheet: its name, or its number (1 = first)
    name: str | None = None
    at: str | None = None
    window: str | None = None
    on_unknown: str = OnUnknown.HOLD
    rejects: Path | None = None


@dataclass
class Prepared:
    """A loaded and planned campaign, not stored yet. `blocks` is lazy: the file is read while it is
    consumed (by `create` or `dry_run`), so `loader.stats` is complete only after that."""

    spec: CampaignSpec
    client: ProviderClient
    loader: RecipientLoader
    blocks: Iterator[PlannedBlock]
    rejects_path: Path
    store: Store | None  # None for a dry run


def prepare(settings: AppSettings, request: SendRequest, *, dry_run: bool = False) -> Prepared:
    """Check the request, build the provider client, open the file and plan it (lazily).

    Everything the request says is checked before the database is opened (created, for a first
    campaign); a dry run only reads an existing one, for the suppression list, so that it counts what
    the send would (`store` is None: nothing can be created). Raises BadInput,
    TemplateError, WhenError, LoadError or ConfigurationError (a missing credential, named).
    Checks on the whole prepared campaign (a preflight) belong between this and `create`.
    """
    route = resolve_route(request.provider, settings.env)  # one provider, or a failover route (issue 15)
    provider = route[0]
    if request.on_unknown not in set(OnUnknown):
        raise BadInput(f"--on-unknown {request.on_unknown!r}: choose hold or resend")
    template = Template(fold_arabic(request.message.strip()))
    send_at = parse_when(request.at) if request.at else None
    window = request.window or settings.dispatch.send_window or None
    window_obj = parse_window(window) if window and window.strip().lower() != "any" else None
    client = settings.client(provider)
    for other in route[1:]:  # every provider of the route must be configured (a missing credential, named)
        settings.client(other)
    if not request.file.exists():
        raise BadInput(f"{request.file}: no such file; check the path")
    rejects_path = request.rejects or request.file.with_name(request.file.stem + ".rejects.csv")
    store = None if dry_run else open_store(settings)
    reader = open_store(settings, read_only=True) if dry_run else store
    loader = RecipientLoader(
        request.file,
        column=request.column,
        rejects_path=rejects_path,
        suppressed=reader.suppressed() if reader else (),
        sheet=request.sheet,
    )
    template.validate(loader.block_columns)  # the columns a block really has: row, phone (E.164), the others
    extra = [c for c in loader.block_columns if c not in ("row", "phone")]
    personalised = not template.is_static
    batch = batch_size(
        client.settings.batch,
        personalised=personalised,
        provider_personalised=client.capabilities.personalised,
    )
    spec = CampaignSpec(
        name=request.name or request.file.stem,
        provider=provider,
        account=client.settings.account_key,
        sender=request.sender or client.settings.sender,
        message=template.static_text if template.is_static else template.text,
        personalised=personalised,
        source_file=str(request.file),
        rejects_file=str(rejects_path),
        columns=extra,
        on_unknown=request.on_unknown,
        send_at=send_at,
        window=str(window_obj) if window_obj else None,
        route=route if len(route) > 1 else (),
    )
    planned = plan(loader.blocks(), template, batch, extra)
    return Prepared(spec, client, loader, planned, rejects_path, store)


@dataclass(frozen=True)
class CampaignSummary:
    """A created (or dry-run) campaign: `campaign` is None for a dry run, whose state is 'dry-run'."""

    campaign: int | None
    recipients: int
    rejected: int
    chunks: int
    parts: int
    rejects_file: str
    state: str
    send_at: datetime | None = None

    def as_json(self) -> dict[str, Any]:
        keys = ("campaign", "recipients", "rejected", "chunks", "parts", "rejects_file", "state")
        return {k: getattr(self, k) for k in keys}


def _counted(blocks: Iterator[PlannedBlock], on_rows: Callable[[int], None] | None) -> Iterator[PlannedBlock]:
    for block in blocks:
        if on_rows is not None:
            on_rows(len(block.recipients))
        yield block


def dry_run(prepared: Prepared, on_rows: Callable[[int], None] | None = None) -> CampaignSummary:
    """Read and plan the whole file, store nothing; `on_rows(n)` after each block of n recipients."""
    chunks = parts = recipients = 0
    for block in _counted(prepared.blocks, on_rows):
        recipients += len(block.recipients)
        chunks += len(block.chunks)
        parts += int(block.chunks["parts"].sum())
    stats = prepared.loader.stats
    return CampaignSummary(
        None, recipients, stats.rejected, chunks, parts, str(prepared.rejects_path), "dry-run"
    )


def create(prepared: Prepared, on_rows: Callable[[int], None] | None = None) -> CampaignSummary:
    """Store the campaign, its chunks and recipients (running, or scheduled for `send_at`); `on_rows(n)`
    after each block of n recipients. Raises EmptyCampaign when no row is valid (nothing is stored)."""
    store, loader = prepared.store, prepared.loader
    if store is None:
        raise ValueError("a dry-run preparation cannot be created; prepare it again without dry_run")
    campaign_id = store.create_campaign(
        prepared.spec, _counted(prepared.blocks, on_rows), rejected=lambda: loader.stats.rejected
    )
    view = store.campaign(campaign_id)
    assert view is not None
    return CampaignSummary(
        campaign_id,
        view.recipients,
        loader.stats.rejected,
        view.chunks,
        view.parts,
        str(prepared.rejects_path),
        view.state,
        view.send_at,
    )


# ---- start and control --------------------------------------------------------------------------
def mode_for(settings: AppSettings, store: Store) -> Mode:
    """How campaigns are sent with these settings (embedded or distributed; see `dispatcher.modes`)."""
    return choose_mode(settings, store)


def start(
    settings: AppSettings,
    store: Store,
    campaign_id: int,
    *,
    follow: bool = False,
    observer: Observer | None = None,
) -> StartResult:
    """Send a created campaign: here (embedded, returning when it is sent, or with `follow` when every
    report is in, or when it pauses) or by the workers (distributed; `follow` reads the database)."""
    return mode_for(settings, store).start(campaign_id, follow=follow, observer=observer)


# ---- control -----------------------------------------------------------------------------------------
class Control(StrEnum):
    PAUSE = "pause"
    RESUME = "resume"
    CANCEL = "cancel"


@dataclass(frozen=True)
class ControlResult:
    """The campaign's state after the action; `needs_run`: its remaining chunks wait for `run` (embedded)."""

    campaign: int
    state: CampaignState
    needs_run: bool = False


def control(settings: AppSettings, campaign_id: int, action: Control) -> ControlResult:
    """Pause, resume or cancel; BadInput when the campaign's state does not allow it."""
    store, view = campaign_view(settings, campaign_id)
    applied = {Control.PAUSE: store.pause, Control.RESUME: store.resume, Control.CANCEL: store.cancel}
    if not applied[action](campaign_id):
        raise BadInput(f"campaign {campaign_id} is {view.state}; it cannot be {action}d")
    needs_run = False
    if action == Control.RESUME:
        needs_run = not choose_mode(settings, store).resumed(campaign_id)
    return ControlResult(campaign_id, CampaignState(store.campaign_state(campaign_id)[0]), needs_run)
