"""What a provider can do, as the feature table (docs/providers.md) and the planner read it."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Capabilities:
    """What a provider can do; docs/providers.md's feature table is generated from these."""

    max_batch: int  # recipients per send call (documented maximum)
    max_status_batch: int  # ids per status call
    one_to_many: bool = True  # one text to many numbers in one call
    personalised: bool = False  # different texts to different numbers in one call
    status_batch: bool = True
    balance: bool = True
    reconcile: str = "none"  # "checkid" | "sent-box" | "none"
    inbox: bool = False
    scheduling: bool = False
    contacts: bool = False
