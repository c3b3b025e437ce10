"""Backoff delays and polling intervals: pure functions of the attempt number."""

from __future__ import annotations

import random
from collections.abc import Sequence


def retry_delay(
    attempt: int,
    *,
    base: float,
    cap: float,
    retry_after: float | None = None,
    rng: random.Random | None = None,
) -> float:
    """Exponential backoff with jitter (half to full of the step), never below the provider's hint."""
    rng = rng or random
    step = min(cap, base * (2 ** max(attempt - 1, 0)))
    delay = step * (0.5 + rng.random() / 2)
    if retry_after is not None:
        delay = max(delay, retry_after)
    return min(delay, max(cap, retry_after or 0.0))


def poll_delay(polls: int, intervals: Sequence[float]) -> float:
    """Seconds until the next status check after `polls` checks so far (the last interval repeats)."""
    return float(intervals[min(polls, len(intervals) - 1)])
