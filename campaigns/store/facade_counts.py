"""The `Store` methods of the maintained counters (`counts.py`): many campaigns with their counts, the rate's
sample, the store's numbers for gauges, and folding the writers' shards. A mixin of `Store`, kept apart so the facade stays small; each
method is one transaction through the facade's `_read` / `_write`."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from campaigns.records import CampaignView
from campaigns.store import counts, reads
from campaigns.store.counts import CampaignTallies, StoreCounts


class CountMethods:
    """Mixed into `Store`, which provides `_read(fn, *args)` and `_write(fn, *args)`."""

    _read: Any
    _write: Any
    engine: Any

    def counted_campaigns(self, ids: list[int] | None = None) -> list[CampaignView]:
        """The campaigns `ids` (all when None) in id order with their counts, as `Store.campaign` gives them:
        two reads whatever the number of campaigns (`summary`)."""
        return self._read(reads.counted_campaigns, ids)

    def recent_sends(self, campaign_id: int, since: datetime) -> tuple[int, datetime]:
        """(sends recorded, since when) from the per-minute counters: the rate's sample (`reads.recent_sends`)."""
        return self._read(reads.recent_sends, campaign_id, since)

    def tallies(self, campaign_id: int) -> CampaignTallies:
        """The campaign's counters by (provider, state), summed over shards (`counts.tallies`)."""
        return self._read(counts.tallies, campaign_id)

    def store_counts(self) -> StoreCounts:
        """The whole store in numbers for gauges: recipients by provider and state, rial by provider,
        campaigns by state, pending, awaiting a report, the oldest queued chunk (`counts.store_counts`)."""
        return self._read(counts.store_counts)

    def fold_counts(self, limit: int = 10_000) -> int:
        """Fold the writers' counter shards into one row per counter (PostgreSQL; the housekeeping pass). On
        SQLite (one shard) nothing to do, and no write lock taken."""
        if self.engine.dialect.name != "postgresql":
            return 0
        return self._write(counts.fold, limit)
