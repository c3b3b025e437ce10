"""What people read: Tehran time with its offset, Jalali dates, rial with separators, phones as `0912…`.

`show_time` is the one time format of the CLI (`2026-11-29 13:05 +03:30`, with the Jalali date first
under SMSDISPATCH_CALENDAR=jalali; SMSDISPATCH_TIMEZONE names another IANA zone); `tehran`/`jalali`
are the reports' columns (to the second).

Pure formatting, no I/O. Machines get ISO-8601 UTC and E.164 elsewhere; these strings are for sheets,
tables and charts. `SMSDISPATCH_CALENDAR=jalali` makes `calendar_from_env` choose Jalali dates where a
command shows one date (the reports show both calendars).
"""

from __future__ import annotations

import os
import re
from datetime import date, datetime
from enum import StrEnum
from functools import lru_cache
from zoneinfo import ZoneInfo

import jdatetime

from campaigns.windows import TEHRAN
from workers.providers.phones import national

NOT_KNOWN = "not known"
_PERSIAN_LETTER = re.compile(r"[\u0600-\u06ff\ufb50-\ufdff\ufe70-\ufeff]")
_LATIN_LETTER = re.compile(r"[A-Za-z]")


class Calendar(StrEnum):
    GREGORIAN = "gregorian"
    JALALI = "jalali"


def calendar_from_env(env: dict[str, str] | None = None) -> Calendar:
    """`SMSDISPATCH_CALENDAR` (gregorian, the default, or jalali); anything else is gregorian."""
    value = (env if env is not None else os.environ).get("SMSDISPATCH_CALENDAR", "").strip().lower()
    return Calendar.JALALI if value == Calendar.JALALI else Calendar.GREGORIAN


def tehran(at: datetime | None) -> str:
    """`2026-11-29 13:07:30 +03:30` (Tehran wall clock and its offset); '' for None."""
    if at is None:
        return ""
    local = at.astimezone(TEHRAN)
    return f"{local:%Y-%m-%d %H:%M:%S} {offset_text(local)}"


def offset_text(moment: datetime) -> str:
    """`+03:30` for a zone-aware time (`%z` would give `+0330`)."""
    offset = moment.utcoffset()
    minutes = int(offset.total_seconds() // 60) if offset is not None else 0
    sign = "-" if minutes < 0 else "+"
    return f"{sign}{abs(minutes) // 60:02d}:{abs(minutes) % 60:02d}"


def show_time(moment: datetime, zone: ZoneInfo = TEHRAN, calendar: Calendar = Calendar.GREGORIAN) -> str:
    """One time for people, to the minute, always with its offset. A naive `moment` is taken as UTC."""
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=ZoneInfo("UTC"))
    local = moment.astimezone(zone)
    text = f"{local:%Y-%m-%d %H:%M} {offset_text(local)}"
    if calendar == Calendar.JALALI:
        text = f"{_jalali_date(local.date())} {text}"
    return text


def jalali(at: datetime | None) -> str:
    """`1405/09/08 13:07:30` (the Jalali date and Tehran clock time); '' for None."""
    if at is None:
        return ""
    local = at.astimezone(TEHRAN)
    return f"{_jalali_date(local.date())} {local:%H:%M:%S}"


@lru_cache(maxsize=1024)
def _jalali_date(day: date) -> str:
    """`1405/09/08` for a Gregorian date (cached: a report's rows share few days)."""
    return jdatetime.date.fromgregorian(date=day).strftime("%Y/%m/%d")


def when(at: datetime | None, calendar: Calendar = Calendar.GREGORIAN) -> str:
    """One date-time for people in the chosen calendar, Tehran time (the offset shown with Gregorian)."""
    return jalali(at) if calendar == Calendar.JALALI else tehran(at)


def rial(amount: int | float | None) -> str:
    """`1,234,567 rial`; `not known` for None (no cost recorded yet)."""
    return NOT_KNOWN if amount is None else f"{round(amount):,} rial"


def local_phone(e164: str) -> str:
    """An Iranian number as people write it: `+989121234567` -> `09121234567`; anything else unchanged
    (the one spelling rule, `workers.providers.phones.national`)."""
    return national(e164)


def is_persian(text: str) -> bool:
    """True when the text has more Persian/Arabic letters than Latin ones (right-to-left layout)."""
    persian = len(_PERSIAN_LETTER.findall(text))
    return persian > 0 and persian >= len(_LATIN_LETTER.findall(text))


def percent(part: int, whole: int) -> float:
    """part/whole as a percentage rounded to one decimal; 0.0 when whole is 0."""
    return round(100 * part / whole, 1) if whole else 0.0


def duration_text(seconds: float | None) -> str:
    """`2h 05m`, `4m 10s`, `12s`; '' for None."""
    if seconds is None:
        return ""
    from campaigns.progress import duration

    return duration(seconds)
