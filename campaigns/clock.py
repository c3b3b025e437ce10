"""The clock: every "now" of the project is an aware UTC datetime from here.

The store takes `now` as an argument wherever a test or a sweep needs to pin it; `utcnow` is its
default. Tehran time is only for people (campaigns.windows.TEHRAN), never stored.
"""

from __future__ import annotations

from datetime import UTC, datetime


def utcnow() -> datetime:
    """The current time as an aware UTC datetime (the store refuses naive ones)."""
    return datetime.now(UTC)
