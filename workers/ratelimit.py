"""Per-account rate limits counted in SMS parts (shared/DESIGN.md invariant 6).

GCRA (generic cell rate algorithm): one timestamp per account, the "theoretical arrival time".
`acquire` never sleeps: it answers 0 (go) or the seconds to wait, so a worker re-queues the chunk
instead of holding its slot. With `reserve_within`, a wait no longer than that is *booked*: the budget
is taken now for that later moment, and the caller sends then without asking again. Without booking,
every throttled chunk would be told about the same short wait, all would wake together, one would
pass and the rest re-queue again: messages growing with the square of the backlog (measured by
bench/throttle_churn.py). `LocalLimiter` serves the embedded mode's threads; `RedisLimiter`
shares one budget between every worker process through one atomic Lua script.
"""

from __future__ import annotations

import threading
import time
from typing import Protocol


class Limiter(Protocol):
    def acquire(
        self,
        key: str,
        cost: float,
        rate: float | None,
        burst: float | None = None,
        reserve_within: float = 0.0,
    ) -> float:
        """Take `cost` parts from `key`'s budget of `rate` parts/s; return 0.0 or seconds to wait.

        A wait of at most `reserve_within` seconds is booked (the parts are taken for that moment);
        a longer one takes nothing.
        """
        ...


def _burst(rate: float, burst: float | None) -> float:
    # Allow one second's worth at once (and at least one full chunk of parts), like a token bucket.
    return max(burst if burst is not None else rate, 1.0)


class LocalLimiter:
    def __init__(self) -> None:
        self._tat: dict[str, float] = {}
        self._lock = threading.Lock()

    def acquire(
        self,
        key: str,
        cost: float,
        rate: float | None,
        burst: float | None = None,
        reserve_within: float = 0.0,
    ) -> float:
        if not rate:
            return 0.0
        interval = 1.0 / rate
        tau = interval * (max(_burst(rate, burst), cost) - 1)
        with self._lock:
            now = time.monotonic()
            tat = max(self._tat.get(key, now), now)
            new_tat = tat + interval * cost
            wait = max(new_tat - tau - interval - now, 0.0)
            if wait > reserve_within:
                return wait
            self._tat[key] = new_tat
            return wait


_GCRA = """
local t = redis.call('TIME')
local now = t[1] * 1000 + math.floor(t[2] / 1000)
local T, tau, cost, within = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3]), tonumber(ARGV[4])
local tat = tonumber(redis.call('GET', KEYS[1]) or now)
if tat < now then tat = now end
local new_tat = tat + T * cost
local wait = new_tat - tau - T - now
if wait < 0 then wait = 0 end
if wait > within then return tostring(wait) end
redis.call('SET', KEYS[1], new_tat, 'PX', math.ceil(new_tat - now + tau + T))
return tostring(wait)
"""


class RedisLimiter:
    """The same GCRA in Redis, using Redis's clock so every worker shares one time line."""

    def __init__(self, client, prefix: str = "smsdispatch:rl:") -> None:  # noqa: ANN001 - redis.Redis
        self._redis = client
        self._script = client.register_script(_GCRA)
        self._prefix = prefix

    def acquire(
        self,
        key: str,
        cost: float,
        rate: float | None,
        burst: float | None = None,
        reserve_within: float = 0.0,
    ) -> float:
        if not rate:
            return 0.0
        interval_ms = 1000.0 / rate
        tau_ms = interval_ms * (max(_burst(rate, burst), cost) - 1)
        # The wait comes back as text: a Lua number would reach us truncated to an integer.
        wait_ms = float(
            self._script(keys=[self._prefix + key], args=[interval_ms, tau_ms, cost, reserve_within * 1000.0])
        )
        return wait_ms / 1000.0
