"""The suppression list and inbox cursors in the store, on SQLite and PostgreSQL."""

from __future__ import annotations

import threading

from campaigns.store import Store

A, B = "+989121111111", "+989122222222"


def test_suppress_keeps_the_first_reason_and_counts_new_numbers(store: Store):
    assert store.suppress([A, B], "by hand") == 2
    assert store.suppress([A, "+989123333333"], "again") == 1
    assert store.suppressed() == {A: "by hand", B: "by hand", "+989123333333": "again"}
    assert [s.phone for s in store.suppressions()][:2] in ([A, B], [B, A])


def test_unsuppress(store: Store):
    store.suppress([A, B], "x")
    assert store.unsuppress([A, "+989129999999"]) == 1
    assert store.unsuppress([]) == 0
    assert set(store.suppressed()) == {B}


def test_record_optouts_moves_the_cursor_with_the_suppressions(store: Store):
    assert store.inbox_cursor("acct:1") is None
    added = store.record_optouts("acct:1", "ghasedak", {A: "opted out: replied 'لغو'"}, "c1", previous=None)
    assert added == 1
    assert store.inbox_cursor("acct:1") == "c1"
    assert store.inbox_cursor("acct:2") is None
    # the same replies read again (an overlapping window): nothing new, the cursor still moves
    assert store.record_optouts("acct:1", "ghasedak", {A: "again"}, "c2", previous="c1") == 0
    assert store.inbox_cursor("acct:1") == "c2"
    assert store.suppressed() == {A: "opted out: replied 'لغو'"}


def test_a_stale_cursor_writes_nothing(store: Store):
    store.record_optouts("acct", "mediapayamak", {}, "10", previous=None)
    assert store.record_optouts("acct", "mediapayamak", {A: "x"}, "12", previous="10") == 1
    # a pass that started from "10" too, and finishes second: rolled back whole, suppressions included
    assert store.record_optouts("acct", "mediapayamak", {B: "x"}, "11", previous="10") is None
    assert store.inbox_cursor("acct") == "12"
    assert set(store.suppressed()) == {A}
    # two first passes: one creates the cursor, the other finds it there
    assert store.record_optouts("new", "ghasedak", {B: "y"}, "a", previous=None) == 1
    assert store.record_optouts("new", "ghasedak", {B: "y"}, "b", previous=None) is None
    assert store.inbox_cursor("new") == "a"


def test_racing_passes_from_the_same_cursor_one_wins(store: Store):
    store.record_optouts("acct", "ghasedak", {}, "0", previous=None)
    results: list[int | None] = []
    barrier = threading.Barrier(4)

    def one(n: int) -> None:
        barrier.wait()
        results.append(store.record_optouts("acct", "ghasedak", {A: f"r{n}"}, f"c{n}", previous="0"))

    threads = [threading.Thread(target=one, args=(n,)) for n in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(results, key=lambda r: r is None)[0] == 1
    assert results.count(None) == 3
    assert store.inbox_cursor("acct") in {"c0", "c1", "c2", "c3"}
    assert list(store.suppressed()) == [A]
