"""What a campaign costs, in words people read: planned, spent so far, and reported by the provider.

Three figures, never mixed up (`campaigns.store.costs` reads them, each by the provider that sent):

- planned: the estimate, SMS parts x the price table of the provider that holds each recipient (after
  failover, the provider it moved to, at its price);
- spent so far: the same estimate for the recipients a provider accepted; a campaign cancelled before
  sending anything has spent nothing;
- reported by the provider: what its replies said the messages cost, in its own unit, or "unit not
  documented" where its documents give none (`workers.providers.base.ProviderClient.cost_unit`).
"""

from __future__ import annotations

from campaigns.records import CampaignCosts, ProviderCost
from workers.statusdoc import reported_unit  # one definition, beside the status document

__all__ = ["UNIT_NOT_DOCUMENTED", "cost_lines", "reported_text", "reported_unit"]

UNIT_NOT_DOCUMENTED = "unit not documented"


def _n(amount: float | None) -> str:
    return "not known" if amount is None else f"{round(amount):,}"


def reported_text(amount: float | None, provider: str) -> str:
    """`73,315 (unit not documented)`, `1,200 rial`, or `none` when the provider reported nothing."""
    if amount is None:
        return "none"
    unit = reported_unit(provider)
    return f"{round(amount):,} {unit}" if unit else f"{round(amount):,} ({UNIT_NOT_DOCUMENTED})"


def _one(name: str, c: ProviderCost) -> str:
    return (
        f"{name}: planned {_n(c.planned)}, spent {_n(c.spent)} rial; "
        f"reported by {name}: {reported_text(c.reported, name)}"
    )


def cost_lines(costs: CampaignCosts) -> list[str]:
    """`status`'s cost lines: the totals with what each means, then one line per provider when several
    sent (failover). Empty when nothing is known (no recipients)."""
    if not costs.by_provider:
        return []
    accepted = sum(c.accepted for c in costs.by_provider.values())
    if costs.planned is None:  # no price table: there is no estimate to show in rial
        unpriced = sorted(name for name, c in costs.by_provider.items() if c.planned is None)
        settings = ", ".join(f"{n}: SMSDISPATCH_{n.upper().replace('-', '_')}_PRICE" for n in unpriced)
        lines = [f"planned: not known (no price for {settings}); spent so far: not known"]
    else:
        lines = [
            f"planned {_n(costs.planned)} rial (the estimate); spent so far {_n(costs.spent)} rial "
            f"(the estimate for the {accepted:,} recipient{'' if accepted == 1 else 's'} a provider accepted)"
        ]
        if costs.unknown and costs.unsure is not None:  # not evidence that nothing went out
            lines[0] += (
                f"; {_n(costs.unsure)} rial more may have gone out ({costs.unknown:,} "
                f"recipient{'' if costs.unknown == 1 else 's'} unknown: the provider could not say)"
            )
    if len(costs.by_provider) == 1:
        ((name, c),) = costs.by_provider.items()
        lines.append(f"reported by {name}: {reported_text(c.reported, name)}")
    else:
        lines += [_one(name, c) for name, c in sorted(costs.by_provider.items())]
    return lines
