"""The preflight's settings and options, and the earlier campaigns its checks compare with. Pure.

`PreflightOptions.from_env` reads SMSDISPATCH_MAX_PARTS, _STRICT, _FREQUENCY_CAP, _DUPLICATE_WINDOW and
_BLACKLIST_MEMORY (README, "Configuration") beside `send`'s flags; `EarlierCampaign` is a campaign of this
store as `campaigns.store.preflight.earlier_campaigns` reads it.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime

from campaigns.preflight.summary import CampaignType
from campaigns.windows import TEHRAN

__all__ = [
    "DuplicateCampaign",
    "EarlierCampaign",
    "PreflightOptions",
    "PreflightSettingError",
    "continue_command",
    "parse_days",
    "parse_duration",
]

FREQUENCY_CAP_DEFAULT = 24 * 3600.0  # seconds
DUPLICATE_WINDOW_DEFAULT = 7 * 86400.0  # seconds: SMSDISPATCH_DUPLICATE_WINDOW
BLACKLIST_MEMORY_DEFAULT = 30 * 86400.0  # seconds: SMSDISPATCH_BLACKLIST_MEMORY (30 days)
MAX_PARTS_DEFAULT = 4
_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(s|m|h|d)?\s*$", re.I)
_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


class PreflightSettingError(ValueError):
    """A preflight setting that cannot be read (exit 2): the message names it and how to write it."""


def parse_duration(text: str, setting: str) -> float:
    """`"24h"`, `"90m"`, `"2d"`, `"3600"` (seconds) -> seconds."""
    match = _DURATION.match(text)
    if not match:
        raise PreflightSettingError(f"{setting}={text!r} is not a duration; write it like 24h, 90m or 3600")
    return float(match.group(1)) * _SECONDS[(match.group(2) or "s").lower()]


def parse_days(text: str, setting: str) -> float:
    """`"30"` (days), `"30d"`, `"12h"` -> seconds; `"0"` turns the memory off."""
    stripped = text.strip()
    return (
        float(stripped) * 86400 if re.fullmatch(r"\d+(?:\.\d+)?", stripped) else parse_duration(text, setting)
    )


def _tehran(moment: datetime) -> str:
    """`2026-11-29 13:05 +03:30`: the default way a check names a time (Tehran, with its offset)."""
    local = moment.astimezone(TEHRAN)
    offset = int((local.utcoffset() or 0).total_seconds() // 60)  # type: ignore[union-attr]
    sign = "-" if offset < 0 else "+"
    return f"{local:%Y-%m-%d %H:%M} {sign}{abs(offset) // 60:02d}:{abs(offset) % 60:02d}"


@dataclass(frozen=True)
class PreflightOptions:
    """`send`'s options and settings the checks read. `frequency_cap`, `duplicate_window` and
    `blacklist_memory` in seconds (0: that memory is off); `distributed` picks the command that continues
    an unfinished campaign (`watch` where workers send, `run` where this host does). `budget` (rial) and
    `part_cap` (SMS parts) are `--budget` and `--max-parts`, charged `chunk` recipients at a time (0:
    unknown). `show_time` writes a time for people (the CLI's own format; default Tehran)."""

    campaign_type: CampaignType = CampaignType.PROMOTIONAL
    window: str | None = None  # "HH:MM-HH:MM" Tehran time, None for none
    max_parts: int = MAX_PARTS_DEFAULT
    strict: bool = False
    frequency_cap: float = FREQUENCY_CAP_DEFAULT
    duplicate_window: float = DUPLICATE_WINDOW_DEFAULT
    blacklist_memory: float = BLACKLIST_MEMORY_DEFAULT
    allow_partial: bool = False
    allow_duplicate: bool = False
    skip_recent: bool = False
    include_blacklisted: bool = False
    distributed: bool = False
    budget: int | None = None
    part_cap: int | None = None
    chunk: int = 0
    show_time: Callable[[datetime], str] | None = field(default=None, compare=False)

    @classmethod
    def from_env(cls, env: Mapping[str, str], **flags: object) -> PreflightOptions:
        """SMSDISPATCH_MAX_PARTS, _STRICT, _FREQUENCY_CAP, _DUPLICATE_WINDOW, _BLACKLIST_MEMORY from `env`,
        plus `send`'s flags (field names above). Raises PreflightSettingError for a value it cannot read."""
        max_parts_text = (env.get("SMSDISPATCH_MAX_PARTS") or "").strip() or str(MAX_PARTS_DEFAULT)
        if not max_parts_text.isdigit() or int(max_parts_text) < 1:
            raise PreflightSettingError(
                f"SMSDISPATCH_MAX_PARTS={max_parts_text!r}: write a whole number like 4"
            )
        strict = (env.get("SMSDISPATCH_STRICT") or "").strip().lower() in ("1", "true", "yes", "on")
        cap_text = (env.get("SMSDISPATCH_FREQUENCY_CAP") or "").strip()
        cap = parse_duration(cap_text, "SMSDISPATCH_FREQUENCY_CAP") if cap_text else FREQUENCY_CAP_DEFAULT
        window_text = (env.get("SMSDISPATCH_DUPLICATE_WINDOW") or "").strip()
        window = (
            parse_duration(window_text, "SMSDISPATCH_DUPLICATE_WINDOW")
            if window_text
            else DUPLICATE_WINDOW_DEFAULT
        )
        memory_text = (env.get("SMSDISPATCH_BLACKLIST_MEMORY") or "").strip()
        memory = (
            parse_days(memory_text, "SMSDISPATCH_BLACKLIST_MEMORY")
            if memory_text
            else BLACKLIST_MEMORY_DEFAULT
        )
        return cls(  # type: ignore[arg-type]
            max_parts=int(max_parts_text),
            strict=strict,
            frequency_cap=cap,
            duplicate_window=window,
            blacklist_memory=memory,
            **flags,
        )

    def when(self, moment: datetime) -> str:
        """A time for people, as `show_time` writes it."""
        return (self.show_time or _tehran)(moment)


@dataclass(frozen=True)
class EarlierCampaign:
    """A campaign of this store the checks compare with: unfinished (draft, scheduled, running, paused),
    or created or finished within SMSDISPATCH_DUPLICATE_WINDOW (`campaigns.store.preflight`)."""

    id: int
    name: str
    state: str
    fingerprint: str | None
    created_at: datetime | None = None
    finished_at: datetime | None = None

    @property
    def finished(self) -> bool:
        return self.state in ("completed", "cancelled", "failed")


class DuplicateCampaign(Exception):
    """Raised by the store when the campaign being created has the same fingerprint as `campaign`, stored
    meanwhile (after the preflight checked): nothing is stored, the caller refuses it like the preflight
    would (`campaigns.preflight.checks.duplicate_finding`)."""

    def __init__(self, campaign: EarlierCampaign) -> None:
        super().__init__(f"the same recipients and text as campaign {campaign.id}")
        self.campaign = campaign


def continue_command(campaign: EarlierCampaign, *, distributed: bool) -> str:
    """The command that carries an unfinished campaign on from where it stopped."""
    if campaign.state == "paused":
        return f"smsdispatch resume {campaign.id}"
    if campaign.state in ("running", "draft") and not distributed:
        return f"smsdispatch run {campaign.id}"
    return f"smsdispatch watch {campaign.id}"
