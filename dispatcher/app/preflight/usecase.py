"""The preflight as front ends call it: what a prepared campaign will cost and whom it reaches, and the
checks, before anything is stored; and the test send of its previews (README, "Preflight").

`preflight(settings, prepared)` reads the file ONCE: the loader's blocks go through the `Tally` (counts,
previews, fingerprint, recent sends) and into a spool on disk; `prepared.blocks` then plans the kept
recipients from the spool, so `create` and `dry_run` store or count exactly what was checked, without
reading the file again (and without a window in which the file could change between check and store).

Order: local first, then the network. Every check of the settings, the file and the text runs before any
provider is called (the store's facts are read-only: no database is created here), so a damaged file is
named (exit 2) even with the provider unreachable, and a dry run works offline; then the route is proven
(`route.py`) and priced. Errors: the loader's, EmptyCampaign, PreflightSettingError, BudgetError (exit 2),
CredentialsRejected (exit 2), ProviderUnreachable (exit 1), Refused (exit 3) when `refuse` and a check
refused. Nothing is stored either way.
"""

from __future__ import annotations

import contextlib
import csv
import io
import pickle
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pandas as pd

from campaigns.load import PHONE, ROW
from campaigns.plan import batch_size, plan
from campaigns.preflight import CampaignType, Loaded, PreflightOptions, PreflightSummary, Tally, summarise
from campaigns.prices import PriceTable
from campaigns.store import CampaignSpec, EmptyCampaign
from campaigns.text import Template
from dispatcher.app.accounts import phones_or_fail
from dispatcher.app.budget import BudgetError, parse_cap, spec_caps
from dispatcher.app.campaign import CampaignSummary, Prepared
from dispatcher.app.common import BadInput, Refused, open_store
from dispatcher.app.modes import StartResult, choose_mode
from dispatcher.app.preflight.gather import (
    ProviderUnreachable,
    StoreFacts,
    rejected_by_reason,
    store_facts,
    unreachable_line,
)
from dispatcher.app.preflight.route import RouteProof, prove_route
from dispatcher.app.prices import configured_prices, provider_prices
from dispatcher.config import AppSettings
from workers.errors import ProviderError
from workers.providers.base import ProviderClient

__all__ = ["BlockSpool", "TestSend", "preflight", "test_send"]


class BlockSpool:
    """Loader blocks kept in a temporary file between the preflight's pass and the storing pass.

    Pickled one block after another (the blocks are the loader's own DataFrames, dtypes intact); the
    file is deleted when the spool is read to its end or collected. Disk, not memory: a million rows
    with a name column spool about 60 MB (docs/architecture.md, "Preflight")."""

    def __init__(self) -> None:
        self._file = tempfile.TemporaryFile(prefix="smsdispatch-spool-")  # noqa: SIM115 - closed when read
        self.blocks = 0

    def add(self, block: pd.DataFrame) -> None:
        pickle.dump(block, self._file, protocol=pickle.HIGHEST_PROTOCOL)
        self.blocks += 1

    def __iter__(self) -> Iterator[pd.DataFrame]:
        self._file.seek(0)
        try:
            for _ in range(self.blocks):
                yield pickle.load(self._file)  # noqa: S301 - our own temporary file
        finally:
            self._file.close()


def options_for(settings: AppSettings, prepared: Prepared) -> PreflightOptions:
    """The checks' options: SMSDISPATCH_MAX_PARTS, _STRICT, _FREQUENCY_CAP, _DUPLICATE_WINDOW and
    _BLACKLIST_MEMORY from the settings, the send window, the caps and `send`'s flags (SendRequest)."""
    request = prepared.request
    assert request is not None
    return PreflightOptions.from_env(
        settings.env,
        campaign_type=CampaignType(request.campaign_type),
        # `--window any` is a choice: no window, and no warning about it
        window=prepared.spec.window or ("any" if (request.window or "").strip().lower() == "any" else None),
        allow_partial=request.allow_partial,
        allow_duplicate=request.allow_duplicate,
        skip_recent=request.skip_recent,
        include_blacklisted=request.include_blacklisted,
        distributed=bool(settings.dispatch.broker_url),
        budget=parse_cap(request.budget, "--budget"),
        part_cap=parse_cap(request.max_parts, "--max-parts"),
        chunk=prepared.batch,
        show_time=settings.show_time,
    )


