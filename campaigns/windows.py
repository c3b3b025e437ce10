"""When to send: `--at` parsing (ISO-8601 or Jalali, Tehran time unless an offset is given) and send windows."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, time, timedelta
from zoneinfo import ZoneInfo

import jdatetime

TEHRAN = ZoneInfo("Asia/Tehran")
_DIGITS = str.maketrans("۰۱۲۳۴۵۶۷۸۹٠١٢٣٤٥٦٧٨٩", "01234567890123456789")
_JALALI = re.compile(r"^\s*(\d{4})[/-](\d{1,2})[/-](\d{1,2})(?:[ T]+(\d{1,2}):(\d{2})(?::(\d{2}))?)?\s*$")
_WINDOW = re.compile(r"^\s*(\d{1,2}):(\d{2})\s*-\s*(\d{1,2}):(\d{2})\s*$")


class WhenError(ValueError):
    pass


def parse_when(text: str) -> datetime:
    """An aware UTC datetime from ISO-8601 (`2026-12-04T10:00`, `...+03:30`) or Jalali (`1405/09/10 10:00`)."""
    raw = text.translate(_DIGITS).strip()
    match = _JALALI.match(raw)
    if match and int(match.group(1)) < 1700:  # a Jalali year (Gregorian years are ~2000+)
        y, m, d, hh, mm, ss = (int(g) if g else 0 for g in match.groups())
        try:
            local = jdatetime.datetime(y, m, d, hh, mm, ss).togregorian()
        except ValueError as exc:
            raise WhenError(
                f"--at {text!r}: not a Jalali date-time ({exc}); write it like 1405/09/10 10:00"
            ) from None
        return local.replace(tzinfo=TEHRAN).astimezone(UTC)
    try:
        parsed = datetime.fromisoformat(raw.replace("/", "-"))
    except ValueError:
        raise WhenError(
            f"--at {text!r} is not a date-time; write ISO-8601 like 2026-12-04T10:00 or Jalali like 1405/09/10 10:00"
        ) from None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=TEHRAN)
    return parsed.astimezone(UTC)


@dataclass(frozen=True)
class Window:
    """Daily send window in Tehran time; start > end means it spans midnight."""

    start: time
    end: time

    def __str__(self) -> str:
        return f"{self.start:%H:%M}-{self.end:%H:%M}"

    def is_open(self, at: datetime) -> bool:
        local = at.astimezone(TEHRAN).time()
        if self.start <= self.end:
            return self.start <= local < self.end
        return local >= self.start or local < self.end

    def seconds_until_open(self, at: datetime) -> float:
        """0 when open now, else the seconds until the window next opens (Tehran time)."""
        if self.is_open(at):
            return 0.0
        local = at.astimezone(TEHRAN)
        opening = local.replace(hour=self.start.hour, minute=self.start.minute, second=0, microsecond=0)
        if opening <= local:
            opening += timedelta(days=1)
        return (opening - local).total_seconds()

    def next_open(self, at: datetime) -> datetime:
        """`at` itself when open now, else the moment (UTC) the window next opens."""
        return (at + timedelta(seconds=self.seconds_until_open(at))).astimezone(UTC)


def closed_windows(windows: Mapping[int, str], at: datetime) -> dict[int, datetime]:
    """Campaign id -> when its window next opens, for the campaigns whose send window is closed at `at`."""
    closed: dict[int, datetime] = {}
    for campaign_id, text in windows.items():
        window = parse_window(text)
        if not window.is_open(at):
            closed[campaign_id] = window.next_open(at)
    return closed


def parse_window(text: str) -> Window:
    match = _WINDOW.match(text.translate(_DIGITS))
    if not match:
        raise WhenError(f"--window {text!r}: write it like 09:00-21:00 (Tehran time)")
    h1, m1, h2, m2 = (int(g) for g in match.groups())
    if not (0 <= h1 < 24 and 0 <= h2 <= 24 and m1 < 60 and m2 < 60):
        raise WhenError(f"--window {text!r}: hours run 00-23 and minutes 00-59")
    if (h1, m1) == (h2 % 24, m2):
        raise WhenError(
            f"--window {text!r}: start and end are the same; leave --window out to send at any time"
        )
    return Window(time(h1, m1), time(h2 % 24, m2))
