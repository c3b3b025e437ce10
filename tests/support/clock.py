"""Tehran's clock as people read it in status lines, for tests that run at any hour."""

from __future__ import annotations

from datetime import datetime

from campaigns.windows import TEHRAN


def tehran_clock(at: datetime) -> str:
    """'HH:MM' of `at` in Tehran, with 'YYYY-MM-DD ' in front when that is not today there (a test
    run at 22:30 Tehran that waits two hours reads tomorrow's date, as a person would)."""
    local = at.astimezone(TEHRAN)
    if local.date() == datetime.now(TEHRAN).date():
        return f"{local:%H:%M}"
    return f"{local:%Y-%m-%d %H:%M}"
