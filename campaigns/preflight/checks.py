"""The preflight checks and the summary they go into (README, "Preflight", **Checks**). Pure: counts in, verdicts out.

Each check gives a `Finding`, a warning or a refusal (exit 3, nothing stored) with the option that
overrides it; `SMSDISPATCH_STRICT=1` makes every warning a refusal. README lists every check, its code
and its override. The options and settings they read are `campaigns.preflight.options` (re-exported).
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from campaigns.operators import Operator
from campaigns.optout import words
from campaigns.preflight.options import (
    DuplicateCampaign,
    EarlierCampaign,
    PreflightOptions,
    PreflightSettingError,
    continue_command,
    parse_days,
    parse_duration,
)
from campaigns.preflight.summary import (
    Blacklisted,
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
    "DuplicateCampaign",
    "EarlierCampaign",
    "Loaded",
    "OPT_OUT_TOKEN",
    "PreflightOptions",
    "PreflightSettingError",
    "continue_command",
    "duplicate_finding",
    "estimate_cost",
    "has_opt_out_token",
    "parse_days",
    "parse_duration",
    "price_hint",
    "summarise",
]

OPT_OUT_TOKEN = "لغو11"  # required in promotional texts by Iranian operators (shared/providers.md §1.2)
_STRICT_OVERRIDE = "unset SMSDISPATCH_STRICT"


class BalanceLike(Protocol):
    """A provider's balance (workers.status.Balance): `amount` in `unit` ("rial", "toman", "sms")."""

    amount: float
    unit: str


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


def _in_window(c: EarlierCampaign, options: PreflightOptions, now: datetime | None) -> bool:
    """Within SMSDISPATCH_DUPLICATE_WINDOW: unfinished, or created or finished since `now - window`."""
    if not c.finished or now is None:
        return True
    since = now.timestamp() - options.duplicate_window
    return any(t is not None and t.timestamp() >= since for t in (c.created_at, c.finished_at))


def _duplicate(c: EarlierCampaign, options: PreflightOptions) -> str:
    """The duplicate check's message: the campaign, its state and its date (and how to carry it on)."""
    created = f"created {options.when(c.created_at)}" if c.created_at else ""
    if not c.finished:
        return (
            f'the same recipients and text as campaign {c.id} "{c.name}", {c.state}'
            f"{f' ({created})' if created else ''} and not finished; "
            f"continue it with: {continue_command(c, distributed=options.distributed)}"
        )
    ended = f" {options.when(c.finished_at)}" if c.finished_at else ""
    return (
        f'the same recipients and text as campaign {c.id} "{c.name}", {c.state}{ended}'
        f"{f' ({created})' if created else ''}; its recipients would get it twice"
    )


def duplicate_finding(c: EarlierCampaign, options: PreflightOptions) -> Finding:
    """The duplicate check's finding for campaign `c` (same recipients and text): a refusal whose override
    is `--allow-duplicate`, a warning when it was given."""
    return _finding(
        Check.DUPLICATE,
        None if options.allow_duplicate else True,
        options.strict,
        _duplicate(c, options),
        "--allow-duplicate",
    )


def _recent(tally: Tally, options: PreflightOptions, identical: set[int]) -> str:
    """The recent warning: how many, and the campaigns they got messages from, identical ones first."""
    order = sorted(tally.recent_by.items(), key=lambda kv: (kv[0] not in identical, -kv[1], kv[0]))
    named = [
        f"campaign {cid}{' (the same list and text)' if cid in identical else ''}: {_n(n)}"
        for cid, n in order[:3]
    ]
    if len(order) > 3:
        named.append(f"{len(order) - 3} more campaign{'s' if len(order) > 4 else ''}")
    hours = options.frequency_cap / 3600
    return (
        f"{_n(tally.recent_recipients)} recipients got a message from another campaign in the last "
        f"{hours:g} h ({', '.join(named)})"
    )


