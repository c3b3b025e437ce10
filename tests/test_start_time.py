"""Time you can check: `--at` as people say it (a weekday in English or Persian, tomorrow/فردا, a bare time),
always echoed as resolved; the start (both calendars, weekday, time with its offset) and the window in the
preflight, the question and the JSON; and `status` of a campaign waiting for its window when nothing is
sending it. The pure parts with a fixed clock; the CLI as a person types it, against the sandbox."""

from __future__ import annotations

import json
import signal
from datetime import UTC, date, datetime, time, timedelta

import pytest

from campaigns.liveness import liveness_of
from campaigns.when import WEEKDAYS_FA, resolve_at, start_of
from campaigns.windows import TEHRAN, WhenError, parse_window
from tests.support.cli import run_cli
from tests.support.clock import tehran_clock
from tests.test_status_cli import _send_in_background, cli_env, status_json  # noqa: F401 - cli_env is a fixture

NOW = datetime(2026, 12, 3, 10, 35, tzinfo=UTC)  # Thursday 14:05 Tehran, 1405/09/12


def tehran(y: int, mo: int, d: int, h: int, mi: int) -> datetime:
    return datetime(y, mo, d, h, mi, tzinfo=TEHRAN).astimezone(UTC)


@pytest.mark.parametrize(
    "text, expected",
    [
        ("Friday 10:00", tehran(2026, 12, 4, 10, 0)),
        ("friday at 10:00", tehran(2026, 12, 4, 10, 0)),
        ("Fri 10:00", tehran(2026, 12, 4, 10, 0)),
        ("10:00 Friday", tehran(2026, 12, 4, 10, 0)),
        ("جمعه 10:00", tehran(2026, 12, 4, 10, 0)),
        ("جمعه ساعت ۱۰:۰۰", tehran(2026, 12, 4, 10, 0)),
        ("جمعه ساعت ۱۰", tehran(2026, 12, 4, 10, 0)),  # "at the hour": a whole hour, no minutes
        ("جمعه ساعت ۱۰:۳۰", tehran(2026, 12, 4, 10, 30)),
        ("جمعه ۱۰", tehran(2026, 12, 4, 10, 0)),  # a day, then a whole hour
        ("Friday at 10", tehran(2026, 12, 4, 10, 0)),
        ("Friday 10", tehran(2026, 12, 4, 10, 0)),
        ("ساعت ۱۰ جمعه", tehran(2026, 12, 4, 10, 0)),
        ("ساعت ۱۶", tehran(2026, 12, 3, 16, 0)),  # the next 16:00: today
        ("ساعت ۱۰", tehran(2026, 12, 4, 10, 0)),  # passed today: tomorrow
        ("at 9", tehran(2026, 12, 4, 9, 0)),
        ("فردا ساعت ۹", tehran(2026, 12, 4, 9, 0)),
        ("سه شنبه ساعت ٩", tehran(2026, 12, 8, 9, 0)),  # an Arabic-Indic nine
        ("سه‌شنبه 9:30", tehran(2026, 12, 8, 9, 30)),  # with ZWNJ
        ("سه شنبه 9:30", tehran(2026, 12, 8, 9, 30)),  # with a space
        ("يكشنبه 08:00", tehran(2026, 12, 6, 8, 0)),  # Arabic ي and ك
        ("Thursday 15:00", tehran(2026, 12, 3, 15, 0)),  # today, still ahead
        ("Thursday 10:00", tehran(2026, 12, 10, 10, 0)),  # today, passed: next week
        ("tomorrow 09:00", tehran(2026, 12, 4, 9, 0)),
        ("فردا 09:00", tehran(2026, 12, 4, 9, 0)),
        ("today 18:00", tehran(2026, 12, 3, 18, 0)),
        ("امروز ۱۸:۰۰", tehran(2026, 12, 3, 18, 0)),
        ("15:00", tehran(2026, 12, 3, 15, 0)),  # a bare time: the next one, today
        ("10:00", tehran(2026, 12, 4, 10, 0)),  # passed today: tomorrow
        ("2026-12-04T10:00", tehran(2026, 12, 4, 10, 0)),  # the absolute forms as before
        ("1405/09/13 10:00", tehran(2026, 12, 4, 10, 0)),
        ("2026-12-04T10:00+00:00", datetime(2026, 12, 4, 10, 0, tzinfo=UTC)),
    ],
)
def test_at_resolves_as_people_say_it(text, expected):
    resolved = resolve_at(text, NOW)
    assert resolved.at == expected
    assert resolved.echo().startswith(f'--at "{text}" is ')


