"""A provider answer we cannot read is not evidence: end to end, for every provider, on both stores.

Each case sends a campaign over real HTTP to the sandbox; the first chunk's send is accepted and then
hangs past the client's read timeout (an ambiguous send), and the answer reconciliation (or, for Negin,
which cannot be asked, delivery polling) reads carries a renamed field (`dispatcher.sandbox.core.Rename`).
The sandbox's ledger of accepted messages is the witness: nothing went out twice; the chunk that cannot be
settled is held `unknown` by the campaign's `--on-unknown` policy at the reconcile deadline, with the
reason; and the log says once, not once a row or a pass, what could not be read. Media Payamak's sent box
is also read as the official SDK's MessageInfo rows (no batchSmsId), and the recipients found there are
polled with seed 002's GetDelivery to the final state the sandbox decided.
"""

from __future__ import annotations

import logging
from collections import Counter
from datetime import UTC, datetime, timedelta

import pandas as pd
import pytest

from campaigns.plan import plan
from campaigns.states import RecipientState
from campaigns.store import CampaignSpec, Store
from campaigns.text import Template
from dispatcher.engine.runner import LocalRunner
from dispatcher.sandbox.core import Fault, FaultKind, Rename
from workers.deps import ProviderPool, WorkerDeps
from workers.errors import ProviderError
from workers.providers import build_client
from workers.providers.evidence import Unreadable, an_id, one_number
from workers.settings import DispatchSettings
from workers.status import DeliveryStatus, Message, SendBatch, SendOutcome

FAST = DispatchSettings(
    backoff_base=0.01,
    backoff_cap=0.05,
    poll_intervals=(0.05, 0.1),
    reconcile_max_age=4,
    max_attempts=4,
    poll_max_age=3,
)
FINAL = {"delivered", "undelivered", "blacklisted", "failed"}

# provider -> (the method path whose answers lose a key, the renaming, what the one log line names)
RENAMED = {
    "mediapayamak": ("GetMessagesByDateRange", {"receiver": "receptor"}, "no single receiver"),
    "amoot": ("GetMessages", {"Mobile": "Number"}, "no single Mobile"),
    "ghasedak": ("sms/status", {"status": "state"}, "no status"),
    "ghasedak-gateway": ("CheckSmsStatus", {"Data": "Result"}, "no list of rows"),
}


def numbers(n: int) -> list[str]:
    return [f"+98912{i:07d}" for i in range(n)]


def campaign(store: Store, provider: str, phones: list[str], batch: int) -> int:
    df = pd.DataFrame({"row": range(2, len(phones) + 2), "phone": phones})
    spec = CampaignSpec(
        name="evidence",
        provider=provider,
        account=f"{provider}:x",
        sender="",
        message="Hello",
        personalised=False,
        on_unknown="hold",
    )
    return store.create_campaign(spec, plan([df], Template("Hello"), batch, []))


@pytest.fixture
def env(sandbox_environ) -> dict[str, str]:
    """Clients that give up reading a reply after 2 s and take "not found" as "not sent" at once. (0.5 s
    was too short for a plain reply on a loaded machine: a full run timed out the chunk after the hung one,
    which was then held as unknown too.)"""
    out = dict(sandbox_environ)
    for name in ("GHASEDAK", "GHASEDAK_GATEWAY", "MEDIAPAYAMAK", "AMOOT", "NEGIN"):
        out[f"SMSDISPATCH_{name}_TIMEOUT"] = "1,2"
        out[f"SMSDISPATCH_{name}_RECONCILE_GRACE"] = "0"
    return out


def run(store: Store, env: dict[str, str], cid: int) -> LocalRunner:
    runner = LocalRunner(
        WorkerDeps(store, ProviderPool(env), FAST), threads=1, tick=0.02, reconcile_every=0.05
    )
    runner.send(cid, timeout=60)
    return runner


def sent_once(sandbox, provider: str, phones: list[str]) -> None:
    counts = Counter("+" + m.phone for m in sandbox.state.accepted(provider))
    assert [p for p, n in counts.items() if n > 1] == [], "sent twice"
    assert set(counts) == set(phones), "lost or extra recipients"


def said(caplog) -> list[str]:
    return [
        r.getMessage()
        for r in caplog.records
        if r.name == "workers.providers.evidence" and r.levelno >= logging.WARNING
    ]


@pytest.mark.parametrize(
    "value, key",
    [
        ("09121234567", "9121234567"),
        ("+98 912 123 4567", "9121234567"),
        (9121234567, "9121234567"),
        (9121234567.0, "9121234567"),
        ("09121234567,09351234567", None),  # a row about several recipients proves none of them
        ("09121234567 09351234567", None),
        ("", None),
        (None, None),
        ("09121234567x", None),
        ("912", None),
        ([], None),
    ],
)
def test_one_number(value, key):
    assert one_number(value) == key


def test_an_id():
    assert [an_id(v) for v in (991001, "991001", 7.0, " 8 ")] == ["991001", "991001", "7", "8"]
    assert [an_id(v) for v in (None, "", "0", 0, True, 7.5, {}, [])] == [None] * 8


def test_what_could_not_be_read_is_said_once_a_process_then_at_debug_level(caplog):
    caplog.set_level(logging.DEBUG, logger="workers.providers.evidence")
    for total in (3, 5, 3):
        unread = Unreadable("p", "Method")
        unread.row("no receiver", {"receptor": "0912", "content": "x"})
        unread.say(total, "so what")
    other = Unreadable("p", "Method")
    other.row("no content")
    other.say(1, "so what")
    Unreadable("p", "Method").say(4, "nothing unreadable: nothing said")
    levels = [(r.levelname, r.getMessage()) for r in caplog.records]
    assert levels[0] == (
        "WARNING",
        "p Method: 1 of 3 rows could not be read (no receiver: 1; keys in them: content, receptor); so what "
        "(said once; repeats at debug level)",
    )
    assert [lv for lv, _ in levels] == ["WARNING", "DEBUG", "DEBUG", "WARNING"]
    assert "again, 3 times" in levels[2][1] and "no content" in levels[3][1]


