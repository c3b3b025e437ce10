"""Configuration: environment variables first; a `.env` file or a TOML file may add to them, never override.

TOML may name variables directly (`SMSDISPATCH_GHASEDAK_APIKEY = "..."`) or by section
(`[ghasedak]` / `apikey = "..."` means SMSDISPATCH_GHASEDAK_APIKEY). The file is
`smsdispatch.toml` in the working folder, or the one `SMSDISPATCH_CONFIG` names.
"""

from __future__ import annotations

import os
import tomllib
from collections.abc import MutableMapping
from pathlib import Path

from workers.errors import ConfigurationError
from workers.settings import PREFIX


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
        if isinstance(value, dict):
            for sub, inner in value.items():
                out[f"{PREFIX}{key.upper()}_{sub.upper()}"] = str(inner)
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