def test_the_echo_names_both_calendars_the_weekday_and_the_offset():
    assert (
        resolve_at("جمعه 10:00", NOW).echo()
        == '--at "جمعه 10:00" is Friday 2026-12-04 10:00 +03:30 (جمعه 1405/09/13)'
    )


@pytest.mark.parametrize(
    "text, match",
    [
        ("Friday", "give the time too"),
        ("فردا", "give the time too"),
        ("Fryday 10:00", "Friday 10:00, جمعه 10:00 or جمعه ساعت ۱۰"),
        ("25:00", "hours run 00-23"),
        ("ساعت ۲۵", "hours run 00-23"),
        ("10", "جمعه ساعت ۱۰"),  # a bare number is not a time: the forms, the "ساعت" one among them
        ("Fryday 10", "Friday 10:00"),
        ("Friday 10:75", "hours run 00-23"),
        ("today 09:00", "has passed today"),
        ("soon", "tomorrow 09:00"),
    ],
)
def test_at_refuses_with_the_forms(text, match):
    with pytest.raises(WhenError, match=match):
        resolve_at(text, NOW)


def test_the_start_and_the_window_in_words():
    closed = start_of(None, parse_window("09:00-13:00"), NOW)
    assert closed.start_text() == "now: Thursday 2026-12-03 14:05 +03:30 (پنج\u200cشنبه 1405/09/12)"
    assert closed.window_text() == (
        "09:00-13:00 Tehran, closed then: the first message goes Friday 2026-12-04 09:00 +03:30 (جمعه 1405/09/13)"
    )
    assert "window 09:00-13:00, so the first message goes Friday 2026-12-04 09:00" in closed.question()
    data = closed.as_json()
    assert data["now"] is True and data["window_open"] is False
    assert data["first_send"]["at"] == tehran(2026, 12, 4, 9, 0).isoformat()
    later = start_of(tehran(2026, 12, 4, 10, 0), parse_window("09:00-21:00"), NOW)
    assert later.start_text() == "Friday 2026-12-04 10:00 +03:30 (جمعه 1405/09/13), in 19 h 55 min"
    assert later.window_text() == "09:00-21:00 Tehran, open then"
    assert later.question() == "starts Friday 2026-12-04 10:00 +03:30 (جمعه 1405/09/13); window 09:00-21:00"
    assert start_of(None, None, NOW).window_text() == "none: messages go at any hour"


# ---- through the CLI -----------------------------------------------------------------------------------
def next_tehran(weekday: int | None, clock: time, *, days: int = 0) -> datetime:
    """The next Tehran `clock` on `weekday` (Monday = 0; None: any day), at least `days` ahead."""
    now = datetime.now(TEHRAN)
    day: date = now.date() + timedelta(days=days)
    while True:
        at = datetime.combine(day, clock, tzinfo=TEHRAN)
        if at > now and (weekday is None or day.weekday() == weekday):
            return at
        day += timedelta(days=1)


def dry_run(cli_env, capsys, *extra: str) -> tuple[int, str, str]:  # noqa: F811
    args = ["send", str(cli_env["src"]), "-p", "ghasedak", "-m", "Hi لغو11", "--dry-run", *extra]
    return run_cli(args, capsys)


@pytest.mark.parametrize(
    "typed, weekday, clock, days",
    [
        ("جمعه 10:00", 4, time(10), 0),
        ("Friday 10:00", 4, time(10), 0),
        ("10:00", None, time(10), 0),
        ("tomorrow 09:00", None, time(9), 1),
        ("فردا 09:00", None, time(9), 1),
        ("جمعه ساعت ۱۰", 4, time(10), 0),
        ("جمعه ساعت ۱۰:۳۰", 4, time(10, 30), 0),
        ("ساعت ۱۰", None, time(10), 0),
    ],
)
def test_send_at_in_words_is_echoed_and_shown(cli_env, capsys, typed, weekday, clock, days):  # noqa: F811
    expected = next_tehran(weekday, clock, days=days)
    if days:  # tomorrow: exactly the next day
        expected = datetime.combine(datetime.now(TEHRAN).date() + timedelta(days=1), clock, tzinfo=TEHRAN)
    code, out, err = dry_run(cli_env, capsys, "--at", typed, "--window", "08:00-20:00", "--json")
    assert code == 0, err
    weekday_en = expected.strftime("%A")
    echo = f'--at "{typed}" is {weekday_en} {expected:%Y-%m-%d} {expected:%H:%M} +03:30 ({WEEKDAYS_FA[expected.weekday()]} '
    assert echo in err
    start = json.loads(out)["start"]
    assert start["now"] is False and start["window"] == "08:00-20:00" and start["window_open"] is True
    assert datetime.fromisoformat(start["at"]["at"]) == expected
    assert (start["at"]["weekday"], start["at"]["time"], start["at"]["offset"]) == (
        weekday_en,
        clock.strftime("%H:%M"),
        "+03:30",
    )


