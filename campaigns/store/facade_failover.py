"""The `Store` methods of failover (docs/architecture.md, "Failover through a route"): the accounts' circuits (`health.py`), re-planning a
chunk for another provider (`routing.py`), and what a campaign costs at each provider (`costs.py`). A mixin of `Store`, kept apart so the facade stays small; each
method is one transaction through the facade's `_read` / `_write`."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Any

from campaigns.circuit import Health
from campaigns.clock import utcnow
from campaigns.records import CampaignCosts
from campaigns.store import costs, health, routing


class FailoverMethods:
    """Mixed into `Store`, which provides `_read(fn, *args)` and `_write(fn, *args)`."""

    _read: Any
    _write: Any

    def health(self, accounts: Iterable[str]) -> dict[str, Health]:
        """account -> its circuit (accounts never seen are absent: closed)."""
        return self._read(health.read_health, accounts)

    def all_health(self) -> list[Health]:
        return self._read(health.all_health)

    def circuit_open(self, account: str, provider: str, reason: str, cooldown: float) -> None:
        self._write(health.open_circuit, account, provider, reason, cooldown, utcnow())

    def circuit_failure(
        self, account: str, provider: str, reason: str, threshold: int, cooldown: float
    ) -> bool:
        """One more transient failure in a row; True when the account's circuit is open now."""
        return self._write(health.record_failure, account, provider, reason, threshold, cooldown, utcnow())

    def circuit_success(self, account: str, started: datetime) -> None:
        self._write(health.record_success, account, started, utcnow())

    def take_probe(self, account: str, lease: float) -> bool:
        """Compare-and-set: this worker sends the probe of an open circuit whose probe is due."""
        return self._write(health.take_probe, account, lease, utcnow())

    def reroute_chunk(self, chunk_id: int, attempt: int, **target: Any) -> list[int] | None:
        """The chunk's pending recipients -> new queued chunks for another provider (`routing.reroute_chunk`)."""
        return self._write(routing.reroute_chunk, chunk_id, attempt, now=utcnow(), **target)

    def pause_route(self, campaign_id: int, chunk_id: int, attempt: int | None, reason: str) -> bool:
        return self._write(routing.pause_route, campaign_id, chunk_id, attempt, reason, utcnow())

    def by_provider(self, campaign_id: int) -> dict[str, dict[str, int]]:  # provider -> state -> count
        return self._read(routing.by_provider, campaign_id)

    def costs(self, campaign_id: int) -> CampaignCosts:
        """A campaign's money by the provider that sent: planned, spent so far, reported (`costs.costs`)."""
        return self._read(costs.costs, campaign_id)
