"""What an operation needs, built once per process: the store, provider clients, the limiter, settings.

Operations take a `WorkerDeps` instead of reaching for globals, so the Celery tasks, the local
runner and the tests hand them exactly the same things.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping
from dataclasses import dataclass, field

from campaigns.store import Store
from workers.providers import client_class
from workers.providers.base import ProviderClient
from workers.ratelimit import Limiter, LocalLimiter
from workers.settings import DispatchSettings


class ProviderPool:
    """One client per provider name, built lazily from the environment (or a given mapping)."""

    def __init__(self, env: Mapping[str, str] | None = None) -> None:
        self._env = env
        self._clients: dict[str, ProviderClient] = {}
        self._lock = threading.Lock()

    def get(self, name: str) -> ProviderClient:
        with self._lock:
            client = self._clients.get(name)
            if client is None:
                cls = client_class(name)
                client = self._clients[name] = cls(cls.load_settings(self._env))
            return client

    def unlimited(self) -> list[ProviderClient]:
        """The clients built so far whose account has no rate limit: a send to them needs no limiter
        before its claim (`workers.operations.send`'s quick claim)."""
        with self._lock:
            return [c for c in self._clients.values() if not c.settings.rate]


class FailureStreaks:
    """Calls in a row that failed, per key (a provider account's status calls), in this process."""

    def __init__(self) -> None:
        self._counts: dict[str, int] = {}
        self._lock = threading.Lock()

    def failed(self, key: str) -> int:
        """One more failure for `key`; returns how many in a row now (1 for the first)."""
        with self._lock:
            self._counts[key] = self._counts.get(key, 0) + 1
            return self._counts[key]

    def succeeded(self, key: str) -> None:
        with self._lock:
            self._counts.pop(key, None)


@dataclass
class WorkerDeps:
    store: Store
    providers: ProviderPool
    settings: DispatchSettings = field(default_factory=DispatchSettings)
    limiter: Limiter = field(default_factory=LocalLimiter)
    status_failures: FailureStreaks = field(default_factory=FailureStreaks)
    # Accounts whose circuit this process has counted a failure against (or opened): a success of a
    # single-provider campaign writes to its circuit only then; a routed campaign's always does.
    circuits_touched: set[str] = field(default_factory=set)