def test_a_persian_weekday_and_hour_is_shown_resolved_with_its_offset(cli_env, capsys):  # noqa: F811
    """`--at "جمعه ساعت ۱۰"` (Persian weekday, "ساعت", Persian digits, no minutes) was refused; it is the
    next Friday 10:00 Tehran, echoed and in the preflight's start line with both calendars and +03:30."""
    expected = next_tehran(4, time(10))
    code, _, err = dry_run(cli_env, capsys, "--at", "جمعه ساعت ۱۰", "--window", "08:00-20:00")
    assert code == 0, err
    resolved = f"Friday {expected:%Y-%m-%d} 10:00 +03:30 (جمعه 140"
    lines = [" ".join(line.split()) for line in err.splitlines()]
    assert any(line.startswith(f'--at "جمعه ساعت ۱۰" is {resolved}') for line in lines), lines
    assert any(line.startswith(f"start {resolved}") for line in lines), lines


def test_the_preflight_shows_the_start_and_the_window(cli_env, capsys):  # noqa: F811
    code, out, err = dry_run(cli_env, capsys, "--window", "09:00-21:00")
    assert code == 0, err
    lines = [" ".join(line.split()) for line in err.splitlines()]
    start = next(line for line in lines if line.startswith("start "))
    today = datetime.now(TEHRAN)
    assert start.startswith(f"start now: {today:%A} {today:%Y-%m-%d} ")
    assert "+03:30 (" in start and ("1405/" in start or "1406/" in start)
    assert any(line.startswith("window 09:00-21:00 Tehran, ") for line in lines)


def test_a_bad_at_is_exit_2_with_the_forms(cli_env, capsys):  # noqa: F811
    code, out, err = dry_run(cli_env, capsys, "--at", "Friday")
    assert code == 2
    assert err.strip() == "error: --at 'Friday': give the time too, e.g. Friday 10:00 (Tehran time)"


# ---- status: waiting for its window, with nothing sending it -----------------------------------------
def test_status_says_it_waits_for_its_window_when_nothing_sends(cli_env, capsys):  # noqa: F811
    local = datetime.now(TEHRAN)
    opens = (local + timedelta(hours=2)).replace(second=0, microsecond=0)
    closes = opens + timedelta(hours=1)
    window = f"{opens:%H:%M}-{closes:%H:%M}"
    proc, campaign = _send_in_background(cli_env, "--window", window)
    proc.send_signal(signal.SIGINT)  # Ctrl-C: the campaign stays running, nothing sends it now
    _, err = proc.communicate(timeout=60)
    assert proc.returncode in (130, -signal.SIGINT), err
    data = status_json(campaign, capsys)
    assert data["state"] == "running" and data["sender"] is None
    assert data["waiting"]["reason"] == "window"
    assert (
        data["waiting"]["detail"]
        == f"waiting for the window {window}, opens at {tehran_clock(opens)} Tehran (+03:30)"
    )
    assert datetime.fromisoformat(data["eta"]) == opens
    code, out, _ = run_cli(["status", str(campaign)], capsys)
    assert code == 0
    flat = " ".join(out.split())
    assert f"waiting: waiting for the window {window}, opens at {tehran_clock(opens)} Tehran (+03:30)" in flat
    assert f"nothing will send it when its window opens at {tehran_clock(opens)} +03:30" in flat
    assert f"smsdispatch run {campaign}" in flat
    assert run_cli(["cancel", str(campaign)], capsys)[0] == 0


def test_distributed_workers_are_not_blamed_while_the_window_is_closed():
    opens = NOW + timedelta(hours=2)
    live = liveness_of(
        7,
        "running",
        [],
        NOW,
        distributed=True,
        queued_chunks=3,
        started_at=NOW - timedelta(hours=3),
        pending=10,
        window_opens=opens,
    )
    assert not live.unattended and live.detail is None
