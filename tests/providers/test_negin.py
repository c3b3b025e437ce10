"""Negin (3300) client and twin: code tables, pure parsers over fixtures, twin strictness over HTTP."""

from __future__ import annotations

import json
import threading
from pathlib import Path

import pytest
import requests

from dispatcher.sandbox.core import DEFAULT_CREDENTIALS, Fault
from dispatcher.sandbox.negin import MESSAGES
from tests.providers.contract import PHONES, ProviderContract, batch_of
from workers.errors import (
    AccountError,
    AmbiguousSendError,
    ConfigurationError,
    RecipientRefusedError,
    RequestError,
    TransientError,
)
from workers.providers import negin
from workers.providers.base import Reply
from workers.providers.negin import NeginClient
from workers.status import DeliveryStatus, SendBatch, SendOutcome, StatusResult

FIXTURES = Path(__file__).parent / "fixtures" / "negin"
CREDS = DEFAULT_CREDENTIALS["negin"]


def fixture(name: str) -> dict:
    return json.loads((FIXTURES / name).read_text(encoding="utf-8"))


def blacklisted_phone(state) -> str:
    """A number the sandbox opts out (seed-dependent, so searched rather than hard-coded)."""
    return next(p for p in (f"+98912{i:07d}" for i in range(1000)) if state.outcome(p) == "blacklisted")


def client(env: dict[str, str], **overrides: str) -> NeginClient:
    env = {**env, **overrides}
    return NeginClient(NeginClient.load_settings(env))


def batch(
    c: NeginClient, phones: list[str], text: str = "سلام، تخفیف ویژه لغو11", start: int = 1
) -> SendBatch:
    return SendBatch(batch_of(phones, text, start).messages, sender=c.settings.sender)


def post(sandbox, path: str, **form: str) -> requests.Response:
    return requests.post(f"{sandbox.url}/negin/api/{path}", data=form, timeout=5)


# ---- contract -------------------------------------------------------------------------------------
class TestContract(ProviderContract):
    provider = "negin"
    transient_code = 15
    account_code = 14

    def test_send_accepts_every_recipient_once(self, sandbox, sandbox_environ):
        # One number per call (default batch 1); the twin refuses opted-out numbers at send with 27.
        c = self.client(sandbox_environ)
        blocked = blacklisted_phone(sandbox.state)
        phones = [*PHONES, blocked]
        results = [c.send(batch(c, [p], start=i + 1))[0] for i, p in enumerate(phones)]
        assert [r.recipient_id for r in results] == list(range(1, len(phones) + 1))
        for phone, r in zip(phones, results, strict=True):
            if phone == blocked:
                assert (r.outcome, r.status, r.raw_code, r.message_id) == (
                    SendOutcome.REFUSED,
                    DeliveryStatus.BLACKLISTED,
                    "27",
                    None,
                )
            else:
                assert r.outcome is SendOutcome.ACCEPTED and isinstance(r.message_id, str) and r.message_id
        counts = sandbox.state.count_by_phone(self.provider)
        assert sorted(counts) == sorted(p.lstrip("+") for p in PHONES)
        assert set(counts.values()) == {1}

    def test_status_maps_to_what_the_sandbox_decided(self, sandbox, sandbox_environ):
        c = self.client(sandbox_environ)
        blocked = blacklisted_phone(sandbox.state)
        phones = [*PHONES, blocked]
        results = [c.send(batch(c, [p], start=i + 1))[0] for i, p in enumerate(phones)]
        sent = [(p, r) for p, r in zip(phones, results, strict=True) if r.outcome is SendOutcome.ACCEPTED]
        statuses = {s.message_id: s for s in c.status([r.message_id for _, r in sent])}
        for phone, result in sent:
            got = statuses[result.message_id]
            assert got.status is DeliveryStatus(sandbox.state.outcome(phone)), (phone, got)
            assert got.raw_code is not None
        assert results[-1].status is DeliveryStatus.BLACKLISTED and results[-1].outcome is SendOutcome.REFUSED

    def test_balance(self, sandbox, sandbox_environ):
        c = self.client(sandbox_environ)
        assert c.capabilities.balance is False
        with pytest.raises(RequestError, match="no REST balance"):
            c.balance()


