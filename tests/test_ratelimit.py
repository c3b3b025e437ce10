"""GCRA rate limits, in-process and shared through the real Redis, counted in SMS parts."""

from __future__ import annotations

import threading
import time

import pytest

from tests.support.services import REDIS_URL, require_service
from workers.ratelimit import LocalLimiter, RedisLimiter


def hammer(limiter, seconds: float, threads: int, rate: float, cost: int = 1) -> int:
    allowed = [0] * threads
    stop = time.monotonic() + seconds

    def run(i: int) -> None:
        while time.monotonic() < stop:
            if limiter.acquire("acct", cost, rate) == 0:
                allowed[i] += cost
            else:
                time.sleep(0.002)

    ts = [threading.Thread(target=run, args=(i,)) for i in range(threads)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    return sum(allowed)


def test_local_limiter_holds_the_rate():
    got = hammer(LocalLimiter(), 2.0, 4, rate=50)
    assert 95 <= got <= 50 * 2 + 50 + 2  # 2 s at 50/s plus one second's burst


def test_no_rate_means_no_limit():
    assert LocalLimiter().acquire("a", 100, None) == 0


def test_wait_is_returned_not_slept():
    limiter = LocalLimiter()
    assert limiter.acquire("a", 10, rate=10) == 0
    started = time.monotonic()
    wait = limiter.acquire("a", 10, rate=10)
    assert 0.5 < wait <= 1.01 and time.monotonic() - started < 0.05


def test_redis_limiter_is_shared_by_every_client():
    require_service("Redis", "127.0.0.1", 6379)
    import redis

    client = redis.Redis.from_url(REDIS_URL)
    client.delete("smsdispatch:test:acct")
    limiters = [RedisLimiter(redis.Redis.from_url(REDIS_URL), prefix="smsdispatch:test:") for _ in range(3)]
    allowed = [0, 0, 0]
    stop = time.monotonic() + 2.0

    def run(i: int) -> None:
        while time.monotonic() < stop:
            if limiters[i].acquire("acct", 2, rate=40) == 0:  # 2 parts per chunk
                allowed[i] += 2
            else:
                time.sleep(0.002)

    ts = [threading.Thread(target=run, args=(i,)) for i in range(3)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    total = sum(allowed)
    assert 76 <= total <= 40 * 2 + 40 + 2, total  # one budget for all three, not three budgets
    assert all(allowed), "every client got a share"


@pytest.mark.parametrize("cost", [1, 150])
def test_a_chunk_larger_than_the_burst_still_passes(cost):
    assert LocalLimiter().acquire("big", cost, rate=10) == 0


def _limiters() -> list:
    out: list = [LocalLimiter()]
    require_service("Redis", "127.0.0.1", 6379)
    import redis

    client = redis.Redis.from_url(REDIS_URL)
    client.delete("smsdispatch:test-reserve:acct")
    out.append(RedisLimiter(client, prefix="smsdispatch:test-reserve:"))
    return out


def test_a_booked_wait_gives_each_throttled_chunk_its_own_slot():
    """Throttled chunks must not all be told the same wait (they would wake together and all but one
    re-queue again): a wait within `reserve_within` is booked, the next one is told a later slot."""
    for limiter in _limiters():
        assert limiter.acquire("acct", 10, rate=10) == 0  # one second's burst: 10 parts now
        first = limiter.acquire("acct", 10, rate=10, reserve_within=5)
        second = limiter.acquire("acct", 10, rate=10, reserve_within=5)
        assert 0.9 < first <= 1.0 and 1.9 < second <= 2.0, (limiter, first, second)
        too_far = limiter.acquire("acct", 10, rate=10, reserve_within=0.5)  # not booked
        third = limiter.acquire("acct", 10, rate=10, reserve_within=5)
        assert 2.9 < too_far <= 3.0 and 2.9 < third <= 3.0, (limiter, too_far, third)
