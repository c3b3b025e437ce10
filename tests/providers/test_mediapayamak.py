"""Media Payamak (Niazpardaz REST v2): code tables, pure parsers, the twin's strictness, the contract.

Expected classes and states are transcribed here from shared/providers.md §3B on purpose, so a change
to the module's tables has to be argued against the spec, not just copied into the test.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import requests

from dispatcher.sandbox.core import Fault
from dispatcher.sandbox.mediapayamak import DELIVERY_CODES as DELIVERY_CODE
from tests.providers.contract import PHONES, ProviderContract, batch_of
from workers.errors import (
    AccountError,
    AmbiguousSendError,
    ConfigurationError,
    ProviderError,
    RecipientRefusedError,
    RequestError,
    TransientError,
)
from workers.providers import mediapayamak as mp
from workers.providers.mediapayamak import MediaPayamakClient
from workers.status import DeliveryStatus, Message, SendBatch, SendOutcome

FIXTURES = Path(__file__).parent / "fixtures" / "mediapayamak"
P = "SMSDISPATCH_MEDIAPAYAMAK_"
TEXT = "سلام، تخفیف ویژه لغو11"


def fixture(name: str) -> Any:
    return json.loads((FIXTURES / f"{name}.json").read_text(encoding="utf-8"))


def client(env: dict[str, str], **overrides: str) -> MediaPayamakClient:
    merged = {**env, **{P + k: v for k, v in overrides.items()}}
    return MediaPayamakClient(MediaPayamakClient.load_settings(merged))


def batch(c: MediaPayamakClient, phones: list[str], text: str = TEXT) -> SendBatch:
    return SendBatch(batch_of(phones, text).messages, sender=c.settings.sender)


def mixed_batch(c: MediaPayamakClient, texts: list[str]) -> SendBatch:
    msgs = tuple(Message(i + 1, PHONES[i], t, f"t{i + 1}") for i, t in enumerate(texts))
    return SendBatch(msgs, sender=c.settings.sender)


def raw_post(
    sandbox: Any, method: str, body: dict[str, Any], key: str | None = "sandbox-mediapayamak-key"
) -> int:
    headers = {"X-API-Key": key} if key is not None else {}
    reply = requests.post(f"{sandbox.url}/mediapayamak/{method}", json=body, headers=headers, timeout=5)
    assert reply.status_code == 200  # the sandbox's assumption: errors come in the envelope, HTTP 200
    return reply.json()["result"]["resultCode"]


class TestContract(ProviderContract):
    provider = "mediapayamak"
    transient_code = 9
    account_code = 8


# ---- code tables (§3B) ---------------------------------------------------------------------------

PER_RCPT = "per-recipient"
SEND_EXPECTED: dict[int, Any] = {
    0: None, 1: AccountError, 2: AccountError, 3: AccountError, 4: AccountError, 5: RequestError,
    6: AccountError, 7: RequestError, 8: AccountError, 9: TransientError, 10: AccountError,
    11: RequestError, 12: RequestError, 13: RequestError, 14: AccountError, 15: AmbiguousSendError,
    16: PER_RCPT, 17: RequestError, 18: RequestError, 19: AccountError, 20: AccountError,
    21: RequestError, 22: TransientError, 23: TransientError, 24: AmbiguousSendError, 25: AccountError,
    26: TransientError,
}  # fmt: skip

DELIVERY_EXPECTED = {
    -10: DeliveryStatus.UNKNOWN, 0: DeliveryStatus.SENT_TO_OPERATOR, 1: DeliveryStatus.DELIVERED,
    2: DeliveryStatus.UNDELIVERED, 3: DeliveryStatus.FAILED, 4: DeliveryStatus.FAILED,
    5: DeliveryStatus.SENT_TO_OPERATOR, 6: DeliveryStatus.FAILED, 7: DeliveryStatus.BLACKLISTED,
    8: DeliveryStatus.UNKNOWN, 9: DeliveryStatus.FAILED, 10: DeliveryStatus.FAILED, 11: DeliveryStatus.FAILED,
    12: DeliveryStatus.FAILED, 13: DeliveryStatus.PENDING,
}  # fmt: skip

CALL_ERRORS = {-1: TransientError, -2: RequestError, -5: TransientError, -6: TransientError, -7: AccountError}
CALL_STATES = {-3: DeliveryStatus.EXPIRED, -4: DeliveryStatus.PENDING}


def test_send_table_covers_every_documented_code():
    assert set(mp.SEND_CODES) == set(SEND_EXPECTED)
    for code, expected in SEND_EXPECTED.items():
        want = RecipientRefusedError if expected == PER_RCPT else expected
        assert mp.SEND_CODES[code] is want, code


@pytest.mark.parametrize("code", [c for c in SEND_EXPECTED if c not in (0, 16)])
def test_every_send_code_is_classified_over_http(sandbox, sandbox_environ, code):
    c = client(sandbox_environ)
    sandbox.state.add_fault(Fault("mediapayamak", "send", "code", code=code))
    with pytest.raises(ProviderError) as info:
        c.send(batch(c, PHONES[:2]))
    assert type(info.value) is SEND_EXPECTED[code]
    assert info.value.code == str(code)
    assert sandbox.state.accepted("mediapayamak") == []


@pytest.mark.parametrize(("code", "wait"), [(22, 300.0), (23, 120.0), (9, None)])
def test_transient_send_codes_carry_their_wait(sandbox, sandbox_environ, code, wait):
    c = client(sandbox_environ)
    sandbox.state.add_fault(Fault("mediapayamak", "send", "code", code=code))
    with pytest.raises(TransientError) as info:
        c.send(batch(c, PHONES[:1]))
    assert info.value.retry_after == wait


def test_code_16_on_one_number_is_a_refusal_value(sandbox, sandbox_environ):
    c = client(sandbox_environ)
    sandbox.state.add_fault(Fault("mediapayamak", "send", "code", code=16))
    (result,) = c.send(batch(c, PHONES[:1]))
    assert result.outcome is SendOutcome.REFUSED and result.status is DeliveryStatus.FAILED
    assert result.raw_code == "16" and result.error and result.message_id is None


def test_code_16_on_several_numbers_asks_for_a_split(sandbox, sandbox_environ):
    c = client(sandbox_environ)
    sandbox.state.add_fault(Fault("mediapayamak", "send", "code", code=16))
    with pytest.raises(RecipientRefusedError):
        c.send(batch(c, PHONES[:3]))


@pytest.mark.parametrize(("code", "expected"), sorted(DELIVERY_EXPECTED.items()))
def test_every_delivery_code_maps_to_its_unified_state(code, expected):
    assert mp.DELIVERY[code] is expected
    result = mp.delivery_status("1:09121234567", code)
    assert result.status is expected and result.raw_code == str(code)


@pytest.mark.parametrize(("code", "cls"), sorted(CALL_ERRORS.items()))
def test_delivery_call_codes_raise_their_class(sandbox, sandbox_environ, code, cls):
    c = client(sandbox_environ)
    (sent,) = c.send(batch(c, PHONES[:1]))
    sandbox.state.add_fault(Fault("mediapayamak", "status", "code", code=code))
    with pytest.raises(ProviderError) as info:
        c.status([sent.message_id])
    assert type(info.value) is cls
    if code == -5:
        assert info.value.retry_after == 60.0


@pytest.mark.parametrize(("code", "state"), sorted(CALL_STATES.items()))
def test_whole_batch_answers_map_every_id(sandbox, sandbox_environ, code, state):
    c = client(sandbox_environ)
    ids = [r.message_id for r in c.send(batch(c, PHONES[:3]))]
    sandbox.state.add_fault(Fault("mediapayamak", "status", "code", code=code))
    results = c.status(ids)
    assert [r.message_id for r in results] == ids
    assert {(r.status, r.raw_code) for r in results} == {(state, str(code))}


@pytest.mark.parametrize(
    ("code", "cls"), [(-1, AccountError), (-2, AccountError), (-6, TransientError), (-7, AccountError)]
)
def test_credit_codes(sandbox, sandbox_environ, code, cls):
    sandbox.state.add_fault(Fault("mediapayamak", "balance", "code", code=code))
    with pytest.raises(ProviderError) as info:
        client(sandbox_environ).balance()
    assert type(info.value) is cls


# ---- unknown codes -------------------------------------------------------------------------------


def test_unknown_send_code_is_ambiguous(sandbox, sandbox_environ):
    c = client(sandbox_environ)
    for code in (99, "abc"):
        sandbox.state.add_fault(Fault("mediapayamak", "send", "code", code=code))
        with pytest.raises(AmbiguousSendError) as info:
            c.send(batch(c, PHONES[:1]))
        assert info.value.code == str(code)


def test_unknown_read_codes_are_transient(sandbox, sandbox_environ):
    c = client(sandbox_environ)
    (sent,) = c.send(batch(c, PHONES[:1]))
    for op, call in (("status", lambda: c.status([sent.message_id])), ("balance", c.balance)):
        sandbox.state.add_fault(Fault("mediapayamak", op, "code", code=99))
        with pytest.raises(TransientError):
            call()


def test_unknown_delivery_code_is_unknown_with_raw_code():
    for raw in (42, "x"):
        result = mp.delivery_status("1:09121234567", raw)
        assert result.status is DeliveryStatus.UNKNOWN and result.raw_code == str(raw)


def test_reply_without_envelope(sandbox, sandbox_environ):
    c = client(sandbox_environ)
    sandbox.state.add_fault(Fault("mediapayamak", "send", "http", status=200))
    with pytest.raises(AmbiguousSendError):
        c.send(batch(c, PHONES[:1]))
    sandbox.state.add_fault(Fault("mediapayamak", "balance", "http", status=200))
    with pytest.raises(TransientError):
        c.balance()
    sandbox.state.add_fault(Fault("mediapayamak", "balance", "http", status=401))
    with pytest.raises(AccountError):
        c.balance()


# ---- pure functions over the fixtures --------------------------------------------------------------


def test_build_send_body_matches_the_documented_request():
    body = mp.build_send_body([mp.provider_number(p) for p in PHONES[:2]], TEXT, "50004001")
    assert body == fixture("send_request")


def test_parse_envelopes():
    assert mp.parse_envelope(fixture("send_ok")) == (0, {"batchSmsId": 73425516, "resultCode": 0})
    assert mp.parse_envelope(fixture("send_error_25"))[0] == 25
    assert mp.parse_envelope(fixture("send_error_16"))[0] == 16
    assert mp.parse_envelope(fixture("batch_delivery_expired"))[0] == -3
    assert mp.parse_envelope({"result": {"resultCode": "?"}}) == (None, {"resultCode": "?"})
    for not_envelope in ("<html>", {"success": False}, {"result": []}, None):
        assert mp.parse_envelope(not_envelope) is None


def test_parse_delivery_matches_any_number_spelling():
    _, result = mp.parse_envelope(fixture("batch_delivery_ok"))
    rows, count = mp.parse_delivery(result)
    assert rows == {"9121234567": 1, "9351234567": 2, "9901234567": 7, "9191112233": 13, "9031112233": 42}
    assert count == 5
    states = [mp.delivery_status(k, v).status for k, v in rows.items()]
    assert states == [
        DeliveryStatus.DELIVERED,
        DeliveryStatus.UNDELIVERED,
        DeliveryStatus.BLACKLISTED,
        DeliveryStatus.PENDING,
        DeliveryStatus.UNKNOWN,
    ]


def test_parse_delivery_never_shifts_codes_onto_other_numbers(caplog):
    """Parallel lists of different lengths cannot be paired (a code would land on the wrong number): nothing
    is read from them. A row without a number or a code is left out. Each answer is said once."""
    result = {"resultCode": 0, "numbers": ["09121234567", "09351234567"], "deliveryStatus": [2]}
    assert mp.parse_delivery(result) == ({}, 2)
    result = {
        "resultCode": 0,
        "numbers": [None, "09351234567", "09121234567"],
        "deliveryStatus": [1, None, 2],
    }
    assert mp.parse_delivery(result) == ({"9121234567": 2}, 3)
    warned = [r.getMessage() for r in caplog.records if r.name == "workers.providers.evidence"]
    assert len(warned) == 2 and "not parallel" in warned[0] and "2 of 3 rows" in warned[1]


def test_parse_sent_box():
    """Rows shaped as the official SDK's MessageInfo: the id is the row's messageId (a GetDelivery recId)."""
    _, result = mp.parse_envelope(fixture("messages_sent"))
    b = SendBatch(
        (
            Message(1, "+989121234567", TEXT, "a"),
            Message(2, "+989351234567", "کد شما 4411", "b"),
            Message(3, "+989351234567", TEXT, "c"),  # same number, other text: not there
        ),
        "50004001",
    )
    early = mp.parse_sent_box(result, b, grace_over=False)
    assert [(r.outcome, r.message_id) for r in early] == [
        (SendOutcome.ACCEPTED, "991001"),
        (SendOutcome.ACCEPTED, "991002"),
        (SendOutcome.UNKNOWN, None),
    ]
    late = mp.parse_sent_box(result, b, grace_over=True)
    assert late[2].outcome is SendOutcome.NOT_SENT


def test_sent_box_text_is_compared_as_a_panel_may_store_it():
    row = {"messageId": 5, "receiver": "9121234567", "content": "كد  تخفيف\r\nلغو11"}  # Arabic kaf and yeh
    b = SendBatch((Message(1, "+989121234567", "کد تخفیف\nلغو11", "a"),), "s")
    assert mp.parse_sent_box({"messages": [row]}, b, grace_over=True)[0].outcome is SendOutcome.ACCEPTED


def test_one_sent_row_proves_one_message():
    row = {"messageId": 5, "receiver": "09121234567", "content": "x"}
    b = SendBatch((Message(1, "+989121234567", "x", "a"), Message(2, "+989121234567", "x", "b")), "s")
    results = mp.parse_sent_box({"messages": [row]}, b, grace_over=True)
    assert [r.outcome for r in results] == [SendOutcome.ACCEPTED, SendOutcome.NOT_SENT]


@pytest.mark.parametrize(
    "rows, unknown",
    [
        ([{"messageId": 7, "receptor": "09121234567", "content": "x"}], {1, 2}),  # renamed: could be anyone's
        ([{"messageId": 7, "receiver": "", "content": "x"}], {1, 2}),
        ([{"messageId": 7, "receiver": "09121234567,09351234567", "content": "x"}], {1, 2}),  # a whole batch
        ([{"messageId": 7, "receiver": "09121234567", "text": "x"}], {1}),  # no content: only that number's
    ],
)
def test_a_sent_box_row_we_cannot_read_never_means_not_sent(caplog, rows, unknown):
    b = SendBatch((Message(1, "+989121234567", "x", "a"), Message(2, "+989351234567", "x", "b")), "s")
    results = mp.parse_sent_box({"messages": rows * 3}, b, grace_over=True)
    assert {r.recipient_id for r in results if r.outcome is SendOutcome.UNKNOWN} == unknown
    assert all(r.outcome is SendOutcome.NOT_SENT for r in results if r.recipient_id not in unknown)
    said = [r for r in caplog.records if r.name == "workers.providers.evidence"]
    assert len(said) == 1 and "3 of 3 rows could not be read" in said[0].getMessage()


def test_a_reply_without_the_sent_box_list_proves_nothing():
    b = SendBatch((Message(1, "+989121234567", "x", "a"),), "s")
    (result,) = mp.parse_sent_box({"resultCode": 0, "items": []}, b, grace_over=True)
    assert result.outcome is SendOutcome.UNKNOWN
    (result,) = mp.parse_sent_box({"resultCode": 0, "messages": None}, b, grace_over=True)
    assert result.outcome is SendOutcome.NOT_SENT  # a null list: an empty sent box


def test_parse_inbox():
    _, result = mp.parse_envelope(fixture("inbox"))
    first, second = mp.parse_inbox(result["messages"])
    assert (first.provider, first.message_id, first.phone, first.text, first.received_at) == (
        "mediapayamak",
        "5501",
        "+989121234567",
        "لغو",
        "2025-03-01T11:00:00",
    )
    assert (second.phone, second.sender) == (None, "1000777")  # not a mobile: no phone, sender as given


def test_inbox_body_and_cursor_filter():
    assert mp.build_inbox_body("50004001", 1001) == {
        "messageType": 1,
        "fromNumbers": "50004001",
        "index": 1001,
        "count": 1000,
    }
    _, result = mp.parse_envelope(fixture("inbox"))
    messages = mp.parse_inbox(result["messages"])
    assert [m.message_id for m in mp.newer_than(messages, 5501)] == ["5502"]
    odd = mp.parse_inbox([{"messageId": None, "sender": "09121234567", "content": "stop"}])
    assert mp.newer_than(odd, 10**9) == odd  # no id to place it by: kept


def test_credit_fixture():
    assert mp.parse_envelope(fixture("credit_ok"))[1]["credit"] == 1520.5


def test_date_range_body_is_tehran_time_in_the_configured_format():
    start = datetime(2025, 3, 1, 6, 45, 0, tzinfo=UTC)
    body = mp.build_date_range_body("50004001", start, start + timedelta(minutes=5), mp.DEFAULT_DATE_FORMAT)
    assert body == {
        "messageType": 2,
        "fromNumbers": "50004001",
        "fromDate": "2025-03-01T10:15:00",
        "toDate": "2025-03-01T10:20:00",
    }
    assert mp.build_date_range_body("s", start, start, "%Y/%m/%d %H:%M")["fromDate"] == "2025/03/01 10:15"


def test_numbers_and_ids():
    assert mp.provider_number("+989121234567") == "09121234567"
    assert mp.number_key("989121234567") == mp.number_key("09121234567") == "9121234567"
    assert mp.split_id("73425516:09121234567") == ("73425516", "09121234567")
    assert mp.split_id("73425516") is None and mp.split_id(":0912") is None
    assert mp.rec_id("10000002734") == 10000002734 and mp.rec_id(991001) == 991001
    assert mp.rec_id("0") is mp.rec_id("") is mp.rec_id(None) is mp.rec_id("x") is mp.rec_id(True) is None


# ---- the twin's strictness, and how the client reads it -----------------------------------------------


def test_twin_wrong_auth(sandbox):
    body = {"fromNumber": "50004001", "toNumbers": "09121234567", "messageContent": "x"}
    assert raw_post(sandbox, "SendBatchSms", body, key="bad") == 25
    assert raw_post(sandbox, "SendBatchSms", body, key=None) == 25
    assert (
        raw_post(sandbox, "SendBatchSms", {**body, "userName": "sandbox", "password": "bad"}, key=None) == 1
    )
    assert raw_post(sandbox, "GetCredit", {}, key="bad") == -7
    assert raw_post(sandbox, "GetCredit", {"userName": "sandbox", "password": "bad"}, key=None) == -1
    assert sandbox.state.accepted("mediapayamak") == []


def test_twin_send_validation(sandbox):
    body = {"fromNumber": "50004001", "toNumbers": "09121234567", "messageContent": "x"}
    for missing in body:
        assert raw_post(sandbox, "SendBatchSms", {k: v for k, v in body.items() if k != missing}) == 21
    assert raw_post(sandbox, "SendBatchSms", {**body, "messageContent": "  "}) == 17
    assert raw_post(sandbox, "SendBatchSms", {**body, "toNumbers": ""}) == 16
    assert raw_post(sandbox, "SendBatchSms", {**body, "toNumbers": "02188776655"}) == 16
    assert raw_post(sandbox, "SendBatchSms", {**body, "fromNumber": "3000"}) == 3
    many = ",".join(f"0912{i:07d}" for i in range(101))
    assert raw_post(sandbox, "SendBatchSms", {**body, "toNumbers": many}) == 5
    assert sandbox.state.accepted("mediapayamak") == []
    assert raw_post(sandbox, "GetBatchDelivery", {"batchSmsId": 1}) == -2


# The official PHP SDK's MessageInfo (NiazpardazSms/niazpardaz-sms-php, src/Models/MessageInfo.php), in order.
MESSAGE_INFO = [
    "messageId", "userId", "tariff", "content", "actionDateTime", "messageType", "sender", "receiver", "flash",
    "pages", "lang", "status", "sendStatus", "sendMethod", "cost", "title", "count", "sent", "desc", "notSent",
    "moneyIsRefunded", "isRead",
]  # fmt: skip


def test_twin_sent_box_rows_are_the_sdks_message_info_and_get_delivery_takes_their_id(
    sandbox, sandbox_environ
):
    c = client(sandbox_environ)
    c.send(batch(c, PHONES[:1]))
    now = datetime.now(mp.TEHRAN)
    body = mp.build_date_range_body("50004001", now - timedelta(minutes=1), now, mp.DEFAULT_DATE_FORMAT)
    reply = requests.post(
        f"{sandbox.url}/mediapayamak/GetMessagesByDateRange",
        json=body,
        headers={"X-API-Key": "sandbox-mediapayamak-key"},
        timeout=5,
    ).json()
    (row,) = reply["result"]["messages"]
    assert list(row) == MESSAGE_INFO  # no batchSmsId
    delivery = requests.post(
        f"{sandbox.url}/mediapayamak/GetDelivery",
        json={"recId": row["messageId"]},
        headers={"X-API-Key": "sandbox-mediapayamak-key"},
        timeout=5,
    ).json()
    assert delivery["result"] == {
        "resultCode": 0,
        "deliveryStatus": DELIVERY_CODE[sandbox.state.outcome(PHONES[0])],
    }


def test_twin_renames_fields_when_told_over_its_admin_api(sandbox, sandbox_environ):
    rename = {
        "provider": "mediapayamak",
        "path": "GetMessagesByDateRange",
        "fields": {"receiver": ""},
        "times": 1,
    }
    assert requests.post(f"{sandbox.url}/_sandbox/renames", json=rename, timeout=5).json() == {"ok": True}
    c = client(sandbox_environ, RECONCILE_GRACE="0")
    sent = batch(c, PHONES[:1])
    c.send(sent)
    since = datetime.now(UTC) - timedelta(seconds=5)
    assert c.reconcile(sent, since)[0].outcome is SendOutcome.UNKNOWN  # no receiver: cannot tell
    assert c.reconcile(sent, since)[0].outcome is SendOutcome.ACCEPTED  # once only


def test_client_reads_wrong_user_password_as_account_error(sandbox, sandbox_environ):
    env = {k: v for k, v in sandbox_environ.items() if k != P + "APIKEY"}
    c = client(env, USERNAME="sandbox", PASSWORD="wrong-pass-456")
    with pytest.raises(AccountError) as info:
        c.send(batch(c, PHONES[:1]))
    assert info.value.code == "1"
    assert "wrong-pass-456" not in f"{info.value} {info.value.snippet!r}"
    with pytest.raises(AccountError):
        c.balance()


def test_client_works_with_username_and_password(sandbox, sandbox_environ):
    env = {k: v for k, v in sandbox_environ.items() if k != P + "APIKEY"}
    c = client(env, USERNAME="sandbox", PASSWORD="sandbox-pass")
    results = c.send(batch(c, PHONES[:2]))
    assert all(r.outcome is SendOutcome.ACCEPTED for r in results)
    assert c.balance().amount > 0


def test_client_classifies_twin_refusals(sandbox, sandbox_environ):
    c = client(sandbox_environ)
    with pytest.raises(RequestError) as info:  # empty text -> 17
        c.send(batch(c, PHONES[:2], text=" "))
    assert info.value.code == "17"
    (refused,) = c.send(batch(c, ["+98218877665"]))  # a landline -> 16 on one number
    assert refused.outcome is SendOutcome.REFUSED and refused.raw_code == "16"
    with pytest.raises(RecipientRefusedError):
        c.send(batch(c, [PHONES[0], "+98218877665"]))
    with pytest.raises(AccountError) as info:  # a sender the account does not own -> 3
        c.send(SendBatch(batch(c, PHONES[:1]).messages, sender="3000"))
    assert info.value.code == "3"
    sandbox.state.credit["mediapayamak"] = 1
    with pytest.raises(AccountError) as info:  # 2 numbers, credit for 1 -> 8
        c.send(batch(c, PHONES[:2]))
    assert info.value.code == "8"
    with pytest.raises(RequestError):  # unknown batchSmsId -> -2
        c.status(["1:09121234567"])
    assert sandbox.state.accepted("mediapayamak") == []


# ---- send, status, reconcile, inbox over the twin -------------------------------------------------------


def test_numbers_go_out_in_national_form_and_ids_name_them(sandbox, sandbox_environ):
    c = client(sandbox_environ)
    results = c.send(batch(c, PHONES[:2]))
    (batch_id,) = {m.batch_id for m in sandbox.state.accepted("mediapayamak")}
    assert [r.message_id for r in results] == [f"{batch_id}:09121234567", f"{batch_id}:09351234567"]


def test_personalised_batch_is_one_call_per_text(sandbox, sandbox_environ):
    c = client(sandbox_environ)
    results = c.send(mixed_batch(c, ["a", "b", "a"]))
    assert [r.outcome for r in results] == [SendOutcome.ACCEPTED] * 3
    assert results[0].message_id.split(":")[0] == results[2].message_id.split(":")[0]
    assert results[0].message_id.split(":")[0] != results[1].message_id.split(":")[0]
    assert sandbox.state.calls[("mediapayamak", "send")] == 2
    statuses = c.status([r.message_id for r in results])
    assert all(s.raw_code is not None for s in statuses)


def fail_after_first_call(monkeypatch, c: MediaPayamakClient, sandbox: Any, fault: Fault) -> None:
    """Let the first SendBatchSms through, then script `fault` for the next one (real HTTP)."""
    original = c.call

    def call(*args: Any, **kwargs: Any):
        reply = original(*args, **kwargs)
        sandbox.state.add_fault(fault)
        return reply

    monkeypatch.setattr(c, "call", call)


def test_partial_failure_keeps_the_ids_already_obtained(monkeypatch, sandbox, sandbox_environ):
    c = client(sandbox_environ)
    fail_after_first_call(
        monkeypatch, c, sandbox, Fault("mediapayamak", "send", "accept_then_http", status=500)
    )
    results = c.send(mixed_batch(c, ["a", "b", "c", "a"]))
    assert [r.outcome for r in results] == [
        SendOutcome.ACCEPTED,
        SendOutcome.UNKNOWN,  # went out or not: reconcile
        SendOutcome.NOT_SENT,  # never attempted
        SendOutcome.ACCEPTED,
    ]
    assert results[0].message_id and results[3].message_id and results[1].error


def test_partial_failure_with_a_definite_error_is_not_sent(monkeypatch, sandbox, sandbox_environ):
    c = client(sandbox_environ)
    fail_after_first_call(monkeypatch, c, sandbox, Fault("mediapayamak", "send", "code", code=9))
    results = c.send(mixed_batch(c, ["a", "b", "c"]))
    assert [r.outcome for r in results] == [SendOutcome.ACCEPTED, SendOutcome.NOT_SENT, SendOutcome.NOT_SENT]
    assert results[1].raw_code == "9"
    assert len(sandbox.state.accepted("mediapayamak")) == 1


def test_a_failing_first_call_raises(sandbox, sandbox_environ):
    c = client(sandbox_environ)
    sandbox.state.add_fault(Fault("mediapayamak", "send", "code", code=9))
    with pytest.raises(TransientError):
        c.send(mixed_batch(c, ["a", "b"]))
    assert sandbox.state.accepted("mediapayamak") == []


def test_empty_batch_is_refused_before_any_call(sandbox, sandbox_environ):
    with pytest.raises(RequestError):
        client(sandbox_environ).send(SendBatch((), "50004001"))
    assert sandbox.state.calls[("mediapayamak", "send")] == 0


def test_status_over_several_batches_and_bad_ids(sandbox, sandbox_environ):
    c = client(sandbox_environ)
    first = c.send(batch(c, PHONES[:2]))
    second = c.send(batch(c, PHONES[2:4]))
    ids = [second[1].message_id, "garbage", first[0].message_id, second[0].message_id]
    results = c.status(ids)
    assert [r.message_id for r in results] == ids
    assert results[1].status is DeliveryStatus.UNKNOWN and results[1].raw_code is None
    assert all(r.raw_code is not None for i, r in enumerate(results) if i != 1)
    assert sandbox.state.calls[("mediapayamak", "status")] == 2  # one GetBatchDelivery per batch


def test_one_batch_error_does_not_hide_the_other_batches(sandbox, sandbox_environ):
    c = client(sandbox_environ)
    first = [r.message_id for r in c.send(batch(c, PHONES[:2]))]
    second = [r.message_id for r in c.send(batch(c, PHONES[2:4]))]
    sandbox.state.add_fault(
        Fault("mediapayamak", "status", "code", code=-5)
    )  # the first batch asked: too early
    results = c.status(first + second)
    assert [(r.status, r.raw_code) for r in results[:2]] == [(DeliveryStatus.UNKNOWN, "-5")] * 2
    assert all(r.status is not DeliveryStatus.UNKNOWN and r.raw_code != "-5" for r in results[2:])
    sandbox.state.add_fault(Fault("mediapayamak", "status", "code", code=-5, times=2))
    with pytest.raises(TransientError):  # every batch failed: the caller learns why, and when to come back
        c.status(first + second)
    sandbox.state.add_fault(Fault("mediapayamak", "status", "code", code=-7))
    with pytest.raises(AccountError):
        c.status(first + second)


def test_paging_index_option(sandbox_environ):
    assert client(sandbox_environ)._index(1, 100) == 101  # seed 002: the row index, from 1
    assert client(sandbox_environ, INDEX="page")._index(1, 100) == 2
    with pytest.raises(ConfigurationError):
        client(sandbox_environ, INDEX="offset")


def test_reconcile_after_the_grace_period(sandbox, sandbox_environ):
    c = client(sandbox_environ, RECONCILE_GRACE="0")
    since = datetime.now(UTC) - timedelta(seconds=1)
    sent = batch(c, PHONES[:3])
    accepted = c.send(SendBatch(sent.messages[:2], sent.sender))
    results = c.reconcile(sent, since)
    assert [r.outcome for r in results] == [SendOutcome.ACCEPTED, SendOutcome.ACCEPTED, SendOutcome.NOT_SENT]
    # The sent box gives each its own messageId (no batchSmsId in MessageInfo), which GetDelivery accepts.
    ids = [r.message_id for r in results[:2]]
    in_the_box = [m.message_id for m in sandbox.state.accepted("mediapayamak")]
    assert ids == in_the_box and ids != [r.message_id for r in accepted]
    polled = c.status(ids)
    assert [p.status for p in polled] == [
        DELIVERY_EXPECTED[DELIVERY_CODE[sandbox.state.outcome(p)]] for p in PHONES[:2]
    ]


def found_in_the_sent_box(c: MediaPayamakClient, phones: list[str]) -> list[str]:
    """Send, then find the messages in the sent box: their ids are messageIds (recIds)."""
    since = datetime.now(UTC) - timedelta(seconds=1)
    sent = batch(c, phones)
    c.send(sent)
    return [r.message_id for r in c.reconcile(sent, since)]


def test_ids_from_the_sent_box_are_polled_with_get_delivery(sandbox, sandbox_environ):
    c = client(sandbox_environ, RECONCILE_GRACE="0")
    rec_ids = found_in_the_sent_box(c, PHONES[:2])
    ours = [r.message_id for r in c.send(batch(c, PHONES[2:4]))]
    before = sandbox.state.calls[("mediapayamak", "status")]
    results = c.status([rec_ids[0], ours[0], rec_ids[1], ours[1]])
    asked = sandbox.state.calls[("mediapayamak", "status")] - before
    assert asked == 3  # GetDelivery twice, GetBatchDelivery once
    phones = [PHONES[0], PHONES[2], PHONES[1], PHONES[3]]
    assert [r.raw_code for r in results] == [str(DELIVERY_CODE[sandbox.state.outcome(p)]) for p in phones]
    assert all(r.status is not DeliveryStatus.UNKNOWN for r in results)


def test_get_delivery_codes(sandbox, sandbox_environ):
    c = client(sandbox_environ, RECONCILE_GRACE="0")
    rec_ids = found_in_the_sent_box(c, PHONES[:2])
    sandbox.state.add_fault(Fault("mediapayamak", "status", "code", code=-5))  # the first asked: too early
    results = c.status(rec_ids)
    assert (results[0].status, results[0].raw_code) == (DeliveryStatus.UNKNOWN, "-5")
    assert results[1].status is not DeliveryStatus.UNKNOWN
    sandbox.state.add_fault(Fault("mediapayamak", "status", "code", code=-3, times=2))
    assert [(r.status, r.raw_code) for r in c.status(rec_ids)] == [(DeliveryStatus.EXPIRED, "-3")] * 2
    sandbox.state.add_fault(Fault("mediapayamak", "status", "code", code=-7))
    with pytest.raises(AccountError):
        c.status(rec_ids)
    assert raw_post(sandbox, "GetDelivery", {"recId": 42}) == -2  # no such message


def test_get_delivery_result_key_is_a_setting(caplog, sandbox, sandbox_environ):
    """Seed 002 gives GetDelivery a bare int; the REST result's key is DELIVERY_FIELD. A result without it
    answers nothing (the poller asks again), said once."""
    c = client(sandbox_environ, RECONCILE_GRACE="0", DELIVERY_FIELD="status")
    rec_ids = found_in_the_sent_box(c, PHONES[:2])
    assert [r.status for r in c.status(rec_ids)] == [DeliveryStatus.UNKNOWN] * 2
    said = [r.getMessage() for r in caplog.records if r.name == "workers.providers.evidence"]
    assert len(said) == 1 and "GetDelivery" in said[0] and "no status" in said[0]


def test_reconcile_date_format_is_a_setting(sandbox, sandbox_environ):
    c = client(sandbox_environ, DATE_FORMAT="%Y/%m/%d %H:%M:%S")
    with pytest.raises(RequestError):  # the twin reads ISO-8601 only, and answers 21 (its assumption)
        c.reconcile(batch(c, PHONES[:1]), datetime.now(UTC))


def test_inbox_reads_above_the_cursor(sandbox, sandbox_environ):
    sandbox.state.add_inbound("mediapayamak", "09121234567", "لغو11", line="50004001")
    sandbox.state.add_inbound("mediapayamak", "09351234567", "elsewhere", line="3000")
    c = client(sandbox_environ)
    (msg,), cursor = c.inbox(None)
    assert (msg.phone, msg.text, msg.provider) == (
        "+989121234567",
        "لغو11",
        "mediapayamak",
    ) and msg.received_at
    assert cursor == msg.message_id
    assert c.inbox(cursor) == ([], cursor)  # nothing new: same cursor
    sandbox.state.add_inbound("mediapayamak", "09121112222", "stop", line="50004001")
    (new,), cursor2 = c.inbox(cursor)
    assert new.phone == "+989121112222" and int(cursor2) > int(cursor)


def test_inbox_reads_every_page_by_row_index(sandbox, sandbox_environ):
    for i in range(1001):
        sandbox.state.add_inbound("mediapayamak", f"0912{i:07d}", "لغو", line="50004001")
    messages, cursor = client(sandbox_environ).inbox(None)
    assert len({m.phone for m in messages}) == 1001
    assert cursor == messages[-1].message_id


def test_inbox_errors_and_settings(sandbox, sandbox_environ):
    sandbox.state.add_fault(Fault("mediapayamak", op="inbox", kind="code", code=-6))
    with pytest.raises(TransientError):
        client(sandbox_environ).inbox(None)
    with pytest.raises(ConfigurationError):
        client(sandbox_environ, INBOX_ORDER="oldest")
    no_line = {k: v for k, v in sandbox_environ.items() if k != P + "SENDER"}
    with pytest.raises(ConfigurationError):
        client(no_line).inbox(None)


def test_credentials_either_key_or_user_and_password(sandbox_environ):
    bare = {k: v for k, v in sandbox_environ.items() if k != P + "APIKEY"}
    with pytest.raises(ConfigurationError) as info:
        client(bare)
    assert all(name in str(info.value) for name in (P + "APIKEY", P + "USERNAME", P + "PASSWORD"))
    with pytest.raises(ConfigurationError):
        client(bare, USERNAME="sandbox")
    assert client(bare, USERNAME="u", PASSWORD="p")
    assert client(sandbox_environ)
