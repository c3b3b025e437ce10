"""The use cases under every front end: prepare, create, start, control, check providers, report.

Plain functions with explicit settings (`AppSettings`): nothing here reads `os.environ`, parses
arguments or prints. The CLI (`dispatcher.cli`) parses and prints around them; the demo and a later
web page or service call the same functions. Results are small dataclasses. How a campaign is
started and followed (embedded or distributed) is chosen in `dispatcher.modes`, in one place.

Errors: `BadInput` (and `NoCampaign`) for anything the caller can fix (the CLI: one line, exit 2),
besides the campaigns/workers errors listed in `BAD_INPUT`.
"""

from __future__ import annotations

import difflib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from pathlib import Path
from typing import Any

from sqlalchemy.engine import make_url

from campaigns.load import LoadError, RecipientLoader
from campaigns.plan import PlannedBlock, batch_size, plan
from campaigns.progress import CampaignProgress, read_progress
from campaigns.states import CampaignState
from campaigns.store import CampaignSpec, CampaignView, EmptyCampaign, Store, utcnow
from campaigns.text import Template, TemplateError, fold_arabic
from campaigns.windows import WhenError, parse_when, parse_window
from dispatcher.config import AppSettings
from dispatcher.modes import Mode, Observer, StartResult, choose_mode
from workers.errors import ConfigurationError
from workers.providers import NAMES
from workers.providers.base import ProviderClient


class BadInput(ValueError):
    """Bad input or usage the caller can fix; the message is one line naming the problem and the fix."""


class NoCampaign(BadInput):
    """No campaign with that id in the database named in the message."""


BAD_INPUT = (BadInput, LoadError, TemplateError, ConfigurationError, WhenError, EmptyCampaign)


# ---- the database ------------------------------------------------------------------------------------
def database_label(url: str) -> str:
    """The database URL for people: its password hidden, a SQLite path made absolute."""
    parsed = make_url(url)
    if parsed.drivername.startswith("sqlite") and parsed.database and parsed.database != ":memory:":
        return f"sqlite:///{Path(parsed.database).resolve()}"
    return parsed.render_as_string(hide_password=True)


def database_exists(url: str) -> bool:
    """False only for a SQLite file that is not there (a server database is asked when it is opened)."""
    parsed = make_url(url)
    if parsed.drivername.startswith("sqlite") and parsed.database and parsed.database != ":memory:":
        return Path(parsed.database).exists()
    return True


def open_store(settings: AppSettings, *, read_only: bool = False) -> Store | None:
    """The store, its schema brought up to date. `read_only`: None when the database does not exist
    (a command that only looks never creates one)."""
    url = settings.dispatch.database_url
    if read_only and not database_exists(url):
        return None
    store = Store.from_url(url)
    store.migrate()
    return store


def _store_with(settings: AppSettings, campaign_id: int) -> tuple[Store, CampaignView]:
    """The store and the campaign's view, or NoCampaign naming the database looked in (never creating it)."""
    store = open_store(settings, read_only=True)
    view = store.campaign(campaign_id) if store is not None else None
    if store is None or view is None:
        where = database_label(settings.dispatch.database_url)
        why = "" if store is not None else " (no database there)"
        raise NoCampaign(f"no campaign {campaign_id} in {where}{why}; see smsdispatch list")
    return store, view


