"""Where a provider's SMS prices come from, for the preflight's cost estimate.

In this order, the first that gives a price table wins:
1. `SMSDISPATCH_<P>_PRICE` (environment, `.env`, or `[<p>] price = ...` in smsdispatch.toml): the user's
   own word beats anything read elsewhere;
2. the `[prices]` table of smsdispatch.toml (campaigns.prices documents both spellings);
3. the provider's own prices, where its API lists them: Amoot `AccountStatus` gives
   `{Base,Service,Ads}SMS_{Persian,English}Price` in rial (shared/providers.md §4). The docs do not say
   which of Base/Service/Ads a campaign is charged, so `SMSDISPATCH_AMOOT_PRICE_KIND` (base, service or
   ads) picks one; unset, the highest of the three is used, an estimate that errs on the safe side.
   Persian prices are taken for UCS-2 texts, English ones for GSM-7.
"""

from __future__ import annotations

import tomllib
from collections.abc import Mapping
from pathlib import Path

from campaigns.prices import PriceError, PriceTable, parse_price_setting, price_table_from_toml
from campaigns.text import Alphabet
from workers.errors import ConfigurationError
from workers.providers.base import ProviderClient
from workers.settings import PREFIX, env_prefix

__all__ = ["amoot_price_table", "configured_prices", "provider_prices"]

_KINDS = {"base": "BaseSMS", "service": "ServiceSMS", "ads": "AdsSMS"}
_LANGUAGE = {Alphabet.UCS2: "Persian", Alphabet.GSM7: "English"}


def _toml_prices(env: Mapping[str, str], cwd: Path) -> Mapping[str, object]:
    path = Path(env.get(PREFIX + "CONFIG", "") or cwd / "smsdispatch.toml")
    if not path.exists():
        return {}
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as exc:
        raise ConfigurationError(f"{path}: not valid TOML ({exc}); fix the file") from None
    table = data.get("prices") or {}
    return table if isinstance(table, Mapping) else {}


def configured_prices(provider: str, env: Mapping[str, str], cwd: Path | None = None) -> PriceTable:
    """The price table the user set for `provider` (1 and 2 above); empty when none.

    Raises ConfigurationError (exit 2) naming the setting when a price cannot be read.
    """
    setting = f"{env_prefix(provider)}PRICE"
    try:
        table = parse_price_setting(env.get(setting, ""), setting)
        if table:
            return table
        return price_table_from_toml(
            _toml_prices(env, cwd or Path.cwd()), provider, "smsdispatch.toml [prices]"
        )
    except PriceError as exc:
        raise ConfigurationError(str(exc)) from None


def amoot_price_table(fields: Mapping[str, float], kind: str = "") -> PriceTable:
    """Amoot's AccountStatus price fields -> a table by alphabet (module docstring, 3)."""
    kinds = [_KINDS[kind]] if kind else list(_KINDS.values())
    prices = {}
    for alphabet, language in _LANGUAGE.items():
        found = [fields[f"{k}_{language}Price"] for k in kinds if f"{k}_{language}Price" in fields]
        if found:
            prices[(None, alphabet)] = max(found)
    return PriceTable(prices, "amoot AccountStatus")


def provider_prices(client: ProviderClient, env: Mapping[str, str]) -> PriceTable:
    """The provider's own price table (3 above), or an empty one where its API lists no prices."""
    prices = getattr(client, "prices", None)
    if prices is None:
        return PriceTable(source=client.name)
    kind = env.get(f"{env_prefix(client.name)}PRICE_KIND", "").strip().lower()
    if kind and kind not in _KINDS:
        raise ConfigurationError(
            f"{env_prefix(client.name)}PRICE_KIND={kind!r}: choose one of {', '.join(_KINDS)}"
        )
    return amoot_price_table(prices(), kind)
