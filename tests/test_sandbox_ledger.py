"""The sandbox's ledger over its admin API, as tests and bench/soak.py read it from another process."""

from __future__ import annotations

import requests


def test_the_ledger_comes_whole_or_in_pages_in_the_order_accepted(sandbox):
    for i in range(5):
        sandbox.state.accept("ghasedak", f"0912000000{i}", "Hi", "10008566")
    sandbox.state.accept("negin", "09120000009", "Hi", "983000330000")
    url = sandbox.url + "/_sandbox/messages"

    whole = requests.get(url, params={"provider": "ghasedak"}, timeout=5).json()
    assert [m["phone"] for m in whole] == [f"98912000000{i}" for i in range(5)]
    pages = [
        requests.get(url, params={"provider": "ghasedak", "offset": o, "limit": 2}, timeout=5).json()
        for o in (0, 2, 4, 6)
    ]
    assert [len(p) for p in pages] == [2, 2, 1, 0]
    assert [m for p in pages for m in p] == whole
    assert len(requests.get(url, timeout=5).json()) == 6  # every provider's
