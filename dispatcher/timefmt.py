"""Times as people read them: the zone's local time with its offset, and the Jalali date on request.

`2026-11-29 13:05 +03:30`, or with the Jalali calendar `1405/09/08 2026-11-29 13:05 +03:30`.
Tehran by default (SMSDISPATCH_TIMEZONE names another IANA zone); SMSDISPATCH_CALENDAR=jalali
adds the Jalali date (jdatetime). Machines get ISO-8601 in UTC instead (the --json outputs).
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from zoneinfo import ZoneInfo

import jdatetime

from campaigns.windows import TEHRAN


class Calendar(StrEnum):
    GREGORIAN = "gregorian"
    JALALI = "jalali"


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
        text = f"{jdatetime.date.fromgregorian(date=local.date()):%Y/%m/%d} {text}"
    return text
