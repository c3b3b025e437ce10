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


def status_retry_delay(failures: int, *, base: float, cap: float) -> float:
    """Seconds before asking again after `failures` status calls in a row failed transiently (>= 1):
    base, doubling per failure, at most cap (5, 10, 20, 40, 60, 60 ... with the defaults)."""
    return float(min(cap, base * (2 ** max(failures - 1, 0))))
