"""A campaign from a file to the providers: prepare (check, open, plan), dry_run or create, start
(in the mode `dispatcher.app.modes` chooses), and control (pause, resume, cancel)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from pathlib import Path
from typing import Any

from campaigns.clock import utcnow
from campaigns.identity import Permission
from campaigns.load import RecipientLoader
from campaigns.plan import PlannedBlock, batch_size, plan
from campaigns.preflight import CampaignType, DuplicateCampaign, PreflightSummary, duplicate_finding
from campaigns.states import CampaignState, OnUnknown
from campaigns.store import CampaignSpec, Store
from campaigns.store.create import set_rejects_file
from campaigns.text import Template, fold_arabic
from campaigns.when import ResolvedAt, Start, resolve_at, start_of
from campaigns.windows import parse_window
from dispatcher.app.actors import Actor, acting, require, started_by
from dispatcher.app.common import BadInput, Refused, campaign_view, open_store, resolve_route
from dispatcher.app.modes import Mode, Observer, StartResult, choose_mode
from dispatcher.config import AppSettings
from workers import metrics
from workers.providers.base import ProviderClient


# ---- prepare and create ------------------------------------------------------------------------------
@dataclass(frozen=True)
class SendRequest:
    """What the user asks for; `at` and `window` as typed (`at`: any form of `campaigns.when.resolve_at`,
    e.g. ISO-8601, Jalali, `Friday 10:00`, `فردا 09:00`, `10:00`; `window`: `HH:MM-HH:MM` or 'any')."""

    file: Path
    provider: str
    message: str
    sender: str | None = None
    column: str | None = None
    sheet: str | None = None  # a workbook's sheet: its name, or its number (1 = first)
    header_row: int | None = (
        None  # the header's row as the spreadsheet counts (None: found by its phone column)
    )
    name: str | None = None
    at: str | None = None
    window: str | None = None
    on_unknown: str = OnUnknown.HOLD
    rejects: Path | None = None
    # The preflight (dispatcher.app.preflight): the rules picked, and the checks overridden.
    campaign_type: str = CampaignType.PROMOTIONAL  # promotional | transactional
    allow_partial: bool = False  # credit below the estimate
    allow_duplicate: bool = False  # the same list and text as a campaign of SMSDISPATCH_DUPLICATE_WINDOW
    skip_recent: bool = False  # recipients sent within SMSDISPATCH_FREQUENCY_CAP go to the rejects file
    # send to numbers the operator blacklist memory would skip (SMSDISPATCH_BLACKLIST_MEMORY; promotional)
    include_blacklisted: bool = False
    # The budget: caps no claim crosses, as typed (`50,000`, Persian digits too):
    # rial, and SMS parts. Parsed by `prepare`; set on the spec by the preflight, which knows the prices.
    budget: str | None = None
    max_parts: str | None = None


@dataclass
class Prepared:
    """A loaded and planned campaign, not stored yet. `blocks` is lazy: the file is read while it is
    consumed (by `preflight`, `create` or `dry_run`), so `loader.stats` is complete only after that.

    After `dispatcher.app.preflight` read the file, `blocks` plans the kept recipients from its spool
    (the file is read once), `summary` holds the preflight and `spec.fingerprint` its fingerprint.
    `store` is the store the campaign is created in (None for a dry run); `reader` the store read for
    suppressions and the checks (the same store; for a dry run the existing one, or None).
    """

    spec: CampaignSpec
    client: ProviderClient
    loader: RecipientLoader
    blocks: Iterator[PlannedBlock]
    rejects_path: Path
    store: Store | None
    template: Template | None = None
    batch: int = 1
    reader: Store | None = None
    dry_run: bool = False
    request: SendRequest | None = None
    summary: PreflightSummary | None = None
    skipped: int = 0  # recipients the preflight moved to the rejects file (--skip-recent)
    settings: AppSettings | None = None
    # When it starts: `at` is `--at` as resolved (None without --at; `at.echo()` says what it meant),
    # `start` the start and window described for people and JSON (campaigns.when.Start).
    at: ResolvedAt | None = None
    start: Start | None = None
    spool: Any = None  # the preflight's BlockSpool of kept rows (a draft stores them; read once)


def prepare(settings: AppSettings, request: SendRequest, *, dry_run: bool = False) -> Prepared:
    """Check the request, build the provider client, open the file and plan it (lazily).

    Local only: no provider is called and no database is created here (an existing one is read, for the
    suppression list, so that a dry run counts what the send would); `create` opens the store for
    writing, so a send refused on the way (bad input, a preflight check, "no") leaves no database behind.
    Raises BadInput, TemplateError, WhenError, LoadError or ConfigurationError (a missing credential,
    named). The preflight (`dispatcher.app.preflight`) goes between this and `create`/`dry_run`.
    """
    from dispatcher.app.budget import parse_cap

    route = resolve_route(request.provider, settings.env)  # one provider, or a failover route
    provider = route[0]
    parse_cap(request.budget, "--budget"), parse_cap(request.max_parts, "--max-parts")  # bad input first
    if request.on_unknown not in set(OnUnknown):
        raise BadInput(f"--on-unknown {request.on_unknown!r}: choose hold or resend")
    if request.campaign_type not in set(CampaignType):
        raise BadInput(f"--type {request.campaign_type!r}: choose promotional or transactional")
    template = Template(fold_arabic(request.message.strip()))
    now = utcnow()
    at = resolve_at(request.at, now) if request.at else None
    send_at = at.at if at is not None else None
    if send_at is not None and send_at < now - timedelta(minutes=1):  # a typo, most likely
        raise BadInput(
            f"--at {request.at!r} is in the past ({settings.show_time(send_at)}); give a time ahead, "
            "or leave --at out to send now"
        )
    window = request.window or settings.dispatch.send_window or None
    window_obj = parse_window(window) if window and window.strip().lower() != "any" else None
    client = settings.client(provider)
    for other in route[1:]:  # every provider of the route must be configured (a missing credential, named)
        settings.client(other)
    if not request.file.exists():
        raise BadInput(f"{request.file}: no such file; check the path")
    # A dry run writes its own rejects file: it must not overwrite the one of a campaign sent from this file.
    suffix = ".dry-run.rejects.csv" if dry_run else ".rejects.csv"
    rejects_path = request.rejects or request.file.with_name(request.file.stem + suffix)
    reader = open_store(settings, read_only=True)  # None before the first campaign: `create` makes it
    loader = RecipientLoader(
        request.file,
        column=request.column,
        rejects_path=rejects_path,
        suppressed=reader.suppressed() if reader else (),
        sheet=request.sheet,
        header_row=request.header_row,
    )
    if loader.phone_column != "phone" and "{" + loader.phone_column + "}" in template.text:
        # `{mobile}` names the file's phone column: the number, as the block carries it (E.164)
        template = Template(template.text.replace("{" + loader.phone_column + "}", "{phone}"))
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
    return Prepared(
        spec,
        client,
        loader,
        planned,
        rejects_path,
        None,
        template,
        batch,
        reader,
        dry_run,
        request,
        settings=settings,
        at=at,
        start=start_of(send_at, window_obj, now),
    )


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
    rejected = prepared.loader.stats.rejected + prepared.skipped
    return CampaignSummary(None, recipients, rejected, chunks, parts, str(prepared.rejects_path), "dry-run")


def create(
    prepared: Prepared, on_rows: Callable[[int], None] | None = None, *, actor: Actor | None = None
) -> CampaignSummary:
    """Store the campaign, its chunks and recipients (running, or scheduled for `send_at`), with the
    preflight's fingerprint, in one transaction; `on_rows(n)` after each block of n recipients. Opens
    the store for writing (creating the database for a first campaign). Raises EmptyCampaign when no
    row is valid, Refused when the preflight refused it, or when the same list and text was stored since
    the preflight checked (another send meanwhile: the duplicate check again; nothing is stored either way).

    `actor` (None: the command line) needs the SEND permission (Forbidden); the campaign records who
    started it (the `created` event in its creating transaction), and its claims count against the
    actor's daily cap (campaigns/store/caps.py; BadInput when the cap is in rial and no price is known)."""
    loader = prepared.loader
    if prepared.dry_run:
        raise ValueError("a dry-run preparation cannot be created; prepare it again without dry_run")
    if prepared.summary is not None and prepared.summary.refusals:
        raise Refused.of(prepared.summary.refusals[0])
    if prepared.store is None:  # the store is opened for writing (created, for a first campaign) only now
        assert prepared.settings is not None
        prepared.store = prepared.reader or open_store(prepared.settings)
    store = prepared.store
    assert store is not None
    prepared.spec = started_by(store, prepared.spec, actor)
    try:
        campaign_id = store.create_campaign(
            prepared.spec,
            _counted(prepared.blocks, on_rows),
            rejected=lambda: loader.stats.rejected + prepared.skipped,
        )
    except DuplicateCampaign as exc:  # the same list and text, stored since the preflight checked
        from dispatcher.app.preflight.usecase import options_for

        assert prepared.settings is not None
        raise Refused(
            duplicate_finding(exc.campaign, options_for(prepared.settings, prepared)).line()
        ) from None
    rejects = prepared.rejects_path
    if prepared.request is not None and prepared.request.rejects is None:  # the default name: its own
        rejects = own_rejects_file(prepared.request.file, campaign_id)
        if prepared.rejects_path.exists():
            prepared.rejects_path.replace(rejects)
        set_rejects_file(store.engine, campaign_id, str(rejects))
    view = store.campaign(campaign_id)
    assert view is not None
    return CampaignSummary(
        campaign_id,
        view.recipients,
        loader.stats.rejected + prepared.skipped,
        view.chunks,
        view.parts,
        str(rejects),
        view.state,
        view.send_at,
    )