# ---- code tables ----------------------------------------------------------------------------------
# providers.md §5 "Error codes", written out independently of the module's table.
DOC_CLASSES = {
    0: TransientError,
    1: RecipientRefusedError,
    2: AccountError,
    3: RequestError,
    4: RequestError,
    6: RequestError,
    13: RequestError,
    14: AccountError,
    15: TransientError,
    16: AccountError,
    17: AccountError,
    18: AccountError,
    19: AccountError,
    22: AccountError,
    23: TransientError,
    24: RequestError,
    25: RequestError,
    27: RecipientRefusedError,
    **{c: RequestError for c in (100, 101, 102, 103, 104, 106, 107, 109, 110)},
    409: TransientError,
}


def test_the_send_code_table_is_exactly_the_documented_one():
    assert negin.SEND_CODES == DOC_CLASSES


@pytest.mark.parametrize("code", sorted(DOC_CLASSES))
def test_every_send_code_raises_its_documented_class_on_a_multi_number_send(sandbox, sandbox_environ, code):
    c = client(sandbox_environ, SMSDISPATCH_NEGIN_MULTI="1", SMSDISPATCH_NEGIN_BATCH="2")
    sandbox.state.add_fault(Fault("negin", "send", "code", code=code))
    with pytest.raises(DOC_CLASSES[code]) as info:
        c.send(batch(c, PHONES[:2]))
    assert type(info.value) is DOC_CLASSES[code] and info.value.code == str(code)
    if code == 409:
        assert info.value.retry_after == 5.0
    assert sandbox.state.accepted("negin") == []


@pytest.mark.parametrize(("code", "status"), [(1, DeliveryStatus.FAILED), (27, DeliveryStatus.BLACKLISTED)])
def test_per_recipient_codes_refuse_the_one_recipient_of_a_single_send(
    sandbox, sandbox_environ, code, status
):
    c = client(sandbox_environ)
    sandbox.state.add_fault(Fault("negin", "send", "code", code=code))
    (result,) = c.send(batch(c, PHONES[:1]))
    assert (result.outcome, result.status, result.raw_code, result.error) == (
        SendOutcome.REFUSED,
        status,
        str(code),
        MESSAGES[code],
    )


@pytest.mark.parametrize(
    ("code", "status"),
    [
        (-1, DeliveryStatus.UNKNOWN),  # "not sent": final only by the poller's age limit (see module)
        (0, DeliveryStatus.PENDING),
        (1, DeliveryStatus.DELIVERED),
        (2, DeliveryStatus.UNDELIVERED),
        (8, DeliveryStatus.SENT_TO_OPERATOR),
        (16, DeliveryStatus.FAILED),
    ],
)
def test_every_delivery_state_maps_as_documented(code, status):
    body = {"data": {"msgIds": "77", "states": str(code)}, "status": -1}
    assert negin.parse_status_reply(body)["77"] == StatusResult("77", status, str(code))
    assert negin.DELIVERY[code] is status


def test_delivery_table_has_exactly_the_seed_codes():
    assert set(negin.DELIVERY) == {-1, 0, 1, 2, 8, 16}


# ---- pure parsing over fixtures -------------------------------------------------------------------
def test_send_form_follows_the_seed_fields():
    seed = fixture("send_seed.json")["request"]
    form = negin.build_send_form(batch_of(["+989121234567"]), line="983000330000", line2="983000330001")
    assert set(form) | {"username", "password"} == set(seed)
    assert form == {
        "mobile": "989121234567",
        "message": "سلام، تخفیف ویژه لغو11",
        "line": "983000330000",
        "line2": "983000330001",
        "type": "0",
        "template": "0",
    }
    assert "line2" not in negin.build_send_form(batch_of(["+989121234567"]), line="1")


@pytest.mark.parametrize(
    ("name", "expected_id"), [("send_seed.json", "3403"), ("send_ng2.json", "35702617027")]
)
def test_parse_single_send_reply(name, expected_id):
    (result,) = negin.parse_send_reply(fixture(name)["reply"], batch_of(["+989395213300"], start=9))
    assert (result.recipient_id, result.outcome, result.message_id, result.raw_code) == (
        9,
        SendOutcome.ACCEPTED,
        expected_id,
        "-1",
    )


