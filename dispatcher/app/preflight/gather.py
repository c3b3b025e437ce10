"""What the preflight gathers: the facts outside the file, and the one pass over it.

`run_preflight(request, engine=..., env=...)` proves the provider's credentials with an authenticated
call (its balance), reads the prices, the store's earlier campaigns (the duplicate check), the numbers
sent within the frequency cap and the operator blacklist memory, loads the file once, and returns a `PreflightResult` whose `summary` carries the counts,
cost, credit, previews and findings. It stores nothing and sends nothing.

Errors: `CredentialsRejected` (exit 2) when the provider refuses the account; `LoadError`,
`TemplateError`, `ConfigurationError`, `PreflightSettingError` (exit 2) as the loader and settings raise
them; `ProviderUnreachable` (exit 1) for a provider that cannot be reached or does not answer readably,
one line naming its URL and setting. The caller turns `summary.refusals` into exit 3
(docs/architecture.md, "Preflight").
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pandas as pd
import pyarrow.csv as pacsv
import requests
from sqlalchemy.engine import Engine

from campaigns.load import LoadStats, RecipientLoader
from campaigns.preflight import (
    CampaignType,
    EarlierCampaign,
    Loaded,
    PreflightOptions,
    PreflightSummary,
    RecentSends,
    Tally,
    summarise,
)
from campaigns.prices import PriceTable
from campaigns.store.preflight import blacklisted_numbers, earlier_campaigns, recent_sends
from campaigns.text import Template
from dispatcher.app.prices import configured_prices, provider_prices
from workers.errors import AccountError, ProviderError
from workers.providers import client_class
from workers.providers.base import ProviderClient
from workers.status import Balance

__all__ = [
    "CredentialsRejected",
    "ProviderUnreachable",
    "PreflightRequest",
    "PreflightResult",
    "StoreFacts",
    "prices_for",
    "prove_credentials",
    "rejected_by_reason",
    "run_preflight",
    "store_facts",
    "unreachable_line",
    "without_recent",
]


class CredentialsRejected(Exception):
    """The provider refused the account on an authenticated call (exit 2, nothing stored)."""


class ProviderUnreachable(Exception):
    """The provider could not be reached, or did not answer in a way we can read (exit 1, nothing
    stored): the message is one line naming the URL, what happened and the setting to check."""


def unreachable_line(client: ProviderClient, exc: ProviderError) -> str:
    """`ghasedak cannot be reached at https://…/v2 (connection refused); check SMSDISPATCH_GHASEDAK_URL
    and the network, or try again later`: the base URL, a plain reason (no exception class names) and
    the setting. `exc` is the call's error (a transport failure, an HTTP status, a provider code)."""
    setting = client.settings.env_name("url")
    cause = exc.__cause__
    if isinstance(cause, requests.exceptions.RequestException):
        where, why = f"{client.name} cannot be reached at {client.settings.url}", _transport_reason(cause)
    else:  # it answered, but not usably: an HTTP status or a provider code
        where = f"{client.name} at {client.settings.url} did not answer usably"
        http = exc.code is not None and exc.code.startswith("HTTP")
        why = exc.message if http else exc.describe().removeprefix(f"{client.name} ")
    return f"{where} ({why}); check {setting} and the network, or try again later"


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


def _transport_reason(exc: requests.exceptions.RequestException) -> str:
    """A transport failure in words (never the exception's class name)."""
    if isinstance(exc, requests.exceptions.Timeout):
        return "no answer in time"
    if isinstance(exc, requests.exceptions.SSLError):
        return "the secure connection failed"
    if isinstance(
        exc,
        requests.exceptions.InvalidURL
        | requests.exceptions.MissingSchema
        | requests.exceptions.InvalidSchema,
    ):
        return "not a valid URL"
    if isinstance(exc, requests.exceptions.ConnectionError):
        text = str(exc).lower()
        if "resolve" in text or "name or service" in text or "nodename" in text:
            return "its host name is not found"
        return "connection refused" if "refused" in text else "the connection failed"
    return "no complete reply"


def prove_credentials(client: ProviderClient) -> Balance | None:
    """The balance, read with the account's credentials: the proof they work. None where the provider
    documents no balance call (credentials then unproven until the first send). Raises
    CredentialsRejected when the provider refuses the account, ProviderUnreachable when it cannot be
    reached or its answer cannot be read."""
    if not client.capabilities.balance:
        return None
    try:
        return client.balance()
    except AccountError as exc:
        raise CredentialsRejected(
            f"{client.name} refused the account ({exc.code or exc}); check the SMSDISPATCH_{client.name.upper().replace('-', '_')}_* "
            f"credentials (smsdispatch providers check)"
        ) from None
    except ProviderError as exc:
        raise ProviderUnreachable(unreachable_line(client, exc)) from None


