"""Each provider's documented codes lead to the right campaign behaviour, over real HTTP.

Retry later (transient), fail just that recipient (per-recipient), fail the request (bad request),
or pause the campaign (account): the same four outcomes, whatever the provider's envelope.
"""

from __future__ import annotations

from collections import Counter

import pandas as pd
import pytest

from campaigns.plan import plan
from campaigns.states import CampaignState, RecipientState
from campaigns.store import CampaignSpec, Store
from campaigns.text import Template
from dispatcher.engine.runner import LocalRunner
from dispatcher.sandbox.core import Fault
from workers.deps import ProviderPool, WorkerDeps
from workers.settings import DispatchSettings

# provider: (transient, per-recipient, bad request, account) codes as each twin renders them
CODES = {
    "ghasedak": (10, 8, 4, 9),
    "mediapayamak": (9, 16, 17, 8),
    "amoot": ("Failed", "Mobile_Invalid", "SMSMessageText_Empty", "CreditNotEnough"),
    "negin": (15, 1, 13, 14),
}
FAST = DispatchSettings(backoff_base=0.01, backoff_cap=0.05, poll_intervals=(0.05,), max_attempts=4)


@pytest.fixture
def deps(store, sandbox_environ):
    return WorkerDeps(store=store, providers=ProviderPool(sandbox_environ), settings=FAST)


def campaign(store: Store, provider: str, phones: list[str]) -> int:
    df = pd.DataFrame({"row": range(2, len(phones) + 2), "phone": phones})
    spec = CampaignSpec(
        name="codes",
        provider=provider,
        account=f"{provider}:t",
        sender="",
        message="Hello",
        personalised=False,
    )
    return store.create_campaign(spec, plan([df], Template("Hello"), 1, []))


def good_numbers(sandbox, n: int) -> list[str]:
    """Numbers the sandbox will not refuse at send time (Negin refuses its blacklisted ones)."""
    out = [
        f"+98912555{i:04d}" for i in range(40) if sandbox.state.outcome(f"+98912555{i:04d}") != "blacklisted"
    ]
    return out[:n]


@pytest.mark.parametrize("provider", list(CODES))
def test_transient_then_per_recipient_then_request(provider, deps, sandbox):
    transient, per_recipient, bad_request, _ = CODES[provider]
    phones = good_numbers(sandbox, 3)
    cid = campaign(deps.store, provider, phones)
    state = sandbox.state
    state.add_fault(Fault(provider, "send", "code", code=transient, times=2))  # chunk 1: twice, then through
    LocalRunner(deps, threads=1, tick=0.02, reconcile_every=0.05).send(cid, timeout=30)
    assert deps.store.campaign(cid).counts == {RecipientState.SENT: 3}

    cid2 = campaign(deps.store, provider, good_numbers(sandbox, 6)[3:])
    state.add_fault(Fault(provider, "send", "code", code=per_recipient, times=1))
    state.add_fault(Fault(provider, "send", "code", code=bad_request, times=1))
    LocalRunner(deps, threads=1, tick=0.02, reconcile_every=0.05).send(cid2, timeout=30)
    rows = {r["phone"]: r for r in deps.store.recipients_rows(cid2)}
    states = Counter(r["state"] for r in rows.values())
    assert states == {RecipientState.SENT: 1, RecipientState.FAILED: 2}, rows
    errors = sorted(r["error"] for r in rows.values() if r["state"] == "failed")
    assert all(errors), "a failed recipient must carry the reason"
    counts = state.count_by_phone(provider)
    assert set(counts.values()) == {1}


@pytest.mark.parametrize("provider", list(CODES))
def test_account_code_pauses_the_campaign(provider, deps, sandbox):
    *_, account = CODES[provider]
    phones = good_numbers(sandbox, 4)
    cid = campaign(deps.store, provider, phones)
    sandbox.state.add_fault(Fault(provider, "send", "code", code=account, times=1))
    result = LocalRunner(deps, threads=1, tick=0.02, reconcile_every=0.05).send(cid, timeout=30)
    view = deps.store.campaign(cid)
    assert result.state == CampaignState.PAUSED and view.state_reason
    assert sandbox.state.accepted(provider) == []
    assert deps.store.resume(cid)
    LocalRunner(deps, threads=1, tick=0.02, reconcile_every=0.05).send(cid, timeout=30)
    assert deps.store.campaign(cid).counts == {RecipientState.SENT: 4}
