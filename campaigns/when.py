"""When a campaign starts, in words people check: `--at` as people say it, and the start described.

Pure: every function takes `now` (an aware datetime) and returns values; nothing reads the clock.

`resolve_at(text, now)` reads `--at`: the absolute forms of `campaigns.windows.parse_when` (ISO-8601,
Jalali; Tehran time unless an offset is given), and the relative ones, always Tehran time:

- a weekday and a time, in English or Persian (`Friday 10:00`, `fri 10:00`, `جمعه 10:00`,
  `سه شنبه ساعت ۹:۳۰`): the next such moment (today, if that time is still ahead);
- `tomorrow 09:00` / `فردا 09:00`, `today 18:00` / `امروز 18:00`;
- a bare time (`10:00`): the next one (today if still ahead, else tomorrow).

Persian or Arabic-Indic digits are read as digits. After `ساعت` or `at` ("at the hour"), or after a day,
a whole hour needs no minutes, as people write it: `جمعه ساعت ۱۰` and `جمعه ۱۰` are Friday 10:00,
`ساعت ۱۰` the next 10:00, `Friday at 10` Friday 10:00; a bare `10` is not a time (write `10:00`).

It returns a `ResolvedAt` whose `echo()` says what the text was taken to mean, so the person can check.
`start_of(send_at, window, now)` describes the start for the preflight, the question and the JSON: the
moment in both calendars with its weekday and offset, and the send window (open or closed then, and
when sending really begins). Raises WhenError (bad input) naming the forms accepted.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

import jdatetime

from campaigns.windows import TEHRAN, WhenError, Window, parse_when

__all__ = ["Moment", "ResolvedAt", "Start", "moment", "resolve_at", "start_of"]

WEEKDAYS_EN = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")
# Python's weekday() order (Monday = 0); the spelling jdatetime uses (with ZWNJ)
WEEKDAYS_FA = ("دوشنبه", "سه\u200cشنبه", "چهارشنبه", "پنج\u200cشنبه", "جمعه", "شنبه", "یک\u200cشنبه")

_DIGITS = str.maketrans("۰۱۲۳۴۵۶۷۸۹٠١٢٣٤٥٦٧٨٩", "01234567890123456789")
_FOLD = str.maketrans({"ي": "ی", "ك": "ک", "ى": "ی", "\u200c": "", "\u200f": "", "\u200e": ""})
_TIME = r"(?P<h>\d{1,2}):(?P<m>\d{2})"
_NOISE = r"(?:\s+(?:at|ساعت))?"  # `Friday at 10:00`, `جمعه ساعت 10:00`
_DAY_THEN_TIME = re.compile(rf"^(?P<day>[^\d:]+?){_NOISE}\s+{_TIME}$")
_TIME_THEN_DAY = re.compile(rf"^(?:(?:at|ساعت)\s+)?{_TIME}\s+(?:on\s+)?(?P<day>[^\d:]+)$")
_BARE_TIME = re.compile(rf"^(?:at\s+|ساعت\s+)?{_TIME}$")
# a whole hour after the word for "at the hour": `ساعت 10` is `ساعت 10:00` (digits already Latin)
_WHOLE_HOUR = re.compile(r"(?<!\w)(at|ساعت)\s+(\d{1,2})(?![\d:])")
_DAY_THEN_HOUR = re.compile(r"^(?P<day>[^\d:]+?)\s+(?P<h>\d{1,2})$")  # `جمعه 10`, when it is a day
_TODAY, _TOMORROW = "today", "tomorrow"


def _day_words() -> dict[str, int | str]:
    """Spellings (lower case, no spaces or ZWNJ) -> a weekday (Monday = 0) or 'today' / 'tomorrow'."""
    words: dict[str, int | str] = {}
    for i, (en, fa) in enumerate(zip(WEEKDAYS_EN, WEEKDAYS_FA, strict=True)):
        words[en.lower()] = words[en[:3].lower()] = i
        words[fa.replace("\u200c", "")] = i
    words |= {"tue": 1, "tues": 1, "wed": 2, "thu": 3, "thur": 3, "thurs": 3}
    words |= {"today": _TODAY, "امروز": _TODAY, "tomorrow": _TOMORROW, "فردا": _TOMORROW}
    return words


_DAYS = _day_words()
FORMS = (
    "write ISO-8601 like 2026-12-04T10:00, Jalali like 1405/09/10 10:00, a weekday and a time like "
    "Friday 10:00, جمعه 10:00 or جمعه ساعت ۱۰, tomorrow 09:00 (فردا ساعت ۹), or a time like 10:00 "
    "(Tehran time)"
)


@dataclass(frozen=True)
class Moment:
    """One instant for people, in Tehran: both calendars, the weekday in English and Persian, the clock
    to the minute and the offset. `at` is aware UTC."""

    at: datetime

    @property
    def local(self) -> datetime:
        return self.at.astimezone(TEHRAN)

    @property
    def gregorian(self) -> str:
        return f"{self.local:%Y-%m-%d}"

    @property
    def jalali(self) -> str:
        return jdatetime.date.fromgregorian(date=self.local.date()).strftime("%Y/%m/%d")

    @property
    def weekday(self) -> str:
        return WEEKDAYS_EN[self.local.weekday()]

    @property
    def weekday_fa(self) -> str:
        return WEEKDAYS_FA[self.local.weekday()]

    @property
    def clock(self) -> str:
        return f"{self.local:%H:%M}"

    @property
    def offset(self) -> str:
        raw = self.local.strftime("%z")
        return f"{raw[:3]}:{raw[3:]}"

    def text(self) -> str:
        """`Friday 2026-12-04 10:00 +03:30 (جمعه 1405/09/13)`."""
        return f"{self.weekday} {self.gregorian} {self.clock} {self.offset} ({self.weekday_fa} {self.jalali})"

    def as_json(self) -> dict[str, str]:
        return {
            "at": self.at.isoformat(),
            "gregorian": self.gregorian,
            "jalali": self.jalali,
            "weekday": self.weekday,
            "weekday_fa": self.weekday_fa,
            "time": self.clock,
            "offset": self.offset,
            "zone": "Asia/Tehran",
        }


def moment(at: datetime) -> Moment:
    """A Moment of an aware datetime (a naive one is taken as UTC)."""
    return Moment((at if at.tzinfo else at.replace(tzinfo=UTC)).astimezone(UTC))


@dataclass(frozen=True)
class ResolvedAt:
    """`--at` as typed (`text`), what it means (`at`, aware UTC) and whether it was relative to now."""

    text: str
    at: datetime
    relative: bool

    def echo(self) -> str:
        """`--at "Friday 10:00" is Friday 2026-12-04 10:00 +03:30 (جمعه 1405/09/13)`."""
        return f'--at "{self.text}" is {moment(self.at).text()}'


def resolve_at(text: str, now: datetime) -> ResolvedAt:
    """`--at` -> ResolvedAt (module docstring). A relative form is always ahead of `now`; an absolute one
    may be in the past (the caller decides). Raises WhenError naming the forms accepted."""
    raw = " ".join(text.translate(_DIGITS).translate(_FOLD).strip().lower().split())
    raw = _WHOLE_HOUR.sub(r"\1 \2:00", raw)
    if (hour := _DAY_THEN_HOUR.match(raw)) and hour.group("day").replace(" ", "") in _DAYS:
        raw += ":00"
    relative = _relative(raw, text, now)
    if relative is not None:
        return ResolvedAt(text.strip(), relative, True)
    try:
        return ResolvedAt(text.strip(), parse_when(text), False)
    except WhenError:
        raise WhenError(f"--at {text!r} is not a time; {FORMS}") from None


def _relative(raw: str, text: str, now: datetime) -> datetime | None:
    """The moment a relative form means, or None when `raw` is not one (WhenError for a bad time)."""
    day: int | str | None = None
    match = _BARE_TIME.match(raw)
    if match is None:
        match = _DAY_THEN_TIME.match(raw) or _TIME_THEN_DAY.match(raw)
        if match is None:
            if raw.replace(" ", "") in _DAYS:
                raise WhenError(f"--at {text!r}: give the time too, e.g. {text.strip()} 10:00 (Tehran time)")
            return None
        day = _DAYS.get(match.group("day").replace(" ", ""))
        if day is None:
            return None
    hours, minutes = int(match.group("h")), int(match.group("m"))
    if hours > 23 or minutes > 59:
        raise WhenError(f"--at {text!r}: hours run 00-23 and minutes 00-59")
    clock = time(hours, minutes)
    today = now.astimezone(TEHRAN).date()
    if day == _TODAY:
        at = _at(today, clock)
        if at <= now:
            raise WhenError(f"--at {text!r}: {clock:%H:%M} has passed today; give a later time, or tomorrow")
        return at
    if day == _TOMORROW:
        return _at(today + timedelta(days=1), clock)
    if day is None:  # a bare time: the next one
        at = _at(today, clock)
        return at if at > now else _at(today + timedelta(days=1), clock)
    assert isinstance(day, int)
    at = _at(today + timedelta(days=(day - today.weekday()) % 7), clock)
    return at if at > now else at + timedelta(days=7)


def _at(day: date, clock: time) -> datetime:
    return datetime.combine(day, clock, tzinfo=TEHRAN).astimezone(UTC)


@dataclass(frozen=True)
class Start:
    """When a campaign starts, for people and machines: `at` None means now (as of `now`); `window` the
    daily send window (Tehran) or None; `first_send` when its first message may go (the start, or the
    window's next opening after it)."""

    at: datetime | None
    now: datetime
    window: Window | None

    @property
    def begins(self) -> datetime:
        return self.at if self.at is not None else self.now

    @property
    def window_open(self) -> bool | None:
        return None if self.window is None else self.window.is_open(self.begins)

    @property
    def first_send(self) -> datetime:
        return self.begins if self.window is None else self.window.next_open(self.begins)

    def start_text(self) -> str:
        """`now: Thursday 2026-12-03 14:05 +03:30 (پنج‌شنبه 1405/09/12)`, or the scheduled moment."""
        text = moment(self.begins).text()
        return f"now: {text}" if self.at is None else f"{text}, in {_ahead(self.at - self.now)}"

    def window_text(self) -> str:
        """`09:00-21:00 Tehran, open then`, `… closed then: the first message goes Friday …`, or none."""
        if self.window is None:
            return "none: messages go at any hour"
        if self.window_open:
            return f"{self.window} Tehran, open then"
        return f"{self.window} Tehran, closed then: the first message goes {moment(self.first_send).text()}"

    def question(self) -> str:
        """The confirmation's words: `starts now, Thursday 2026-12-03 14:05 +03:30; window 09:00-21:00`."""
        when = "now, " if self.at is None else ""
        text = f"starts {when}{moment(self.begins).text()}"
        if self.window is not None:
            text += f"; window {self.window}"
            if not self.window_open:
                text += f", so the first message goes {moment(self.first_send).text()}"
        return text

    def as_json(self) -> dict[str, Any]:
        """`{"now", "at", "window", "window_open", "first_send"}`: `at` a Moment's JSON (the start, now
        when `now` is true), `first_send` likewise."""
        return {
            "now": self.at is None,
            "at": moment(self.begins).as_json(),
            "window": str(self.window) if self.window else None,
            "window_open": self.window_open,
            "first_send": moment(self.first_send).as_json(),
        }


def start_of(send_at: datetime | None, window: Window | None, now: datetime) -> Start:
    """The start of a campaign sent at `send_at` (None: now) within `window` (None: any hour)."""
    return Start(send_at, now, window)


def _ahead(delta: timedelta) -> str:
    """`3 h 20 min`, `2 days 4 h`, `12 min` (to the minute; `less than a minute`)."""
    minutes = max(int(delta.total_seconds() // 60), 0)
    if minutes < 1:
        return "less than a minute"
    days, rest = divmod(minutes, 24 * 60)
    hours, mins = divmod(rest, 60)
    if days:
        return f"{days} day{'s' if days != 1 else ''} {hours} h"
    return f"{hours} h {mins} min" if hours else f"{mins} min"
