"""The store: campaigns, chunks and recipients in SQLite or PostgreSQL, and every state transition.

`Store` (facade.py) owns the engine and the transactions; each concern is a module of functions over
a Connection:

- sql.py: the tables, `transition()` (every state write), `claimable()` (the claim's condition) and
  the hot statements, built once;
- transitions.py: executing a transition (campaign, chunk, a chunk's pending recipients, result rows);
- create.py: a campaign with its chunks and recipients (bulk load) in one transaction;
- lifecycle.py: launch, pause, resume, cancel, start what is due, complete what is finished;
- queue.py: what to publish (claimable, stale) and the peek before a claim;
- sending.py: the chunk send path (claim, record, retry, unknown, failed, account refusal, split);
- reconcile.py: unknown chunks and reconciliation's verdicts;
- polling.py: delivery-status polling;
- suppressions.py: the opt-out list and inbox cursors;
- reads.py: read models (views with their counts, report and chart streams);
- costs.py: what a campaign costs by the provider that sent (planned, spent so far, reported), from its counters;
- tally.py, tally_stmts.py: the maintained counters' SQL (`campaign_counts`), written with every transition;
  counts.py: their reads (a campaign's, the rate, the store's gauges), the recount from the rows, folding;
- heartbeats.py, preflight.py, contacts.py: functions over an Engine for liveness, the preflight's
  facts (earlier campaigns, recent sends, the operator blacklist memory) and the contacts push ledger.

The records live in `campaigns.records` and the clock in `campaigns.clock`; both are re-exported here
so `from campaigns.store import Store, CampaignSpec, utcnow` keeps working.
"""

from __future__ import annotations

from campaigns.clock import utcnow
from campaigns.records import (
    CampaignCosts,
    CampaignSpec,
    CampaignView,
    Cancelled,
    ChunkPeek,
    ClaimedChunk,
    DuePoll,
    EmptyCampaign,
    OutMessage,
    ProviderCost,
    RecipientUpdate,
    Reconciliation,
    RetryVerdict,
    SuppressionView,
)
from campaigns.store.facade import MIGRATIONS, Store
from campaigns.store.sql import (
    campaigns_t,
    chunks_t,
    claimable,
    inbox_cursors_t,
    recipients_t,
    suppressions_t,
    transition,
)

__all__ = [
    "MIGRATIONS",
    "CampaignCosts",
    "Cancelled",
    "CampaignSpec",
    "CampaignView",
    "ChunkPeek",
    "ClaimedChunk",
    "DuePoll",
    "EmptyCampaign",
    "OutMessage",
    "ProviderCost",
    "Reconciliation",
    "RecipientUpdate",
    "RetryVerdict",
    "Store",
    "SuppressionView",
    "campaigns_t",
    "chunks_t",
    "claimable",
    "inbox_cursors_t",
    "recipients_t",
    "suppressions_t",
    "transition",
    "utcnow",
]