def own_rejects_file(file: Path, campaign_id: int) -> Path:
    """A campaign's rejects file beside its recipients file, named with its id (`customers.csv` ->
    `customers.campaign-7.rejects.csv`): a second campaign from the same file never overwrites it. The
    preflight writes `customers.rejects.csv`; it is renamed once the campaign is stored, and stays under
    that name when nothing is (a refusal, "no", no valid recipient)."""
    return file.with_name(f"{file.stem}.campaign-{campaign_id}.rejects.csv")


# ---- start and control --------------------------------------------------------------------------
def mode_for(settings: AppSettings, store: Store) -> Mode:
    """How campaigns are sent with these settings (embedded or distributed; see `dispatcher.app.modes`)."""
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
class StateConflict(BadInput):
    """The campaign's state does not allow the action (the CLI: exit 2; the API: 409)."""


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


def control(
    settings: AppSettings,
    campaign_id: int,
    action: Control,
    *,
    budget: str | None = None,
    max_parts: str | None = None,
    actor: Actor | None = None,
) -> ControlResult:
    """Pause, resume or cancel; BadInput when the campaign's state does not allow it. A resume may raise
    the campaign's caps first (`budget` rial, `max_parts`; BudgetError when they cannot be used).
    `actor` (None: the command line) needs the SEND permission (Forbidden); the audit records it."""
    from dispatcher.app.budget import parse_cap, raise_and_resume

    who = acting(actor)
    require(who, Permission.SEND)
    store, view = campaign_view(settings, campaign_id)
    caps = parse_cap(budget, "--budget"), parse_cap(max_parts, "--max-parts")
    if action != Control.RESUME and caps != (None, None):
        raise BadInput("--budget and --max-parts go with resume")
    applied = {
        Control.PAUSE: lambda cid: store.pause_by(cid, who.who),
        Control.RESUME: lambda cid: raise_and_resume(store, cid, *caps, who=who.who),
        Control.CANCEL: lambda cid: _cancel(store, cid, who.who),
    }
    if not applied[action](campaign_id):
        done = {Control.PAUSE: "paused", Control.RESUME: "resumed", Control.CANCEL: "cancelled"}[action]
        raise StateConflict(f"campaign {campaign_id} is {view.state}; it cannot be {done}")
    needs_run = False
    if action == Control.RESUME:
        needs_run = not choose_mode(settings, store).resumed(campaign_id)
    return ControlResult(campaign_id, CampaignState(store.campaign_state(campaign_id)[0]), needs_run)


def _cancel(store: Store, campaign_id: int, who: str) -> bool:
    """Cancel; its cancelled recipients counted in `smsdispatch_recipients_final_total{state="cancelled"}`
    (this process's metrics: the web console, the API). False when the state does not allow it."""
    done = store.cancel_by(campaign_id, who)
    if done is not None:
        metrics.cancelled(done.by_provider)
    return done is not None


def interrupted(settings: AppSettings, store: Store, campaign_id: int, *, wait: bool) -> str:
    """The one line for people after Ctrl-C stopped sending here: the state left and the command that
    goes on (`dispatcher.app.interrupt.interrupted_line`), read after the chunks in flight finished."""
    from campaigns.progress import read_progress
    from campaigns.store.heartbeats import live_service
    from dispatcher.app.interrupt import interrupted_line

    now = utcnow()
    view, progress = read_progress(store, campaign_id, now)
    if view is None or progress is None:
        return f"interrupted: campaign {campaign_id}"
    return interrupted_line(
        campaign_id,
        view.state,
        sent=progress.sent,
        total=progress.total,
        now=now,
        wait=wait,
        reason=view.state_reason,
        send_at=view.send_at,
        service=live_service(store.engine, stale=settings.heartbeat.stale),
    )
