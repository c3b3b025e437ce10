"""Operator estimate from the number prefix (phonenumbers carrier data)."""

from __future__ import annotations

import pytest

from campaigns.operators import Operator, count_operators, operator_of


@pytest.mark.parametrize(
    ("phone", "operator"),
    [
        ("+989121234567", Operator.MCI),
        ("+989901234567", Operator.MCI),
        ("+989351234567", Operator.IRANCELL),
        ("+989041234567", Operator.IRANCELL),
        ("+989211234567", Operator.RIGHTEL),
        ("+989981234567", Operator.RIGHTEL),
        ("+989311234567", Operator.OTHER),  # MTCE (Spadan)
        ("+989419876543", Operator.OTHER),  # no carrier in the data
        ("09121234567", Operator.OTHER),  # not E.164
    ],
)
def test_operator_of(phone: str, operator: Operator) -> None:
    assert operator_of(phone) is operator


def test_count_operators_lists_every_operator() -> None:
    counts = count_operators(["+989121234567", "+989121234568", "+989351234567"])
    assert counts == {Operator.MCI: 2, Operator.IRANCELL: 1, Operator.RIGHTEL: 0, Operator.OTHER: 0}
