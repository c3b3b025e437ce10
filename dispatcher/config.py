"""Configuration: environment variables first; a `.env` file or a TOML file may add to them, never override.

`AppSettings` is what the use cases (`dispatcher.app`) are given: built from a mapping, never read
from `os.environ` behind the caller's back.

TOML may name variables directly (`SMSDISPATCH_GHASEDAK_APIKEY = "..."`) or by section
(`[ghasedak]` / `apikey = "..."` means SMSDISPATCH_GHASEDAK_APIKEY). The file is
`smsdispatch.toml` in the working folder, or the one `SMSDISPATCH_CONFIG` names.
"""

from __future__ import annotations

import os
import tomllib
from collections.abc import Mapping, MutableMapping
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from campaigns.liveness import HeartbeatSettings
from campaigns.windows import TEHRAN
from dispatcher.humane import Calendar, show_time
from workers.errors import ConfigurationError
from workers.providers import client_class
from workers.providers.base import ProviderClient
from workers.settings import PREFIX, DispatchSettings


def parse_dotenv(text: str) -> dict[str, str]:
    out: dict[str, str] = {}
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#") or "=" not in line:
            continue
        key, _, value = line.removeprefix("export ").partition("=")
        value = value.strip()
        if len(value) >= 2 and value[0] == value[-1] and value[0] in "'\"":
            value = value[1:-1]
        out[key.strip()] = value
    return out


def flatten_toml(data: dict) -> dict[str, str]:
    out: dict[str, str] = {}
    for key, value in data.items():
        if key.lower() == "routes" and isinstance(value, dict):
            # [routes.default] providers = ["ghasedak", "mediapayamak"] -> SMSDISPATCH_ROUTE_DEFAULT
            for name, route in value.items():
                providers = route.get("providers", []) if isinstance(route, dict) else route
                out[f"{PREFIX}ROUTE_{name.upper().replace('-', '_')}"] = ",".join(map(str, providers))
            continue
        if isinstance(value, dict):
            for sub, inner in value.items():
                out[f"{PREFIX}{key.upper().replace('-', '_')}_{sub.upper()}"] = str(inner)
        else:
            name = key if key.upper().startswith(PREFIX) else PREFIX + key.upper()
            out[name.upper()] = str(value)
    return out


def load_config(
    env: MutableMapping[str, str] | None = None, cwd: Path | None = None
) -> MutableMapping[str, str]:
    """Add `.env` and TOML values to `env` (os.environ by default) where a variable is not already set."""
    env = os.environ if env is None else env
    cwd = cwd or Path.cwd()
    extra: dict[str, str] = {}
    toml_path = Path(env.get(PREFIX + "CONFIG", "") or cwd / "smsdispatch.toml")
    if env.get(PREFIX + "CONFIG") and not toml_path.exists():
        raise ConfigurationError(f"{PREFIX}CONFIG={toml_path} does not exist; fix the path or unset it")
    if toml_path.exists():
        try:
            extra.update(flatten_toml(tomllib.loads(toml_path.read_text(encoding="utf-8"))))
        except tomllib.TOMLDecodeError as exc:
            raise ConfigurationError(f"{toml_path}: not valid TOML ({exc}); fix the file") from None
    dotenv = cwd / ".env"
    if dotenv.exists():
        for key, value in parse_dotenv(dotenv.read_text(encoding="utf-8")).items():
            extra.setdefault(key, value)
    for key, value in extra.items():
        if key not in env:
            env[key] = value
    return env


@dataclass(frozen=True)
class AppSettings:
    """Everything a use case reads: the dispatch settings, the provider accounts' variables
    (`SMSDISPATCH_<PROVIDER>_*`, read from `env`), and how times are shown to people."""

    dispatch: DispatchSettings
    env: Mapping[str, str] = field(default_factory=dict)
    zone: ZoneInfo = TEHRAN
    calendar: Calendar = Calendar.GREGORIAN
    heartbeat: HeartbeatSettings = field(default_factory=HeartbeatSettings)

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> AppSettings:
        """From a mapping (os.environ by default); raises ConfigurationError naming a bad variable."""
        env = os.environ if env is None else env
        zone_name = (env.get(PREFIX + "TIMEZONE") or "").strip()
        try:
            zone = ZoneInfo(zone_name) if zone_name else TEHRAN
        except (ZoneInfoNotFoundError, ValueError):
            raise ConfigurationError(
                f"{PREFIX}TIMEZONE={zone_name!r} is not a time zone; write one like Asia/Tehran"
            ) from None
        calendar_name = (env.get(PREFIX + "CALENDAR") or Calendar.GREGORIAN).strip().lower()
        if calendar_name not in set(Calendar):
            raise ConfigurationError(f"{PREFIX}CALENDAR={calendar_name!r}: write gregorian or jalali")
        try:
            heartbeat = HeartbeatSettings.from_env(env)
        except ValueError as exc:
            raise ConfigurationError(str(exc)) from None
        return cls(DispatchSettings.from_env(env), env, zone, Calendar(calendar_name), heartbeat)

    def show_time(self, moment: datetime) -> str:
        """A time for people: `2026-11-29 13:05 +03:30` (Jalali date first with the Jalali calendar)."""
        return show_time(moment, self.zone, self.calendar)

    def client(self, provider: str) -> ProviderClient:
        """A client for the account configured in `env`; raises ConfigurationError naming what is missing."""
        cls = client_class(provider)
        return cls(cls.load_settings(self.env))