def _append_rejects(path: Path, others: list[str], moved: pd.DataFrame, reasons: dict[int, str]) -> None:
    """Rows the preflight moved out (the blacklist memory, --skip-recent), appended to the loader's
    rejects file (row, value, reason, ...); `reasons`: spreadsheet row -> its reason."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")  # as the loader's rows (pyarrow) end
    for _, row in moved.iterrows():
        phone = str(row[PHONE])
        shown = "0" + phone[3:] if phone.startswith("+98") else phone
        cells = ["" if pd.isna(row[c]) else str(row[c]) for c in others]
        writer.writerow([int(row[ROW]), shown, reasons[int(row[ROW])], *cells])
    with path.open("a", encoding="utf-8", newline="") as fh:
        fh.write(buffer.getvalue())


def route_prices(
    settings: AppSettings, proof: RouteProof, configured: dict[str, PriceTable]
) -> dict[str, PriceTable]:
    """Each usable provider of the route -> its price table (set, else read from its own API, as for the
    first): a chunk failover moves to it is priced at its price. One whose prices cannot be read now
    gets none (its moved chunks keep their share of the first estimate)."""
    tables: dict[str, PriceTable] = {}
    for name in proof.usable:
        tables[name] = configured.get(name) or PriceTable(source=name)
        if not tables[name]:
            with contextlib.suppress(ProviderError):  # a table we cannot read now: none
                tables[name] = provider_prices(settings.client(name), settings.env)
    return tables


def preflight(
    settings: AppSettings,
    prepared: Prepared,
    *,
    refuse: bool = True,
    refuse_empty: bool | None = None,
    on_rows: Callable[[int], None] | None = None,
    cwd: Path | None = None,
    now: datetime | None = None,
    offline: bool = False,
) -> PreflightSummary:
    """Every local check first (settings, prices set by the user, the store's facts, the file read once
    into the Tally and the spool), then the provider calls (the route proven), and return the summary
    (also kept in `prepared.summary`; `prepared.spec.fingerprint` set).

    `refuse`: raise Refused with the first refusal's line (a send), and EmptyCampaign for a file with no
    valid recipient, before any provider is called; False for a dry run or a test send, which show the
    refusals and go on. `refuse_empty` (default: as `refuse`) raises EmptyCampaign alone (the console's
    check, which shows the refusals but has nothing to show for an empty file). `offline` (a dry run): a provider that cannot be reached is noted ("credit: not
    checked: ghasedak unreachable") instead of raised. `on_rows(n)` after each block of n rows read.
    `cwd`: where smsdispatch.toml is looked for (prices), default the current directory. Nothing is
    stored. A route whose first providers are unusable starts on the first usable one (`route.py`).
    """
    request = prepared.request
    assert request is not None and prepared.template is not None
    options = options_for(settings, prepared)
    cwd = cwd or Path.cwd()
    caps_asked = parse_cap(request.budget, "--budget"), parse_cap(request.max_parts, "--max-parts")
    route = prepared.spec.route or (prepared.spec.provider,)
    configured = {name: configured_prices(name, settings.env, cwd) for name in route}  # a bad one: exit 2
    now = now or datetime.now(UTC)
    facts = store_facts(prepared.reader.engine if prepared.reader else None, options, now)
    tally, spool, skipped, loaded = _read_file(prepared, facts, options, on_rows)
    if (
        refuse if refuse_empty is None else refuse_empty
    ) and tally.recipients == 0:  # the file's problem, named before any provider is called
        raise EmptyCampaign(_nobody(prepared, loaded))
    # ---- the network: the route proven, then the provider's own prices where none was set
    proof = prove_route([prepared.client, *(settings.client(n) for n in route[1:])])
    if proof.usable and proof.usable[0] != prepared.client.name:
        _start_on(settings, prepared, proof)
    elif proof.usable and proof.skipped:  # a later provider skipped: it moves behind the usable ones
        prepared.spec = replace(prepared.spec, route=proof.route)
    elif not proof.usable and not (offline and not all(p.refused for p in proof.skipped)):
        raise proof.failure()
    client = prepared.client
    prices = configured[client.name]
    if not prices and proof.usable:
        try:
            prices = provider_prices(client, settings.env)  # Amoot lists its prices
        except ProviderError as exc:
            if not offline:
                raise ProviderUnreachable(unreachable_line(client, exc)) from None
    # The caps and the prices each chunk's estimate is stored with (BudgetError: a rial budget, no price).
    caps = spec_caps(*caps_asked, prices, client.name)
    options = replace(options, chunk=prepared.batch)  # the batch of the provider it starts on
    summary = summarise(
        tally,
        provider=client.name,
        account=client.settings.account_key,
        sender=prepared.spec.sender,
        loaded=loaded,
        options=options,
        prices=prices,
        balance=proof.credit(),
        earlier=facts.earlier,
        now=now,
    )
    summary = replace(
        summary,
        findings=[*proof.findings(strict=options.strict), *summary.findings],
        credit_note=None if proof.usable else proof.not_checked(),
    )
    if skipped:  # rejected_by_reason read them from the rejects file already; summarise counts them again
        summary = replace(summary, rejected=dict(loaded.rejected))
    _budget_covers_a_chunk(caps.get("budget_rial"), summary, prepared.batch)
    prepared.summary = summary
    prepared.skipped = skipped
    tables = route_prices(settings, proof, configured) if len(proof.usable) > 1 else {}
    prepared.spec = replace(
        prepared.spec,
        fingerprint=summary.fingerprint,
        # checked again where it is stored: another send of this list may be stored meanwhile
        duplicate_since=None
        if options.allow_duplicate
        else now - timedelta(seconds=options.duplicate_window),
        campaign_type=options.campaign_type.value,
        route_prices={**tables, client.name: prices or PriceTable()},
        **caps,
    )
    extra = [c for c in prepared.loader.block_columns if c not in ("row", "phone")]
    prepared.spool = spool
    prepared.blocks = plan(iter(spool), prepared.template, prepared.batch, extra)
    if refuse and summary.refusals:
        raise Refused.of(summary.refusals[0])
    return summary


def _nobody(prepared: Prepared, loaded: Loaded) -> str:
    """The line for a file with no valid recipient: no rows at all, or every row rejected and why."""
    file = prepared.request.file if prepared.request else prepared.loader
    if prepared.loader.stats.rows == 0:
        return f"{file}: no rows under the header, so nobody to send to; add the recipients and send again"
    reasons = ", ".join(
        f"{reason} {n:,}" for reason, n in sorted(loaded.rejected.items(), key=lambda x: -x[1])
    )
    rows = sum(loaded.rejected.values())
    return (
        f"{file}: no valid recipients, {rows:,} row{'s' if rows != 1 else ''} rejected ({reasons}); "
        f"each row and its reason is in {prepared.rejects_path}"
    )


def _read_file(
    prepared: Prepared,
    facts: StoreFacts,
    options: PreflightOptions,
    on_rows: Callable[[int], None] | None,
) -> tuple[Tally, BlockSpool, int, Loaded]:
    """The one pass over the file: each loader block counted by the Tally and kept in the spool; the rows
    the blacklist memory and --skip-recent took out appended to the rejects file, each with its campaign.
    Returns (tally, spool, rows skipped, loaded)."""
    assert prepared.template is not None
    tally = Tally(
        prepared.template,
        recent=facts.recent,
        skip_recent=options.skip_recent,
        blacklisted=facts.blacklisted,
        skip_blacklisted=not options.include_blacklisted,
    )
    spool = BlockSpool()
    loader = prepared.loader
    loader.on_suppressed = tally.add_suppressed  # the fingerprint names the list before suppressions
    others = [c for c in loader.block_columns if c not in (ROW, PHONE)]
    moved: list[pd.DataFrame] = []  # skipped rows: appended to the rejects file once the loader closed it
    for block in loader.blocks():
        kept = tally.add(block)
        if len(kept) < len(block):
            moved.append(block[~block[ROW].isin(kept[ROW])])
        if len(kept):
            spool.add(kept)
        if on_rows is not None:
            on_rows(len(block))
    skipped = len(tally.skipped) + len(tally.blacklist_skipped)
    if skipped:
        reasons = {
            row: f"blacklisted by the operator (campaign {c})" for row, _, c in tally.blacklist_skipped
        }
        reasons |= {row: f"sent recently (campaign {c})" for row, _, c in tally.skipped}
        _append_rejects(prepared.rejects_path, others, pd.concat(moved), reasons)
    loaded = Loaded(rejected_by_reason(prepared.rejects_path, loader.stats), loader.stats.suppressed)
    return tally, spool, skipped, loaded


def _start_on(settings: AppSettings, prepared: Prepared, proof: RouteProof) -> None:
    """The route's first providers are unusable: the campaign starts on the first usable one (its client,
    account, configured sender line and batch), the skipped ones kept last in the route."""
    request = prepared.request
    assert request is not None and prepared.template is not None
    client = settings.client(proof.usable[0])
    prepared.client = client
    prepared.batch = batch_size(
        client.settings.batch,
        personalised=not prepared.template.is_static,
        provider_personalised=client.capabilities.personalised,
    )
    prepared.spec = replace(
        prepared.spec,
        provider=client.name,
        account=client.settings.account_key,
        sender=client.settings.sender,  # --sender names a line of the provider skipped
        route=proof.route,
    )


def _budget_covers_a_chunk(budget: int | None, summary: PreflightSummary, batch: int) -> None:
    """A rial budget below one chunk's cost would pause before sending anything: BudgetError (exit 2).
    The cap is charged a chunk at a time (a claimed chunk may go out whole), so this names the step."""
    if budget is None or summary.cost is None or not summary.recipients:
        return
    step = min(batch, summary.recipients)
    chunk = summary.cost.estimate / summary.recipients * step
    if budget < chunk:
        raise BudgetError(
            f"--budget {budget:,} rial is less than one chunk ({step:,} recipients, about {chunk:,.0f} rial): "
            "the budget is charged a chunk at a time, so nothing would be sent; raise it"
        )


# ---- the test send -----------------------------------------------------------------------------------
@dataclass(frozen=True)
class TestSend:
    """The test campaigns `test_send` created, one per preview (a number gets each preview once, and a
    campaign holds a number once), with how each ended; `phones` in E.164."""

    phones: list[str]
    campaigns: list[CampaignSummary]
    results: list[StartResult]


def test_send(
    settings: AppSettings, prepared: Prepared, phones: list[str], *, follow: bool = False
) -> TestSend:
    """Send the preflight's previews (first row, longest text, an empty placeholder) to `phones` only:
    one small campaign per preview, marked `test` and named "TEST …", sent now (no window, no `--at`),
    with `follow` until every delivery report is in. The real campaign is not created.

    Needs `preflight` first (the previews). BadInput for a phone that is not an Iranian mobile, or a
    file with no valid recipient (no preview).
    """
    summary = prepared.summary
    if summary is None:
        raise ValueError("run preflight first: the test send sends its previews")
    if not summary.previews:
        raise BadInput(
            "--test-to: no valid recipient in the file, so no preview to send; see the rejects file"
        )
    previews = [(p.row, p.text, p.why) for p in summary.previews]
    done = send_previews(settings, prepared.spec, prepared.client, previews, phones, follow=follow)
    prepared.store = open_store(settings)
    return done


def send_previews(
    settings: AppSettings,
    spec: CampaignSpec,
    client: ProviderClient,
    previews: list[tuple[int, str, str]],
    phones: list[str],
    *,
    follow: bool = False,
) -> TestSend:
    """One small test campaign per preview `(row, text, why)` of the campaign `spec`, to `phones` only,
    started now (see `test_send`; the console's test send of a draft too). BadInput for a bad phone."""
    numbers = list(dict.fromkeys(phones_or_fail([p.strip() for p in phones if p.strip()])))
    if not numbers:
        raise BadInput("--test-to: give one or more phone numbers, e.g. --test-to 09121234567,09351234567")
    store = open_store(settings)
    assert store is not None
    created: list[CampaignSummary] = []
    results: list[StartResult] = []
    for row, text, why in previews:
        template = Template(text.replace("{", "{{").replace("}", "}}"))
        test_spec = replace(
            spec,
            name=f"TEST {spec.name}: {why} (row {row})",
            message=template.static_text or text,
            personalised=False,
            columns=[],
            send_at=None,
            window=None,
            fingerprint=None,
            test=True,
        )
        block = pd.DataFrame({ROW: [row] * len(numbers), PHONE: numbers})
        batch = batch_size(client.settings.batch, personalised=False, provider_personalised=False)
        campaign_id = store.create_campaign(test_spec, plan([block], template, batch, []), rejected=0)
        view = store.campaign(campaign_id)
        assert view is not None
        results.append(choose_mode(settings, store).start(campaign_id, follow=follow))
        created.append(
            CampaignSummary(
                campaign_id, view.recipients, 0, view.chunks, view.parts, "", results[-1].state, None
            )
        )
    return TestSend(numbers, created, results)
