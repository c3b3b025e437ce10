"""Reading loosely typed provider JSON (workers/providers/values.py): keys in any case, numbers as text."""

from __future__ import annotations

import pytest

from workers.providers.values import field, to_float


def test_a_key_is_found_as_documented_or_in_another_case():
    assert field({"messageid": 7, "MessageId": 8}, "messageid") == 7  # the documented spelling first
    assert field({"MessageId": 8}, "messageid") == 8
    assert field({"status": None}, "status") is None
    assert field({"x": 1}, "messageid") is None
    assert field(["messageid"], "messageid") is None


@pytest.mark.parametrize(
    ("raw", "number"),
    [
        (1732, 1732.0),
        ("1732.5", 1732.5),
        (None, None),
        ("", None),
        ("abc", None),
        ("NaN", None),
        ("inf", None),
    ],
)
def test_a_price_is_a_finite_number_or_nothing(raw, number):
    assert to_float(raw) == number
