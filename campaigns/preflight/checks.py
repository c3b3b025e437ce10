"""The preflight checks and the summary they go into (issue 11, "Checks"). Pure: counts in, verdicts out.

Each check gives a `Finding`, a warning or a refusal (exit 3, nothing stored) with the option that
overrides it; `SMSDISPATCH_STRICT=1` makes every warning a refusal. README lists every check, its code
and its override.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Protocol

from campaigns.operators import Operator
from campaigns.optout import words
from campaigns.preflight.summary import (
    CampaignType,
    Check,
    Cost,
    Credit,
    Finding,
    PreflightSummary,
    Severity,
)
from campaigns.preflight.tally import Tally
from campaigns.prices import PriceTable

__all__ = [
    "Loaded",
    "OPT_OUT_TOKEN",
    "PreflightOptions",
    "PreflightSettingError",
    "UnfinishedCampaign",
    "continue_command",
    "estimate_cost",
    "has_opt_out_token",
    "parse_duration",
    "price_hint",
    "summarise",
]

OPT_OUT_TOKEN = "لغو11"  # required in promotional texts by Iranian operators (shared/providers.md §1.2)
FREQUENCY_CAP_DEFAULT = 24 * 3600.0  # seconds
MAX_PARTS_DEFAULT = 4
_STRICT_OVERRIDE = "unset SMSDISPATCH_STRICT"
_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(s|m|h|d)?\s*$", re.I)
_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


class PreflightSettingError(ValueError):
    """A preflight setting that cannot be read (exit 2): the message names it and how to write it."""


class BalanceLike(Protocol):
    """A provider's balance (workers.status.Balance): `amount` in `unit` ("rial", "toman", "sms")."""

    amount: float
    unit: str


def parse_duration(text: str, setting: str) -> float:
    """`"24h"`, `"90m"`, `"2d"`, `"3600"` (seconds) -> seconds."""
    match = _DURATION.match(text)
    if not match:
        raise PreflightSettingError(f"{setting}={text!r} is not a duration; write it like 24h, 90m or 3600")
    return float(match.group(1)) * _SECONDS[(match.group(2) or "s").lower()]


@dataclass(frozen=True)
class PreflightOptions:
    """`send`'s options and settings the checks read. `frequency_cap` in seconds; `distributed` picks the
    command that continues an unfinished campaign (`watch` where workers send, `run` where this host does)."""

    campaign_type: CampaignType = CampaignType.PROMOTIONAL
    window: str | None = None  # "HH:MM-HH:MM" Tehran time, None for none
    max_parts: int = MAX_PARTS_DEFAULT
    strict: bool = False
    frequency_cap: float = FREQUENCY_CAP_DEFAULT
    allow_partial: bool = False
    allow_duplicate: bool = False
    skip_recent: bool = False
    distributed: bool = False

    @classmethod
    def from_env(cls, env: Mapping[str, str], **flags: object) -> PreflightOptions:
        """SMSDISPATCH_MAX_PARTS, SMSDISPATCH_STRICT, SMSDISPATCH_FREQUENCY_CAP from `env`, plus `send`'s
        flags (field names above). Raises PreflightSettingError for a value it cannot read."""
        max_parts_text = (env.get("SMSDISPATCH_MAX_PARTS") or "").strip() or str(MAX_PARTS_DEFAULT)
        if not max_parts_text.isdigit() or int(max_parts_text) < 1:
            raise PreflightSettingError(
                f"SMSDISPATCH_MAX_PARTS={max_parts_text!r}: write a whole number like 4"
            )
        strict = (env.get("SMSDISPATCH_STRICT") or "").strip().lower() in ("1", "true", "yes", "on")
        cap_text = (env.get("SMSDISPATCH_FREQUENCY_CAP") or "").strip()
        cap = parse_duration(cap_text, "SMSDISPATCH_FREQUENCY_CAP") if cap_text else FREQUENCY_CAP_DEFAULT
        return cls(max_parts=int(max_parts_text), strict=strict, frequency_cap=cap, **flags)  # type: ignore[arg-type]


@dataclass(frozen=True)
class UnfinishedCampaign:
    """A campaign of this store that has not finished (draft, scheduled, running or paused)."""

    id: int
    name: str
    state: str
    fingerprint: str | None