@pytest.mark.parametrize(
    ("shape", "ids"), [("list_reply", ["5000", "5001"]), ("joined_reply", ["6001", "6002"])]
)
def test_parse_several_number_reply_matches_by_mobile(shape, ids):
    results = negin.parse_send_reply(fixture("send_multi_assumed.json")[shape], batch_of(PHONES[:2]))
    assert [(r.outcome, r.message_id) for r in results] == [(SendOutcome.ACCEPTED, i) for i in ids]


def test_reply_without_mobiles_pairs_by_position_only_when_counts_agree():
    body = {"data": {"message_id": "11,12"}, "status": -1}
    assert [r.message_id for r in negin.parse_send_reply(body, batch_of(PHONES[:2]))] == ["11", "12"]
    short = negin.parse_send_reply({"data": {"message_id": "11"}, "status": -1}, batch_of(PHONES[:2]))
    assert {r.outcome for r in short} == {SendOutcome.UNKNOWN}


def test_a_success_reply_without_an_id_leaves_the_recipient_unknown():
    (result,) = negin.parse_send_reply({"data": None, "status": -1}, batch_of(PHONES[:1]))
    assert result.outcome is SendOutcome.UNKNOWN and result.message_id is None


def test_parse_status_fixture():
    got = negin.parse_status_reply(fixture("states_seed.json")["reply"])
    assert [(s.message_id, s.status, s.raw_code) for s in got.values()] == [
        ("6062", DeliveryStatus.DELIVERED, "1"),
        ("6063", DeliveryStatus.SENT_TO_OPERATOR, "8"),
        ("6064", DeliveryStatus.FAILED, "16"),
    ]


def test_unknown_delivery_states_stay_unknown_with_the_raw_code():
    got = negin.parse_status_reply({"data": {"msgIds": "1,2", "states": "5,x"}, "status": -1})
    assert [(s.status, s.raw_code) for s in got.values()] == [
        (DeliveryStatus.UNKNOWN, "5"),
        (DeliveryStatus.UNKNOWN, "x"),
    ]


@pytest.mark.parametrize(
    "data",
    [
        {"msgIds": "1,2,3", "states": "1,8"},  # a state missing: which one?
        {"msgIds": "1,2,3", "states": ""},
        {"ids": "1,2,3", "states": "1,8,2"},  # renamed
        {"msgIds": "1,2,3"},
    ],
)
def test_status_lists_that_do_not_pair_answer_nothing(caplog, data):
    assert negin.parse_status_reply({"data": data, "status": -1}) == {}
    said = [r.getMessage() for r in caplog.records if r.name == "workers.providers.evidence"]
    assert len(said) == 1 and "not parallel" in said[0]


def test_an_empty_place_is_never_filled_from_the_next_one():
    got = negin.parse_status_reply({"data": {"msgIds": "1,2,3", "states": "1,,8"}, "status": -1})
    assert {k: v.raw_code for k, v in got.items()} == {"1": "1", "3": "8"}


def test_phone_spelling():
    assert [negin.mobile(p) for p in ("+989121234567", "09121234567", "9121234567", "00989121234567")] == [
        "989121234567"
    ] * 4


# ---- unknown codes --------------------------------------------------------------------------------
def test_unknown_send_code_is_ambiguous(sandbox, sandbox_environ):
    c = client(sandbox_environ)
    sandbox.state.add_fault(Fault("negin", "send", "code", code=987))
    with pytest.raises(AmbiguousSendError) as info:
        c.send(batch(c, PHONES[:1]))
    assert info.value.code == "987"


@pytest.mark.parametrize("status", ["abc", None, 5.5e9])
def test_a_status_that_is_not_a_known_number_is_ambiguous_on_send(sandbox_environ, monkeypatch, status):
    c = client(sandbox_environ)
    reply = Reply(200, {"status": status, "msg": "?"}, "{}", {})
    monkeypatch.setattr(c, "call", lambda *a, **k: reply)
    with pytest.raises(AmbiguousSendError):
        c.send(batch(c, PHONES[:1]))
    with pytest.raises(TransientError):
        c.status(["1"])


def test_unknown_status_code_is_transient(sandbox, sandbox_environ):
    c = client(sandbox_environ)
    sandbox.state.add_fault(Fault("negin", "status", "code", code=987))
    with pytest.raises(TransientError):
        c.status(["1"])


