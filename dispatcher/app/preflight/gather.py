"""What the preflight gathers: the facts outside the file, and the one pass over it.

`run_preflight(request, engine=..., env=...)` proves the provider's credentials with an authenticated
call (its balance), reads the prices, the store's unfinished campaigns and the numbers sent within the
frequency cap, loads the file once, and returns a `PreflightResult` whose `summary` carries the counts,
cost, credit, previews and findings. It stores nothing and sends nothing.

Errors: `CredentialsRejected` (exit 2) when the provider refuses the account; `LoadError`,
`TemplateError`, `ConfigurationError`, `PreflightSettingError` (exit 2) as the loader and settings raise
them; a provider that cannot be reached raises its `TransientError` (exit 1). The caller turns
`summary.refusals` into exit 3 (docs/architecture.md, "Preflight").
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pandas as pd
import pyarrow.csv as pacsv
from sqlalchemy.engine import Engine

from campaigns.load import LoadStats, RecipientLoader
from campaigns.preflight import (
    Loaded,
    PreflightOptions,
    PreflightSummary,
    RecentSends,
    Tally,
    UnfinishedCampaign,
    summarise,
)
from campaigns.prices import PriceTable
from campaigns.store.preflight import recent_sends, unfinished_campaigns
from campaigns.text import Template
from dispatcher.app.prices import configured_prices, provider_prices
from workers.errors import AccountError
from workers.providers import client_class
from workers.providers.base import ProviderClient
from workers.status import Balance

__all__ = [
    "CredentialsRejected",
    "PreflightRequest",
    "PreflightResult",
    "StoreFacts",
    "prices_for",
    "prove_credentials",
    "rejected_by_reason",
    "run_preflight",
    "store_facts",
    "without_recent",
]


class CredentialsRejected(Exception):
    """The provider refused the account on an authenticated call (exit 2, nothing stored)."""


@dataclass(frozen=True)
class PreflightRequest:
    """What `send` was asked: the file, the provider, the text and its options."""

    file: Path
    provider: str
    template: Template
    options: PreflightOptions
    column: str | None = None
    sender: str | None = None
    rejects_path: Path | None = None
    # A failover route: every provider after `provider`, each proven and its credit read.
    fallbacks: tuple[str, ...] = ()


@dataclass(frozen=True)
class PreflightResult:
    """The summary, and what `send` reuses: the client (credentials proven), the recent sends (to skip
    them on the storing pass), the balance as the provider reported it (None: no balance call) and the
    price table (each chunk's estimated rial, which a `--budget` is charged in)."""

    summary: PreflightSummary
    client: ProviderClient
    recent: RecentSends
    balance: Balance | None
    prices: PriceTable | None = None  # the table the estimate used: `CampaignSpec.prices` for the budget
    # each fallback provider of the route -> its balance (None: no balance call documented);
    # the cost is estimated with the first provider, whose prices the summary carries.
    fallback_balances: Mapping[str, Balance | None] = field(default_factory=dict)


def prove_credentials(client: ProviderClient) -> Balance | None:
    """The balance, read with the account's credentials: the proof they work. None where the provider
    documents no balance call (credentials then unproven until the first send). Raises
    CredentialsRejected when the provider refuses the account."""
    if not client.capabilities.balance:
        return None
    try:
        return client.balance()
    except AccountError as exc:
        raise CredentialsRejected(
            f"{client.name} refused the account ({exc.code or exc}); check the SMSDISPATCH_{client.name.upper().replace('-', '_')}_* "
            f"credentials (smsdispatch providers check)"
        ) from None


_prove_credentials = prove_credentials  # the old name


@dataclass(frozen=True)
class StoreFacts:
    """What the store tells the preflight: the suppression list, unfinished campaigns, recent sends."""

    suppressed: Mapping[str, str]
    unfinished: list[UnfinishedCampaign]
    recent: RecentSends


def store_facts(engine: Engine | None, frequency_cap: float, now: datetime) -> StoreFacts:
    """The store's facts (`engine` None: no store yet, so none); `frequency_cap` in seconds."""
    if engine is None:
        return StoreFacts({}, [], RecentSends.from_pairs([]))
    from campaigns.store import Store

    return StoreFacts(
        Store(engine).suppressed(),
        unfinished_campaigns(engine),
        recent_sends(engine, now - timedelta(seconds=frequency_cap)),
    )


def prices_for(client: ProviderClient, env: Mapping[str, str], cwd: Path | None) -> PriceTable:
    """The price table: the settings' (SMSDISPATCH_<P>_PRICE, smsdispatch.toml), else the provider's own."""
    return _prices(client, env, cwd)


def _prices(client: ProviderClient, env: Mapping[str, str], cwd: Path | None) -> PriceTable:
    table = configured_prices(client.name, env, cwd)
    return table if table else provider_prices(client, env)


def rejected_by_reason(rejects_path: Path | None, stats: LoadStats) -> dict[str, int]:
    """Rows the loader refused, by reason: read from the rejects file ("duplicate of row N" counted as
    "duplicate", every opt-out as "opted out"); from the loader's counts when there is no file."""
    if rejects_path is None or not rejects_path.exists():
        invalid = stats.rejected - stats.duplicates - stats.suppressed
        counts = {"invalid": invalid, "duplicate": stats.duplicates, "opted out": stats.suppressed}
        return {k: v for k, v in counts.items() if v}
    options = pacsv.ConvertOptions(include_columns=["reason"], column_types={"reason": "string"})
    reasons = pacsv.read_csv(rejects_path, convert_options=options).column("reason").to_pandas()
    reasons = reasons.fillna("").astype(str)
    reasons = reasons.mask(reasons.str.startswith("duplicate of row"), "duplicate")
    reasons = reasons.mask(reasons.str.startswith("opted out"), "opted out")
    return {str(k): int(v) for k, v in reasons.value_counts().items()}


def run_preflight(
    request: PreflightRequest,
    *,
    engine: Engine | None,
    env: Mapping[str, str],
    cwd: Path | None = None,
    now: datetime | None = None,
    client: ProviderClient | None = None,
) -> PreflightResult:
    """Credentials, prices, store, one pass over the file -> PreflightResult (module docstring).

    `engine` is the store's (None: no store yet, so no unfinished campaigns, no recent sends, no
    suppressions); `env` the merged configuration (dispatcher.config.load_config).
    """
    if client is None:
        cls = client_class(request.provider)
        client = cls(cls.load_settings(env))
    balance = prove_credentials(client)
    fallback_balances = {}
    for name in request.fallbacks:  # every provider of a failover route: credentials proven, credit read
        cls = client_class(name)
        fallback_balances[name] = prove_credentials(cls(cls.load_settings(env)))
    prices = _prices(client, env, cwd)
    facts = store_facts(engine, request.options.frequency_cap, now or datetime.now(UTC))
    suppressed, unfinished, recent = facts.suppressed, facts.unfinished, facts.recent
    loader = RecipientLoader(
        request.file, column=request.column, rejects_path=request.rejects_path, suppressed=suppressed
    )
    request.template.validate(loader.block_columns)
    tally = Tally(request.template, recent=recent, skip_recent=request.options.skip_recent)
    for block in loader.blocks():
        tally.add(block)
    loaded = Loaded(rejected_by_reason(request.rejects_path, loader.stats), loader.stats.suppressed)
    summary = summarise(
        tally,
        provider=client.name,
        account=client.settings.account_key,
        sender=request.sender or client.settings.sender,
        loaded=loaded,
        options=request.options,
        prices=prices,
        balance=balance,
        unfinished=unfinished,
    )
    return PreflightResult(summary, client, recent, balance, prices, fallback_balances)


def without_recent(blocks: Iterable[pd.DataFrame], recent: RecentSends) -> Iterator[pd.DataFrame]:
    """Loader blocks without the numbers in `recent` (`--skip-recent` on the storing pass)."""
    for block in blocks:
        hit = recent.lookup(block["phone"]) > 0
        yield block[~hit] if hit.any() else block