def continue_command(campaign: UnfinishedCampaign, *, distributed: bool) -> str:
    """The command that carries an unfinished campaign on from where it stopped."""
    if campaign.state == "paused":
        return f"smsdispatch resume {campaign.id}"
    if campaign.state in ("running", "draft") and not distributed:
        return f"smsdispatch run {campaign.id}"
    return f"smsdispatch watch {campaign.id}"


@dataclass(frozen=True)
class Loaded:
    """What the loader refused: rows per reason ("invalid", "duplicate", "opted out", ...), and how many
    of those were on the suppression list."""

    rejected: Mapping[str, int]
    suppressed: int


def has_opt_out_token(text: str) -> bool:
    """True when the text carries لغو11 in any spelling (Persian or Arabic digits, a space or a dash
    between, Arabic letter forms): normalised as opt-out replies are (campaigns.optout)."""
    found = words(text)
    return any(
        w == OPT_OUT_TOKEN or (w == "لغو" and i + 1 < len(found) and found[i + 1] == "11")
        for i, w in enumerate(found)
    )


def estimate_cost(parts_by: Mapping[tuple[Operator, str], int], prices: PriceTable | None) -> Cost | None:
    """Rial for every part, per operator; None when the table lacks a price for any part to send."""
    if not prices:
        return None
    by_operator: Counter[Operator] = Counter({op: 0.0 for op in Operator})
    for (operator, alphabet), parts in parts_by.items():
        price = prices.per_part(operator, alphabet)  # type: ignore[arg-type]
        if price is None:
            return None
        by_operator[operator] += parts * price
    return Cost(float(sum(by_operator.values())), dict(by_operator), prices.source)


def _credit(balance: BalanceLike | None, cost: Cost | None, total_parts: int) -> Credit | None:
    if balance is None:
        return None
    unit = balance.unit.lower()
    needed: float | None
    if unit == "sms":
        needed = float(total_parts)
    elif unit in ("rial", "toman") and cost is not None:
        needed = cost.estimate if unit == "rial" else cost.estimate / 10
    else:
        needed = None
    enough = None if needed is None else balance.amount >= needed
    return Credit(float(balance.amount), balance.unit, needed, enough)


def _n(value: float) -> str:
    return f"{value:,.0f}"


def _finding(code: Check, refuse: bool | None, strict: bool, message: str, override: str) -> Finding:
    """A refusal, or a warning (a refusal too when strict). `refuse=None`: its override was given, so a
    warning whatever `strict` says."""
    if refuse is None:
        return Finding(code, Severity.WARN, message, override)
    if refuse:
        return Finding(code, Severity.REFUSE, message, override)
    if strict:
        return Finding(code, Severity.REFUSE, message, f"{override}, or {_STRICT_OVERRIDE}")
    return Finding(code, Severity.WARN, message, override)


