"""The application side of `--budget` / `--max-parts` (dispatcher/app/budget.py), over a real store."""

from __future__ import annotations

import pytest

from campaigns.prices import PriceTable
from campaigns.states import CampaignState
from dispatcher.app.budget import BudgetError, budget_line, parse_cap, raise_and_resume, spec_caps
from tests.test_budget import claim_all, make


@pytest.mark.parametrize(
    ("text", "value"),
    [("50000", 50_000), ("50,000", 50_000), ("۵۰٬۰۰۰", 50_000), ("1_000", 1000), (None, None)],
)
def test_caps_are_read_as_people_write_them(text, value):
    assert parse_cap(text, "--budget") == value


@pytest.mark.parametrize("text", ["", "0", "-5", "12.5", "lots"])
def test_a_cap_that_is_not_a_whole_number_above_zero_is_bad_input(text):
    with pytest.raises(BudgetError, match="--max-parts"):
        parse_cap(text, "--max-parts")


def test_a_rial_budget_without_a_price_says_how_to_set_one():
    with pytest.raises(BudgetError, match="SMSDISPATCH_AMOOT_PRICE"):
        spec_caps(50_000, None, PriceTable(), "amoot")
    assert spec_caps(None, 450, None, "amoot") == {"budget_rial": None, "max_parts": 450, "prices": None}


def test_resume_with_a_higher_budget_goes_on(store):
    cid = make(store, 30, 10, budget=15_000)
    claim_all(store, cid)
    view = store.campaign(cid)
    assert view.state == CampaignState.PAUSED
    assert budget_line(view) == "budget: 10,000 of 15,000 rial committed"
    assert raise_and_resume(store, cid, 30_000, 25)
    assert store.campaign(cid).state == CampaignState.RUNNING
    assert len(claim_all(store, cid)) == 1  # the part cap (25) now stops the third chunk
    assert (
        budget_line(store.campaign(cid))
        == "budget: 20,000 of 30,000 rial committed; parts: 20 of 25 committed"
    )
    unpriced = make(store, 10, 10, prices=None, max_parts=5)
    with pytest.raises(BudgetError):
        raise_and_resume(store, unpriced, 10_000, None)
