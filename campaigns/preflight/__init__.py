"""Preflight (README, "Preflight: before a rial is spent"): what a campaign will cost and whom it reaches, and the checks, before anything
is stored. Pure: `Tally` counts the loaded blocks, `summarise` turns the counts, the prices, the credit
and the store's earlier campaigns into a `PreflightSummary` with its findings. The I/O around it
(loader, store, provider) is `dispatcher.app.preflight.gather`.
"""

from campaigns.preflight.checks import (
    OPT_OUT_TOKEN,
    DuplicateCampaign,
    EarlierCampaign,
    Loaded,
    PreflightOptions,
    PreflightSettingError,
    continue_command,
    duplicate_finding,
    estimate_cost,
    has_opt_out_token,
    parse_days,
    parse_duration,
    price_hint,
    summarise,
)
from campaigns.preflight.summary import (
    Blacklisted,
    CampaignType,
    Check,
    Cost,
    Credit,
    Finding,
    PreflightSummary,
    Preview,
    Severity,
)
from campaigns.preflight.tally import LINK, RecentSends, Tally

__all__ = [
    "LINK",
    "OPT_OUT_TOKEN",
    "Blacklisted",
    "CampaignType",
    "Check",
    "Cost",
    "Credit",
    "DuplicateCampaign",
    "EarlierCampaign",
    "Finding",
    "Loaded",
    "PreflightOptions",
    "PreflightSettingError",
    "PreflightSummary",
    "Preview",
    "RecentSends",
    "Severity",
    "Tally",
    "continue_command",
    "duplicate_finding",
    "estimate_cost",
    "has_opt_out_token",
    "parse_days",
    "parse_duration",
    "price_hint",
    "summarise",
]
