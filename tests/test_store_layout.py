"""The store package keeps its promises: one writer of state columns, one claim condition, small modules."""

from __future__ import annotations

import ast
from datetime import UTC, datetime, timedelta
from pathlib import Path

from campaigns.store import Store
from tests.test_store import LEASE, make_campaign, phones

STORE = Path(__file__).resolve().parents[1] / "campaigns" / "store"


def _updates_setting_state(tree: ast.AST) -> list[int]:
    """Line numbers of `update(...)….values(state=…)` calls: state written outside `sql.transition`."""
    found = []
    for node in ast.walk(tree):
        if not (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)):
            continue
        if node.func.attr != "values" or not any(k.arg == "state" for k in node.keywords):
            continue
        base = node.func.value
        while isinstance(base, ast.Call | ast.Attribute):
            if isinstance(base, ast.Call) and isinstance(base.func, ast.Name) and base.func.id == "update":
                found.append(node.lineno)
                break
            base = base.func if isinstance(base, ast.Call) else base.value
    return found


def test_only_transition_writes_a_state_column() -> None:
    offenders = {
        path.name: lines
        for path in sorted(STORE.glob("*.py"))
        if (lines := _updates_setting_state(ast.parse(path.read_text(encoding="utf-8"))))
    }
    assert offenders == {}


def test_store_modules_stay_small() -> None:
    sizes = {p.name: len(p.read_text(encoding="utf-8").splitlines()) for p in STORE.glob("*.py")}
    assert max(sizes.values()) < 400, sizes


def test_the_peek_the_work_list_and_the_claim_agree(store: Store) -> None:
    """`chunk_cost(...).claimable`, `claimable_chunks` and `claim_chunk` read one condition (sql.claimable)."""
    cid = make_campaign(store, phones(6), batch=2)
    queued, retrying, sending = (c for c, _ in store.claimable_chunks(campaign_id=cid))
    now = datetime.now(UTC)

    def agree(chunk_id: int, attempt: int, at: datetime) -> bool:
        peek = store.chunk_cost(chunk_id, attempt, now=at)
        listed = (chunk_id, attempt) in store.claimable_chunks(campaign_id=cid, now=at)
        assert peek is not None and peek.claimable == listed
        return listed

    first = store.claim_chunk(retrying, 0, LEASE, now=now)
    store.chunk_retry(first, "code 10", delay=30, max_attempts=5, now=now)
    store.claim_chunk(sending, 0, LEASE, now=now)
    later = now + timedelta(seconds=31)
    assert agree(queued, 0, now) and agree(queued, 0, later)
    assert not agree(queued, 1, now)  # another attempt than the one asked about
    assert not agree(retrying, 1, now)  # its retry is not due yet
    assert agree(retrying, 1, later)
    assert not agree(sending, 1, later)
    store.pause(cid)
    assert not agree(queued, 0, later) and not agree(retrying, 1, later)
    assert store.claim_chunk(queued, 0, LEASE, now=later) is None
    store.resume(cid)
    assert agree(retrying, 1, later)
    assert store.claim_chunk(retrying, 1, LEASE, now=now) is None  # not due at `now`
    assert store.claim_chunk(retrying, 1, LEASE, now=later) is not None
    assert not agree(retrying, 2, later)