def _checks(
    tally: Tally,
    options: PreflightOptions,
    credit: Credit | None,
    fingerprint: str,
    unfinished: Sequence[UnfinishedCampaign],
) -> list[Finding]:
    strict, out = options.strict, []
    if credit is not None and credit.enough is False:
        what = "SMS" if credit.unit.lower() == "sms" else credit.unit
        out.append(
            _finding(
                Check.CREDIT,
                None if options.allow_partial else True,
                strict,
                f"credit {_n(credit.balance)} {what} is below the {_n(credit.needed or 0)} {what} this campaign "
                f"needs ({_n(tally.total_parts)} SMS parts); it would stop part-way",
                "--allow-partial",
            )
        )
    same = [c for c in unfinished if c.fingerprint == fingerprint]
    if same:
        c = same[0]
        out.append(
            _finding(
                Check.DUPLICATE,
                None if options.allow_duplicate else True,
                strict,
                f'the same recipients and text as campaign {c.id} "{c.name}", {c.state} and not finished; '
                f"continue it with: {continue_command(c, distributed=options.distributed)}",
                "--allow-duplicate",
            )
        )
    recent = sum(tally.recent_hits.values())
    if recent and not (options.skip_recent or tally.skip_recent):
        hours = options.frequency_cap / 3600
        by = ", ".join(f"campaign {cid}: {_n(n)}" for cid, n in tally.recent_hits.most_common(3))
        out.append(
            _finding(
                Check.RECENT,
                False,
                strict,
                f"{_n(recent)} recipients got a message from another campaign in the last {hours:g} h ({by})",
                "--skip-recent",
            )
        )
    if options.campaign_type is CampaignType.PROMOTIONAL and not has_opt_out_token(tally.template.text):
        out.append(
            _finding(
                Check.OPT_OUT_TOKEN,
                False,
                strict,
                f"promotional text without the opt-out token {OPT_OUT_TOKEN}; some panels refuse it",
                f"add {OPT_OUT_TOKEN} to the text, or --type transactional",
            )
        )
    if tally.links:
        out.append(
            _finding(
                Check.LINK,
                False,
                strict,
                f"{_n(tally.links)} messages carry a link ({tally.first_link}); some lines refuse links",
                "remove the link",
            )
        )
    over = sum(n for parts, n in tally.histogram.items() if parts > options.max_parts)
    if over:
        most = max(tally.histogram)
        out.append(
            _finding(
                Check.PARTS,
                False,
                strict,
                f"{_n(over)} messages are longer than {options.max_parts} SMS parts (up to {most}), "
                f"each part paid for every recipient",
                f"shorten the text, or SMSDISPATCH_MAX_PARTS={most}",
            )
        )
    if tally.empty.rows:
        names = ", ".join(f"{{{name}}}" for name in tally.empty.names)
        out.append(
            _finding(
                Check.EMPTY_PLACEHOLDER,
                False,
                strict,
                f"{names} came out empty for {_n(tally.empty.rows)} recipient{'' if tally.empty.rows == 1 else 's'} (first: row {tally.empty.first_row})",
                "fill the column in the file",
            )
        )
    if options.campaign_type is CampaignType.PROMOTIONAL and not options.window:
        out.append(
            _finding(
                Check.NO_WINDOW,
                False,
                strict,
                "promotional campaign with no send window; operators restrict promotional hours",
                "--window HH:MM-HH:MM (e.g. 09:00-21:00), or --type transactional",
            )
        )
    return out


def price_hint(provider: str) -> str:
    """How to set a price when none is known for `provider`."""
    return (
        f"no price known for {provider}: set SMSDISPATCH_{provider.upper().replace('-', '_')}_PRICE (rial per SMS part, e.g. 1000 "
        f"or gsm7=800,ucs2=1000) or a [prices] table in smsdispatch.toml"
    )


def summarise(
    tally: Tally,
    *,
    provider: str,
    account: str,
    sender: str,
    loaded: Loaded,
    options: PreflightOptions,
    prices: PriceTable | None = None,
    balance: BalanceLike | None = None,
    unfinished: Sequence[UnfinishedCampaign] = (),
) -> PreflightSummary:
    """The summary of a load that has been fully `add`ed to `tally`, with every check's finding."""
    cost = estimate_cost(tally.parts_by, prices)
    credit = _credit(balance, cost, tally.total_parts)
    fingerprint = tally.fingerprint()
    rejected = dict(loaded.rejected)
    for _, _, campaign in tally.skipped:
        key = f"sent recently (campaign {campaign})"
        rejected[key] = rejected.get(key, 0) + 1
    previews = [p for p in (tally.first, tally.longest, tally.empty_preview) if p is not None]
    if len(previews) > 1 and previews[1].row == previews[0].row:  # the first row is also the longest
        previews.pop(1)
    return PreflightSummary(
        provider=provider,
        account=account,
        sender=sender,
        recipients=tally.recipients,
        rejected=rejected,
        suppressed=loaded.suppressed,
        operators={op: tally.operators.get(op, 0) for op in Operator},
        parts_histogram=dict(sorted(tally.histogram.items())),
        total_parts=tally.total_parts,
        alphabets=dict(tally.alphabets),
        cost=cost,
        credit=credit,
        previews=previews,
        findings=_checks(tally, options, credit, fingerprint, unfinished),
        fingerprint=fingerprint,
        recent=sum(tally.recent_hits.values()),
        cost_hint=None if cost is not None else price_hint(provider),
        skipped_recent=list(tally.skipped),
    )