@pytest.mark.parametrize("provider", sorted(RENAMED))
def test_a_renamed_field_in_the_reconciliation_answer_never_sends_twice(
    caplog, store, env, sandbox, provider
):
    path, fields, missing = RENAMED[provider]
    phones = numbers(6)
    cid = campaign(store, provider, phones, batch=3)
    sandbox.state.add_fault(Fault(provider, "send", FaultKind.ACCEPT_THEN_HANG, seconds=3.0))
    sandbox.state.add_rename(Rename(provider, path, fields))
    run(store, env, cid)
    sent_once(sandbox, provider, phones)  # the first chunk went out once, and was never sent again
    assert sandbox.state.calls[(provider, "send")] == 2  # not even tried again
    rows = {r["phone"]: r for r in store.recipients_rows(cid)}
    held = {p for p, r in rows.items() if r["state"] == RecipientState.UNKNOWN}
    assert held == set(phones[:3])
    assert all("could not say within 4 s whether it was sent" in rows[p]["error"] for p in held)
    lines = said(caplog)  # once per answer (reconciliation's; polling's where the field is in it too)
    answers = Counter(line.split(":")[0] for line in lines)
    assert set(answers.values()) == {1}, lines  # though reconciliation asked many times
    assert any(line.startswith(f"{provider} {path}") and missing in line for line in lines), lines


def test_negin_status_list_with_a_renamed_field_is_no_delivery_report(caplog, store, env, sandbox):
    """Negin cannot be asked whether a send went out (held at once); a status list whose ids we cannot
    read answers nothing: the sent recipients stay `sent` until the poll deadline makes them `expired`,
    never `undelivered` or `failed`."""
    phones = [p for p in numbers(6) if sandbox.state.outcome(p) != "blacklisted"][:3]
    cid = campaign(store, "negin", phones, batch=1)
    sandbox.state.add_fault(Fault("negin", "send", FaultKind.ACCEPT_THEN_HANG, seconds=3.0))
    sandbox.state.add_rename(Rename("negin", "wsStates.ashx", {"msgIds": "ids"}))
    runner = run(store, env, cid)
    assert runner.poll(campaign_id=cid, timeout=30)
    sent_once(sandbox, "negin", phones)
    states = store.recipient_states(cid)
    assert states[phones[0]] == "unknown"
    assert {states[p] for p in phones[1:]} == {"expired"}
    lines = said(caplog)
    assert len(lines) == 1 and "negin wsStates.ashx" in lines[0] and "not parallel" in lines[0], lines


def test_mediapayamak_recipients_found_in_the_sent_box_reach_their_final_state(caplog, store, env, sandbox):
    """The sent box answers the SDK's MessageInfo rows (no batchSmsId): the recipients found there get the
    row's messageId, which GetDelivery accepts, so every one reaches the final state the sandbox decided.
    The first two answers have no receiver at all: reconciliation waits instead of resending."""
    phones = numbers(8)
    cid = campaign(store, "mediapayamak", phones, batch=4)
    sandbox.state.add_fault(Fault("mediapayamak", "send", FaultKind.ACCEPT_THEN_HANG, seconds=3.0))
    sandbox.state.add_rename(Rename("mediapayamak", "GetMessagesByDateRange", {"receiver": ""}, times=2))
    runner = run(store, env, cid)
    assert runner.poll(campaign_id=cid, timeout=30)
    sent_once(sandbox, "mediapayamak", phones)
    assert store.recipient_states(cid) == {p: sandbox.state.outcome(p) for p in phones}
    assert set(store.recipient_states(cid).values()) <= FINAL
    ids = {r["phone"]: r["provider_message_id"] for r in store.recipients_rows(cid)}
    accepted = {"+" + m.phone: m.message_id for m in sandbox.state.accepted("mediapayamak")}
    assert {p: ids[p] for p in phones[:4]} == {p: accepted[p] for p in phones[:4]}  # the rows' messageIds
    assert all(":" in ids[p] for p in phones[4:])  # sent in the open: {batchSmsId}:{number}
    assert sandbox.state.calls[("mediapayamak", "reconcile")] >= 3
    assert len(said(caplog)) == 1


@pytest.mark.parametrize("provider", ["mediapayamak", "amoot", "ghasedak", "ghasedak-gateway"])
def test_every_id_reconciliation_finds_is_one_the_delivery_poll_answers(env, sandbox, provider):
    """Whatever a provider's reconciliation yields as a recipient's id, its status call takes and answers
    (Media Payamak: the sent box's messageId, through GetDelivery)."""
    client = build_client(provider, env)
    messages = tuple(Message(i + 1, p, "Hello", f"77{i + 1:04d}") for i, p in enumerate(numbers(3)))
    sent = SendBatch(messages, client.settings.sender)
    sandbox.state.add_fault(Fault(provider, "send", FaultKind.ACCEPT_THEN_HTTP, status=500))
    with pytest.raises(ProviderError):
        client.send(sent)
    found = client.reconcile(sent, datetime.now(UTC) - timedelta(seconds=5))
    assert {r.outcome for r in found} == {SendOutcome.ACCEPTED}
    answers = client.status([r.message_id for r in found])
    assert [a.status for a in answers] == [
        DeliveryStatus(sandbox.state.outcome(m.phone)) for m in messages
    ], answers