_prove_credentials = prove_credentials  # the old name


@dataclass(frozen=True)
class StoreFacts:
    """What the store tells the preflight: the suppression list, the earlier campaigns the duplicate
    check compares with, recent sends, and the operator blacklist memory (None: not looked at)."""

    suppressed: Mapping[str, str]
    earlier: list[EarlierCampaign]
    recent: RecentSends
    blacklisted: RecentSends | None = None


def store_facts(engine: Engine | None, options: PreflightOptions | float, now: datetime) -> StoreFacts:
    """The store's facts (`engine` None: no store yet, so none). `options` gives the frequency cap, the
    duplicate window and the blacklist memory (a number: the frequency cap in seconds alone). The
    blacklist memory is read for a promotional campaign only (transactional ones are not touched)."""
    if not isinstance(options, PreflightOptions):
        options = PreflightOptions(frequency_cap=float(options))
    if engine is None:
        return StoreFacts({}, [], RecentSends.from_pairs([]))
    from campaigns.store import Store

    promotional = options.campaign_type is CampaignType.PROMOTIONAL and options.blacklist_memory > 0
    window = max(options.duplicate_window, options.frequency_cap)  # the recent warning's campaigns too
    return StoreFacts(
        Store(engine).suppressed(),
        earlier_campaigns(engine, now - timedelta(seconds=window)),
        recent_sends(engine, now - timedelta(seconds=options.frequency_cap)),
        blacklisted_numbers(engine, now - timedelta(seconds=options.blacklist_memory))
        if promotional
        else None,
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
    """Store, one pass over the file, then the route proven and priced -> PreflightResult (module
    docstring). Local first: the file's errors are raised before any provider is called.

    `engine` is the store's (None: no store yet, so no earlier campaigns, no recent sends, no
    suppressions); `env` the merged configuration (dispatcher.config.load_config). Of a route
    (`request.fallbacks`), a provider that is unreachable or refuses the account is skipped
    (`dispatcher.app.preflight.route`); none usable raises the route's failure.
    """
    from dispatcher.app.preflight.route import prove_route

    if client is None:
        cls = client_class(request.provider)
        client = cls(cls.load_settings(env))
    others = []
    for name in request.fallbacks:
        cls = client_class(name)
        others.append(cls(cls.load_settings(env)))
    now = now or datetime.now(UTC)
    facts = store_facts(engine, request.options, now)
    loader = RecipientLoader(
        request.file, column=request.column, rejects_path=request.rejects_path, suppressed=facts.suppressed
    )
    request.template.validate(loader.block_columns)
    tally = Tally(
        request.template,
        recent=facts.recent,
        skip_recent=request.options.skip_recent,
        blacklisted=facts.blacklisted,
        skip_blacklisted=not request.options.include_blacklisted,
    )
    loader.on_suppressed = tally.add_suppressed
    for block in loader.blocks():
        tally.add(block)
    loaded = Loaded(rejected_by_reason(request.rejects_path, loader.stats), loader.stats.suppressed)
    proof = prove_route([client, *others])  # the network, after every local check
    if not proof.usable:
        raise proof.failure()
    balances = {p.provider: p.balance for p in proof.proofs if p.usable}
    client = next(c for c in (client, *others) if c.name == proof.usable[0])
    prices = _prices(client, env, cwd)
    summary = summarise(
        tally,
        provider=client.name,
        account=client.settings.account_key,
        sender=request.sender or client.settings.sender,
        loaded=loaded,
        options=request.options,
        prices=prices,
        balance=balances[client.name],
        earlier=facts.earlier,
        now=now,
    )
    fallback = {name: balances[name] for name in proof.usable[1:]}
    return PreflightResult(summary, client, facts.recent, balances[client.name], prices, fallback)


def without_recent(blocks: Iterable[pd.DataFrame], recent: RecentSends) -> Iterator[pd.DataFrame]:
    """Loader blocks without the numbers in `recent` (`--skip-recent` on the storing pass)."""
    for block in blocks:
        hit = recent.lookup(block["phone"]) > 0
        yield block[~hit] if hit.any() else block