def test_per_recipient_code_on_a_status_call_is_a_request_error(sandbox, sandbox_environ):
    c = client(sandbox_environ)
    sandbox.state.add_fault(Fault("negin", "status", "code", code=1))
    with pytest.raises(RequestError) as info:
        c.status(["1"])
    assert not isinstance(info.value, RecipientRefusedError)


# ---- twin strictness over HTTP --------------------------------------------------------------------
def test_twin_wrong_password_is_18_and_an_account_error(sandbox, sandbox_environ):
    reply = post(
        sandbox,
        "wsSend.ashx",
        username=CREDS["username"],
        password="nope",
        mobile="989121234567",
        message="x",
        line="1",
    )
    assert (reply.status_code, reply.json()["status"]) == (200, 18)
    reply = post(sandbox, "wsStates.ashx", username=CREDS["username"], message_ids="1")
    assert reply.json()["status"] == 18
    c = client(sandbox_environ, SMSDISPATCH_NEGIN_USERNAME="someone-else")
    with pytest.raises(AccountError):
        c.status(["1"])


@pytest.mark.parametrize(
    ("fields", "code", "cls"),
    [
        ({"message": ""}, 13, RequestError),
        ({"mobile": ""}, 106, RequestError),
        ({"mobile": ",".join(f"98912{i:07d}" for i in range(101))}, 107, RequestError),
        ({"mobile": "12345"}, 1, RecipientRefusedError),
        ({"line": ""}, 2, AccountError),
        ({"type": "9"}, 25, RequestError),
    ],
)
def test_twin_refuses_bad_sends_with_the_documented_code(sandbox, fields, code, cls):
    form = {**CREDS, "mobile": "989121234567", "message": "hi", "line": "983000330000", **fields}
    reply = post(sandbox, "wsSend.ashx", **form)
    assert reply.json()["status"] == code
    assert negin.SEND_CODES[code] is cls
    assert sandbox.state.accepted("negin") == []


def test_twin_status_refuses_empty_and_too_many_ids(sandbox):
    assert post(sandbox, "wsStates.ashx", **CREDS, message_ids="").json()["status"] == 24
    many = ",".join(str(i) for i in range(101))
    assert post(sandbox, "wsStates.ashx", **CREDS, message_ids=many).json()["status"] == 107


def test_twin_answers_minus_one_for_unknown_ids(sandbox, sandbox_environ):
    (result,) = client(sandbox_environ).status(["424242"])
    assert (result.status, result.raw_code) == (DeliveryStatus.UNKNOWN, "-1")


def test_twin_has_no_balance_and_unknown_paths_404(sandbox):
    assert post(sandbox, "wsCredit.ashx", **CREDS).status_code == 404


def test_no_credit_is_14(sandbox, sandbox_environ):
    sandbox.state.credit["negin"] = 0
    c = client(sandbox_environ)
    with pytest.raises(AccountError) as info:
        c.send(batch(c, PHONES[:1]))
    assert info.value.code == "14"


def test_line2_carries_an_opted_out_number(sandbox, sandbox_environ):
    c = client(sandbox_environ, SMSDISPATCH_NEGIN_LINE2="983000330001")
    (result,) = c.send(batch(c, [blacklisted_phone(sandbox.state)]))
    assert result.outcome is SendOutcome.ACCEPTED
    assert [m.sender for m in sandbox.state.accepted("negin")] == ["983000330001"]


# ---- several numbers per call (MULTI) -------------------------------------------------------------
def test_batch_above_one_needs_multi(sandbox_environ):
    with pytest.raises(ConfigurationError, match="SMSDISPATCH_NEGIN_BATCH.*SMSDISPATCH_NEGIN_MULTI"):
        client(sandbox_environ, SMSDISPATCH_NEGIN_BATCH="5")
    with pytest.raises(ConfigurationError):
        client(sandbox_environ, SMSDISPATCH_NEGIN_MULTI="maybe")
    with pytest.raises(ConfigurationError):
        client(sandbox_environ, SMSDISPATCH_NEGIN_BATCH="101", SMSDISPATCH_NEGIN_MULTI="1")
    assert (
        client(sandbox_environ, SMSDISPATCH_NEGIN_BATCH="100", SMSDISPATCH_NEGIN_MULTI="1").settings.batch
        == 100
    )


