"""What a campaign costs, by the provider that sent: planned, spent so far, and reported by the provider.

Computed per chunk: each chunk's estimate (`chunks.cost_rial`, its SMS parts at its provider's
price) gives a rial-per-part rate that shrinking, splitting and failover all keep (they divide the cost
in proportion to the parts, `campaigns.store.sending._share`); a recipient is worth its parts at its
chunk's rate. `planned` sums every recipient of the provider, `spent` those it accepted (the states of
`campaigns.progress.ACCEPTED`, and failed/blacklisted by a delivery report), `reported` what the
provider itself said (`recipients.cost_rial`, Ghasedak's status `price`, Amoot's `Cost`: each in the
provider's own unit, `workers.providers.base.ProviderClient.cost_unit`), and `unsure` the estimate of the
recipients held `unknown` (it could not say whether it sent them).

A campaign cancelled before sending anything has spent nothing, whatever it planned. Read from the
campaign's maintained counters (`campaigns.store.tally`: each recipient counted with its parts at its
chunk's rial per part, re-valued when a chunk's parts or estimate change), never from its rows. A function
over the caller's connection, like `reads.py`; `Store.costs` opens it.
"""

from __future__ import annotations

from sqlalchemy import Connection, select

from campaigns.records import CampaignCosts
from campaigns.store.counts import tallies
from campaigns.store.sql import campaigns_t

__all__ = ["costs"]


def costs(conn: Connection, campaign_id: int) -> CampaignCosts:
    """The campaign's money by provider (module docstring); empty for a campaign with no recipients.
    `planned` and `spent` are None where no price was known when the campaign was stored. Two index reads:
    the campaign's estimate and its maintained counters (`counts.CampaignTallies.costs`)."""
    estimated = conn.execute(
        select(campaigns_t.c.estimated_rial).where(campaigns_t.c.id == campaign_id)
    ).scalar_one_or_none()
    return tallies(conn, campaign_id).costs(estimated)
