"""`send --budget RIAL --max-parts N` and `resume ID --budget RIAL --max-parts N`: the
application side the CLI calls. The caps themselves are held and enforced by the store (campaigns/store,
`within_caps` in the claim's transaction); this module reads the options, checks that a rial budget can
be priced, and words the caps for people.

Errors: `BudgetError` (bad input, exit 2: one line naming the option and the fix).
"""

from __future__ import annotations

import unicodedata
from typing import Any

from campaigns.prices import PriceTable, UnpricedError
from campaigns.records import CampaignView

__all__ = ["BudgetError", "budget_line", "parse_cap", "raise_and_resume", "spec_caps"]

# Persian and Arabic-Indic digits, as people type them on a Persian keyboard
_DIGITS = str.maketrans("۰۱۲۳۴۵۶۷۸۹٠١٢٣٤٥٦٧٨٩", "01234567890123456789")


class BudgetError(ValueError):
    """A cap option that cannot be used; the message names the option and the fix (exit 2)."""


def parse_cap(text: str | int | None, option: str) -> int | None:
    """`--budget 50,000` / `--max-parts ۴۵۰` -> 50000 / 450; None for None. Thousands separators (`,`, `_`,
    `٬`) and Persian digits are accepted. Raises BudgetError naming `option` unless a whole number > 0."""
    if text is None:
        return None
    cleaned = unicodedata.normalize("NFKC", str(text)).translate(_DIGITS)
    cleaned = "".join(cleaned.split()).replace(",", "").replace("_", "").replace("٬", "")
    if not cleaned.isdigit() or int(cleaned) <= 0:
        unit = "rial" if option == "--budget" else "SMS parts"
        raise BudgetError(f"{option} {text!r}: give a whole number of {unit} above 0, e.g. {option} 50000")
    return int(cleaned)


def spec_caps(
    budget: int | None, max_parts: int | None, prices: PriceTable | None, provider: str
) -> dict[str, Any]:
    """The `CampaignSpec` fields of the caps: `CampaignSpec(..., **spec_caps(...))`.

    `prices` is the table the preflight used (`PreflightResult.prices`). Raises BudgetError when a rial
    budget is asked for and no price is known, before anything is stored (the store would refuse too, with
    UnpricedError, when some part has no price).
    """
    if budget is not None and not prices:
        from campaigns.preflight.checks import price_hint

        raise BudgetError(
            f"--budget needs the price of an SMS part: {price_hint(provider)}; or use --max-parts"
        )
    return {"budget_rial": budget, "max_parts": max_parts, "prices": prices}


def raise_and_resume(
    store: Any, campaign_id: int, budget: int | None, max_parts: int | None, who: str | None = None
) -> bool:
    """`resume ID [--budget R] [--max-parts N]`: set the new caps, then resume (recorded as done by `who`).
    False when the campaign cannot take them (finished) or cannot be resumed. Raises BudgetError for a rial
    budget on a campaign stored without prices."""
    if budget is not None or max_parts is not None:
        try:
            if not store.raise_budget(campaign_id, budget_rial=budget, max_parts=max_parts):
                return False
        except UnpricedError as exc:
            raise BudgetError(str(exc)) from None
    return bool(store.resume_by(campaign_id, who) if who else store.resume(campaign_id))


def budget_line(view: CampaignView) -> str | None:
    """For `status`: "budget: 40,000 of 45,500 rial committed; parts: 40 of 45" (what has been claimed, since
    a claimed chunk may go out); None when the campaign has no cap."""
    pieces = []
    if view.budget_rial is not None:
        pieces.append(f"budget: {view.spent_rial:,} of {view.budget_rial:,} rial committed")
    if view.max_parts is not None:
        pieces.append(f"parts: {view.spent_parts:,} of {view.max_parts:,} committed")
    return "; ".join(pieces) or None