# ---- providers ---------------------------------------------------------------------------------------
def resolve_provider(name: str) -> str:
    """The registered provider name for `name`, case-insensitively; BadInput with a suggestion otherwise."""
    wanted = name.strip().lower()
    if wanted in NAMES:
        return wanted
    close = difflib.get_close_matches(wanted, NAMES, n=1)
    hint = f"did you mean {close[0]}? " if close else ""
    raise BadInput(f"unknown provider {name!r}; {hint}choose one of {', '.join(NAMES)}")


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
    campaign); a dry run opens none (`store` is None, nothing is suppressed). Raises BadInput,
    TemplateError, WhenError, LoadError or ConfigurationError (a missing credential, named).
    Checks on the whole prepared campaign (a preflight) belong between this and `create`.
    """
    provider = resolve_provider(request.provider)
    if request.on_unknown not in set(OnUnknown):
        raise BadInput(f"--on-unknown {request.on_unknown!r}: choose hold or resend")
    template = Template(fold_arabic(request.message.strip()))
    send_at = parse_when(request.at) if request.at else None
    window = request.window or settings.dispatch.send_window or None
    window_obj = parse_window(window) if window and window.strip().lower() != "any" else None
    client = settings.client(provider)
    if not request.file.exists():
        raise BadInput(f"{request.file}: no such file; check the path")
    rejects_path = request.rejects or request.file.with_name(request.file.stem + ".rejects.csv")
    store = None if dry_run else open_store(settings)
    loader = RecipientLoader(
        request.file,
        column=request.column,
        rejects_path=rejects_path,
        suppressed=store.suppressed() if store else (),
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
    store, view = _store_with(settings, campaign_id)
    applied = {Control.PAUSE: store.pause, Control.RESUME: store.resume, Control.CANCEL: store.cancel}
    if not applied[action](campaign_id):
        raise BadInput(f"campaign {campaign_id} is {view.state}; it cannot be {action}d")
    needs_run = False
    if action == Control.RESUME:
        needs_run = not choose_mode(settings, store).resumed(campaign_id)
    return ControlResult(campaign_id, CampaignState(store.campaign_state(campaign_id)[0]), needs_run)


# ---- reading -----------------------------------------------------------------------------------------
@dataclass(frozen=True)
class CampaignStatus:
    view: CampaignView
    progress: CampaignProgress

    def as_json(self) -> dict[str, Any]:
        v = self.view
        return {
            "campaign": v.id,
            "name": v.name,
            "provider": v.provider,
            "state": v.state,
            "reason": v.state_reason,
            "recipients": v.recipients,
            "rejected": v.rejected,
            "counts": v.counts,
            "chunks": v.chunk_counts,
            "send_at": v.send_at.isoformat() if v.send_at else None,
            "window": v.window,
            "created_at": v.created_at.isoformat(),
            "started_at": v.started_at.isoformat() if v.started_at else None,
            "finished_at": v.finished_at.isoformat() if v.finished_at else None,
            **self.progress.as_json(),
        }


def status(settings: AppSettings, campaign_id: int) -> CampaignStatus:
    """The campaign's counts and progress (rate, ETA, what it waits for); NoCampaign when there is none."""
    store, _ = _store_with(settings, campaign_id)
    view, progress = read_progress(store, campaign_id, utcnow())
    if view is None or progress is None:
        raise NoCampaign(f"no campaign {campaign_id}; see smsdispatch list")
    return CampaignStatus(view, progress)


def campaign_view(settings: AppSettings, campaign_id: int) -> tuple[Store, CampaignView]:
    """The store and one campaign (read-only: NoCampaign, naming the database, when it is not there)."""
    return _store_with(settings, campaign_id)


@dataclass(frozen=True)
class CampaignList:
    database: str  # for people: where we looked
    exists: bool
    campaigns: list[CampaignView]


def list_campaigns(settings: AppSettings) -> CampaignList:
    """Every campaign in the database (none, without creating it, when the database is not there)."""
    store = open_store(settings, read_only=True)
    label = database_label(settings.dispatch.database_url)
    return CampaignList(label, store is not None, store.campaigns() if store is not None else [])


@dataclass(frozen=True)
class ReportResult:
    path: Path
    counts: dict[str, int]  # recipients written, by state
    chart: Path | None = None


def report(settings: AppSettings, campaign_id: int, out: Path, chart: Path | None = None) -> ReportResult:
    """One row per recipient to `out` (.csv or .xlsx), and a delivery chart (.png or .svg) if asked.

    BadInput for a wrong suffix, a folder that does not exist or cannot be written, or a chart
    without matplotlib; NoCampaign when there is no such campaign."""
    import importlib.util

    from dispatcher.reports import write_report

    if out.suffix.lower() not in (".csv", ".xlsx"):
        raise BadInput(f"--out {out}: the report is written as .csv or .xlsx; change the file name")
    if chart is not None and chart.suffix.lower() not in (".png", ".svg"):
        raise BadInput(f"--chart {chart}: the chart is drawn as .png or .svg; change the file name")
    for path, option in ((out, "--out"), (chart, "--chart")):
        if path is not None and not path.parent.is_dir():
            raise BadInput(f"{option} {path}: the folder {path.parent} does not exist; create it first")
    if chart is not None and importlib.util.find_spec("matplotlib") is None:
        raise BadInput("--chart needs matplotlib: pip install 'smsdispatch[chart]' (or leave --chart out)")
    store, view = _store_with(settings, campaign_id)
    try:
        counts = write_report(store, campaign_id, out)
        if chart is not None:
            from dispatcher.chart import delivery_timeline, draw_delivery_chart, resolution_for

            start = view.started_at or view.created_at
            step = resolution_for(start, view.finished_at or utcnow())
            timeline = delivery_timeline(store.timeline_rows(campaign_id), start, step)
            name = f" ({view.name})" if view.name.isascii() else ""
            title = f"Campaign {view.id}{name} via {view.provider}: delivery over time"
            draw_delivery_chart(timeline, chart, title)
    except OSError as exc:
        raise BadInput(
            f"{exc.filename or out}: cannot write there ({exc.strerror}); choose another path"
        ) from None
    return ReportResult(out, dict(counts), chart)
