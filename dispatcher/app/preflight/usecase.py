"""The preflight as front ends call it: what a prepared campaign will cost and whom it reaches, and the
checks, before anything is stored; and the test send of its previews (README, "Preflight").

`preflight(settings, prepared)` reads the file ONCE: the loader's blocks go through the `Tally` (counts,
previews, fingerprint, recent sends) and into a spool on disk; `prepared.blocks` then plans the kept
recipients from the spool, so `create` and `dry_run` store or count exactly what was checked, without
reading the file again (and without a window in which the file could change between check and store).

Order, so that a refusal stores nothing: credentials (the balance call) first, then the store's facts
(read-only: no database is created here), then the file. Errors: CredentialsRejected (bad input: exit 2),
PreflightSettingError (exit 2), Refused (exit 3) when `refuse` and a check refused, the loader's errors.
"""

from __future__ import annotations

import csv
import io
import pickle
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path

import pandas as pd

from campaigns.load import PHONE, ROW
from campaigns.plan import batch_size, plan
from campaigns.preflight import CampaignType, Loaded, PreflightOptions, PreflightSummary, Tally, summarise
from campaigns.text import Template
from dispatcher.app.accounts import phones_or_fail
from dispatcher.app.budget import BudgetError, parse_cap, spec_caps
from dispatcher.app.campaign import CampaignSummary, Prepared
from dispatcher.app.common import BadInput, Refused, open_store
from dispatcher.app.modes import StartResult, choose_mode
from dispatcher.app.preflight.gather import prices_for, prove_credentials, rejected_by_reason, store_facts
from dispatcher.config import AppSettings
from workers.status import Balance

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
    """The checks' options: SMSDISPATCH_MAX_PARTS, _STRICT, _FREQUENCY_CAP from the settings, the send
    window, and `send`'s flags (SendRequest)."""
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
        distributed=bool(settings.dispatch.broker_url),
    )


def _append_rejects(path: Path, others: list[str], skipped: pd.DataFrame, campaigns: list[int]) -> None:
    """Rows moved out by --skip-recent, appended to the loader's rejects file (row, value, reason, ...)."""
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    for (_, row), campaign in zip(skipped.iterrows(), campaigns, strict=True):
        phone = str(row[PHONE])
        shown = "0" + phone[3:] if phone.startswith("+98") else phone
        cells = ["" if pd.isna(row[c]) else str(row[c]) for c in others]
        writer.writerow([int(row[ROW]), shown, f"sent recently (campaign {campaign})", *cells])
    with path.open("a", encoding="utf-8", newline="") as fh:
        fh.write(buffer.getvalue())


def preflight(
    settings: AppSettings,
    prepared: Prepared,
    *,
    refuse: bool = True,
    on_rows: Callable[[int], None] | None = None,
    cwd: Path | None = None,
    now: datetime | None = None,
) -> PreflightSummary:
    """Prove the credentials, read the store's facts, read the file once into the Tally and the spool,
    and return the summary (also kept in `prepared.summary`; `prepared.spec.fingerprint` set).

    `refuse`: raise Refused with the first refusal's line (a send); False for a dry run or a test send,
    which show the refusals and go on. `on_rows(n)` after each block of n rows read. `cwd`: where
    smsdispatch.toml is looked for (prices), default the current directory. Nothing is stored.
    """
    request = prepared.request
    assert request is not None and prepared.template is not None
    options = options_for(settings, prepared)
    client = prepared.client
    balance = prove_credentials(client)
    # A failover route: every provider's key proven now, and the credit checked is the route's
    # together (when every provider reports it in one unit), since the route sends until each runs out.
    others = [prove_credentials(settings.client(name)) for name in prepared.spec.route[1:]]
    if balance is not None and others and all(b is not None and b.unit == balance.unit for b in others):
        balance = Balance(balance.amount + sum(b.amount for b in others if b is not None), balance.unit)
    prices = prices_for(client, settings.env, cwd or Path.cwd())
    # The caps and the prices each chunk's estimate is stored with (BudgetError: a rial budget, no price).
    caps = spec_caps(
        parse_cap(request.budget, "--budget"),
        parse_cap(request.max_parts, "--max-parts"),
        prices,
        client.name,
    )
    facts = store_facts(
        prepared.reader.engine if prepared.reader else None, options.frequency_cap, now or datetime.now(UTC)
    )
    tally = Tally(prepared.template, recent=facts.recent, skip_recent=options.skip_recent)
    spool = BlockSpool()
    loader = prepared.loader
    others = [c for c in loader.block_columns if c not in (ROW, PHONE)]
    moved: list[pd.DataFrame] = []  # --skip-recent: appended to the rejects file once the loader closed it
    for block in loader.blocks():
        kept = tally.add(block)
        if len(kept) < len(block):
            moved.append(block[~block[ROW].isin(kept[ROW])])
        if len(kept):
            spool.add(kept)
        if on_rows is not None:
            on_rows(len(block))
    skipped = len(tally.skipped)
    if skipped:
        _append_rejects(prepared.rejects_path, others, pd.concat(moved), [c for _, _, c in tally.skipped])
    loaded = Loaded(rejected_by_reason(prepared.rejects_path, loader.stats), loader.stats.suppressed)
    summary = summarise(
        tally,
        provider=client.name,
        account=client.settings.account_key,
        sender=prepared.spec.sender,
        loaded=loaded,
        options=options,
        prices=prices,
        balance=balance,
        unfinished=facts.unfinished,
    )
    if skipped:  # rejected_by_reason read them from the rejects file already; summarise counts them again
        summary = replace(summary, rejected=dict(loaded.rejected))
    _budget_covers_a_chunk(caps.get("budget_rial"), summary, prepared.batch)
    prepared.summary = summary
    prepared.skipped = skipped
    prepared.spec = replace(prepared.spec, fingerprint=summary.fingerprint, **caps)
    extra = [c for c in loader.block_columns if c not in ("row", "phone")]
    prepared.blocks = plan(iter(spool), prepared.template, prepared.batch, extra)
    if refuse and summary.refusals:
        raise Refused(summary.refusals[0].line())
    return summary


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
    numbers = list(dict.fromkeys(phones_or_fail([p.strip() for p in phones if p.strip()])))
    if not numbers:
        raise BadInput("--test-to: give one or more phone numbers, e.g. --test-to 09121234567,09351234567")
    store = open_store(settings)
    assert store is not None
    client = prepared.client
    created: list[CampaignSummary] = []
    results: list[StartResult] = []
    for preview in summary.previews:
        template = Template(preview.text.replace("{", "{{").replace("}", "}}"))
        spec = replace(
            prepared.spec,
            name=f"TEST {prepared.spec.name}: {preview.why} (row {preview.row})",
            message=template.static_text or preview.text,
            personalised=False,
            columns=[],
            send_at=None,
            window=None,
            fingerprint=None,
            test=True,
        )
        block = pd.DataFrame({ROW: [preview.row] * len(numbers), PHONE: numbers})
        batch = batch_size(client.settings.batch, personalised=False, provider_personalised=False)
        campaign_id = store.create_campaign(spec, plan([block], template, batch, []), rejected=0)
        view = store.campaign(campaign_id)
        assert view is not None
        results.append(choose_mode(settings, store).start(campaign_id, follow=follow))
        created.append(
            CampaignSummary(
                campaign_id, view.recipients, 0, view.chunks, view.parts, "", results[-1].state, None
            )
        )
    prepared.store = store
    return TestSend(numbers, created, results)