def test_multi_sends_one_call_and_matches_ids(sandbox, sandbox_environ):
    c = client(sandbox_environ, SMSDISPATCH_NEGIN_MULTI="1", SMSDISPATCH_NEGIN_BATCH="5")
    results = c.send(batch(c, PHONES))
    assert all(r.outcome is SendOutcome.ACCEPTED for r in results)
    by_id = {m.message_id: m.phone for m in sandbox.state.accepted("negin")}
    assert [by_id[r.message_id] for r in results] == [p.lstrip("+") for p in PHONES]
    assert sandbox.state.calls[("negin", "send")] == 1


def test_multi_with_an_opted_out_number_is_split_by_the_caller(sandbox, sandbox_environ):
    c = client(sandbox_environ, SMSDISPATCH_NEGIN_MULTI="1", SMSDISPATCH_NEGIN_BATCH="5")
    with pytest.raises(RecipientRefusedError):
        c.send(batch(c, [PHONES[0], blacklisted_phone(sandbox.state)]))
    assert sandbox.state.accepted("negin") == []


def test_multi_refuses_different_texts_before_any_call(sandbox, sandbox_environ):
    c = client(sandbox_environ, SMSDISPATCH_NEGIN_MULTI="1", SMSDISPATCH_NEGIN_BATCH="5")
    mixed = SendBatch(
        batch(c, PHONES[:1]).messages + batch(c, PHONES[1:2], text="other", start=2).messages, ""
    )
    with pytest.raises(RequestError):
        c.send(mixed)
    assert sandbox.state.calls[("negin", "send")] == 0


def test_empty_batch_is_refused(sandbox_environ):
    c = client(sandbox_environ)
    with pytest.raises(RequestError):
        c.send(SendBatch((), sender=c.settings.sender))


# ---- status batching ------------------------------------------------------------------------------
def test_status_asks_at_most_100_ids_per_call_and_keeps_order(sandbox, sandbox_environ):
    c = client(sandbox_environ)
    ids = [str(i) for i in range(150)]
    got = c.status(ids)
    assert [s.message_id for s in got] == ids
    assert sandbox.state.calls[("negin", "status")] == 2


# ---- pacing (409) ---------------------------------------------------------------------------------
def test_twin_409_when_sends_come_too_fast(sandbox, sandbox_environ):
    sandbox.state.negin_min_interval_s = 30
    c = client(sandbox_environ)
    c.send(batch(c, PHONES[:1]))
    with pytest.raises(TransientError) as info:
        c.send(batch(c, PHONES[1:2]))
    assert (info.value.code, info.value.retry_after) == ("409", 5.0)
    assert len(sandbox.state.accepted("negin")) == 1


def test_http_409_without_an_envelope_is_transient(sandbox, sandbox_environ):
    c = client(sandbox_environ)
    sandbox.state.add_fault(Fault("negin", "send", "http", status=409))
    with pytest.raises(TransientError) as info:
        c.send(batch(c, PHONES[:1]))
    assert info.value.retry_after == 5.0


def test_min_interval_refuses_early_sends_without_a_call(sandbox, sandbox_environ):
    c = client(sandbox_environ, SMSDISPATCH_NEGIN_MIN_INTERVAL="30")
    c.send(batch(c, PHONES[:1]))
    with pytest.raises(TransientError) as info:
        c.send(batch(c, PHONES[1:2]))
    assert 25 < info.value.retry_after <= 30
    assert sandbox.state.calls[("negin", "send")] == 1
    with pytest.raises(ConfigurationError):
        client(sandbox_environ, SMSDISPATCH_NEGIN_MIN_INTERVAL="-1")


def test_min_interval_is_thread_safe(sandbox, sandbox_environ):
    c = client(sandbox_environ, SMSDISPATCH_NEGIN_MIN_INTERVAL="30")
    outcomes: list[str] = []
    start = threading.Barrier(4)

    def one(i: int) -> None:
        start.wait()
        try:
            c.send(batch(c, [PHONES[i]], start=i + 1))
            outcomes.append("sent")
        except TransientError:
            outcomes.append("wait")

    threads = [threading.Thread(target=one, args=(i,)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(outcomes) == ["sent", "wait", "wait", "wait"]
    assert len(sandbox.state.accepted("negin")) == 1