def _budget(tally: Tally, options: PreflightOptions, cost: Cost | None) -> list[tuple[str, str]]:
    """What `--budget` and `--max-parts` cover when they cover less than every recipient: (message,
    override) each. Charged a chunk at a time, so the pause comes at a whole chunk (said when it differs)."""
    n, out = tally.recipients, []
    caps = []
    if options.budget is not None and cost is not None and n and cost.estimate > options.budget:
        caps.append(("the budget", options.budget, cost.estimate, "rial", "--budget"))
    if options.part_cap is not None and n and tally.total_parts > options.part_cap:
        caps.append(("the part cap", options.part_cap, float(tally.total_parts), "SMS parts", "--max-parts"))
    for what, cap, need, unit, option in caps:
        per = need / n
        covers = min(n, int(cap // per))
        message = (
            f"{what} covers about {covers:,} of {n:,} recipients; the campaign will pause there "
            f"({_n(cap)} of the {_n(need)} {unit} {'estimated' if unit == 'rial' else 'to send'}"
        )
        if options.chunk:
            step = min(options.chunk, n)
            at = min(n, int(cap // math.ceil(per * step)) * step)
            if at != covers:
                message += f"; charged {step:,} recipients at a time, it pauses after {at:,}"
        out.append((message + ")", f"{option} {_n(math.ceil(need))} to cover them all"))
    return out


def credit_finding(credit: Credit, total_parts: int, *, allow_partial: bool, strict: bool) -> Finding:
    """The finding of a credit below what the campaign needs (`credit.needed`, in the balance's own unit:
    SMS parts, rial or toman); it refuses unless `allow_partial` (override `--allow-partial`)."""
    what = "SMS" if credit.unit.lower() == "sms" else credit.unit
    return _finding(
        Check.CREDIT,
        None if allow_partial else True,
        strict,
        f"credit {_n(credit.balance)} {what} is below the {_n(credit.needed or 0)} {what} this campaign "
        f"needs ({_n(total_parts)} SMS parts); it would stop part-way",
        "--allow-partial",
    )


def _checks(
    tally: Tally,
    options: PreflightOptions,
    credit: Credit | None,
    fingerprint: str,
    earlier: Sequence[EarlierCampaign],
    cost: Cost | None = None,
    now: datetime | None = None,
) -> list[Finding]:
    strict, out = options.strict, []
    if credit is not None and credit.enough is False:
        out.append(
            credit_finding(credit, tally.total_parts, allow_partial=options.allow_partial, strict=strict)
        )
    identical = {c.id for c in earlier if c.fingerprint == fingerprint}
    same = [c for c in earlier if c.id in identical and _in_window(c, options, now)]
    if same:
        out.append(duplicate_finding(max(same, key=lambda c: c.id), options))  # the newest
    if tally.recent_recipients and not (options.skip_recent or tally.skip_recent):
        out.append(_finding(Check.RECENT, False, strict, _recent(tally, options, identical), "--skip-recent"))
    for message, override in _budget(tally, options, cost):
        out.append(_finding(Check.BUDGET, False, strict, message, override))
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
    earlier: Sequence[EarlierCampaign] = (),
    now: datetime | None = None,
) -> PreflightSummary:
    """The summary of a load that has been fully `add`ed to `tally`, with every check's finding.

    `earlier`: this store's campaigns to compare with (`campaigns.store.preflight.earlier_campaigns`);
    `now` bounds the duplicate check to SMSDISPATCH_DUPLICATE_WINDOW (None: every one given counts)."""
    cost = estimate_cost(tally.parts_by, prices)
    credit = _credit(balance, cost, tally.total_parts)
    fingerprint = tally.fingerprint()
    rejected = dict(loaded.rejected)
    for reason, skipped in (
        ("blacklisted by the operator (campaign {})", tally.blacklist_skipped),
        ("sent recently (campaign {})", tally.skipped),
    ):
        for _, _, campaign in skipped:
            key = reason.format(campaign)
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
        findings=_checks(tally, options, credit, fingerprint, earlier, cost, now),
        fingerprint=fingerprint,
        recent=tally.recent_recipients,
        cost_hint=None if cost is not None else price_hint(provider),
        skipped_recent=list(tally.skipped),
        blacklisted=_blacklisted(tally, options, prices),
        skipped_blacklisted=list(tally.blacklist_skipped),
    )


def _blacklisted(tally: Tally, options: PreflightOptions, prices: PriceTable | None) -> Blacklisted | None:
    """The blacklist memory's hits, and what skipping them saves (None: none found)."""
    if not tally.blacklisted_count:
        return None
    saves = estimate_cost(tally.blacklist_parts_by, prices)
    return Blacklisted(
        count=tally.blacklisted_count,
        by_campaign=dict(sorted(tally.blacklist_hits.items())),
        skipped=bool(tally.blacklist_skipped),
        parts=sum(tally.blacklist_parts_by.values()),
        saves=None if saves is None else saves.estimate,
        memory_days=options.blacklist_memory / 86400,
    )
