"""Amoot client and twin (shared/providers.md Decisions + §4; seeds 000, 001).

Fixture sources (tests/providers/fixtures/amoot/): send_simple_*, send_peer_to_peer_*, get_deliveries_*,
account_status_* are the success/failure samples of Amoot's own docs (doc.amootsms.com, as quoted in
providers.md §4); in send_peer_to_peer_success the sample's `"Number": 09120000000` (not valid JSON) is kept
as a string. get_messages_success has the fields of seed 000 with values of our own. status_codes is the
Status table of seeds 000/001 (identical in both).
"""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import requests

from dispatcher.sandbox.amoot import render_code
from dispatcher.sandbox.core import Fault
from tests.providers.contract import PHONES, ProviderContract
from workers.errors import (
    AccountError,
    AmbiguousSendError,
    ConfigurationError,
    ProviderError,
    RecipientRefusedError,
    RequestError,
    TransientError,
)
from workers.providers.amoot import (
    DELIVERY,
    STATUS,
    AmootClient,
    build_p2p_body,
    build_simple_form,
    error_class,
    local_time,
    mobile_key,
    parse_deliveries,
    parse_p2p_reply,
    parse_sent_box,
    parse_simple_reply,
    to_local,
)
from workers.providers.base import Reply
from workers.status import DeliveryStatus, Message, SendBatch, SendOutcome

FIXTURES = Path(__file__).parent / "fixtures" / "amoot"
TOKEN = "sandbox-amoot-token"


def fixture(name: str) -> Any:
    return json.loads((FIXTURES / f"{name}.json").read_text(encoding="utf-8"))


def client_for(env: dict[str, str], **overrides: str) -> AmootClient:
    env = {**env, **{f"SMSDISPATCH_AMOOT_{k.upper()}": v for k, v in overrides.items()}}
    return AmootClient(AmootClient.load_settings(env))


def offline_client(**overrides: str) -> AmootClient:
    return client_for({"SMSDISPATCH_AMOOT_TOKEN": "offline-token-xyz"}, **overrides)


def batch(phones: list[str], texts: list[str] | None = None, sender: str = "public") -> SendBatch:
    texts = texts or ["سلام لغو11"] * len(phones)
    return SendBatch(
        tuple(Message(i + 1, p, t, f"r{i + 1}") for i, (p, t) in enumerate(zip(phones, texts, strict=True))),
        sender,
    )


def post(
    sandbox, method: str, data: dict[str, Any] | None = None, token: str = TOKEN, **kw: Any
) -> dict[str, Any]:
    r = requests.post(
        f"{sandbox.url}/amoot/rest/{method}", data=data, headers={"Authorization": token}, timeout=5, **kw
    )
    assert r.status_code == 200, "Amoot answers HTTP 200 even for errors"
    return r.json()


class TestContract(ProviderContract):
    provider = "amoot"
    transient_code = "Failed"
    account_code = "CreditNotEnough"


# ---- code tables ------------------------------------------------------------------------------
def expected_class(code: int, *, sending: bool) -> type[ProviderError] | None:
    """providers.md §4, by numeric code, written independently of the module's table."""
    if code == 1:
        return None
    if code in (0, 7, -300):
        return TransientError
    if code == 500:
        return AmbiguousSendError if sending else TransientError
    if code in (101, 102):
        return RecipientRefusedError
    if code in (2, 4, 5, 6, 100, -1) or -208 <= code <= -201 or -109 <= code <= -102:
        return AccountError
    if 10 <= code <= 20 or 103 <= code <= 121:
        return RequestError
    raise AssertionError(f"providers.md gives no class for {code}")


def test_status_table_is_the_seed_table():
    assert {title: code for title, (code, _) in STATUS.items()} == {t: c for c, t in fixture("status_codes")}


@pytest.mark.parametrize("code,title", fixture("status_codes"))
@pytest.mark.parametrize("sending", [True, False])
def test_every_status_title_has_its_class(code: int, title: str, sending: bool):
    assert error_class(title, sending=sending) is expected_class(code, sending=sending)


def test_unknown_title_is_ambiguous_on_send_and_transient_otherwise(caplog):
    assert error_class("Brand_New_Title", sending=True) is AmbiguousSendError
    assert error_class("Brand_New_Title", sending=False) is TransientError
    assert "Brand_New_Title" in caplog.text


# providers.md §4 DeliveryType table.
DELIVERY_TABLE = {
    0: "sent_to_operator", 1: "delivered", 2: "undelivered", 3: "failed", 5: "failed", 8: "sent_to_operator",
    16: "failed", 35: "blacklisted", 100: "unknown", 200: "sent_to_operator", 300: "failed", 400: "pending",
    500: "failed", 501: "sent_to_operator", 502: "sent_to_operator", 900: "pending", 950: "failed",
    951: "failed", 952: "failed",
}  # fmt: skip


@pytest.mark.parametrize("code,state", DELIVERY_TABLE.items())
def test_every_delivery_type_maps(code: int, state: str):
    body = {"Status": "Success", "Data": [{"MessageID": 5, "DeliveryType": code, "Status": "Success"}]}
    (result,) = parse_deliveries(body, ["5"])
    assert result.status is DeliveryStatus(state) and result.raw_code == str(code)


def test_delivery_table_is_complete():
    assert {k: str(v) for k, v in DELIVERY.items()} == DELIVERY_TABLE


@pytest.mark.parametrize("raw", [777, -4, "x"])
def test_unknown_delivery_type_stays_unknown_with_its_code(raw: Any):
    body = {"Status": "Success", "Data": [{"MessageID": 9, "DeliveryType": raw, "Status": "Success"}]}
    (result,) = parse_deliveries(body, ["9"])
    assert result.status is DeliveryStatus.UNKNOWN and result.raw_code == str(raw)


def test_rows_without_delivery_type_or_id_answer_nothing_and_are_said_once(caplog):
    rows = [{"MessageID": i, "DeliveryType": None, "Status": "Success"} for i in (9, 10)]
    rows += [{"ID": 11, "DeliveryType": 1, "Status": "Success"}, {"MessageID": 12, "DeliveryType": 1}]
    results = parse_deliveries({"Status": "Success", "Data": rows}, ["9", "10", "11", "12"])
    assert [(r.status, r.raw_code) for r in results] == [(DeliveryStatus.UNKNOWN, None)] * 3 + [
        (DeliveryStatus.DELIVERED, "1")
    ]
    said = [r.getMessage() for r in caplog.records if r.levelname == "WARNING"]
    assert said == [
        "amoot GetDeliveries: 3 of 4 rows could not be read (no DeliveryType: 2, no MessageID: 1; keys in "
        "them: DeliveryType, ID, MessageID, Status); their recipients are not taken as answered and are "
        "asked again (said once; repeats at debug level)"
    ]


# ---- pure build / parse over the fixtures -------------------------------------------------------
def test_numbers_go_out_in_the_national_form():
    assert to_local("+989121234567") == "09121234567"
    form = build_simple_form(batch(["+989121234567", "+989351234567"]), "public", "2025-01-01 03:30:00")
    assert form == {
        "SendDateTime": "2025-01-01 03:30:00",
        "SMSMessageText": "سلام لغو11",
        "LineNumber": "public",
        "Mobiles": "09121234567,09351234567",
    }
    body = build_p2p_body(batch(["+989121234567"], ["a"]), "3000", "2025-01-01 03:30:00")
    assert body["Input"] == [{"Number": "09121234567", "MessageText": "a"}] and body["LineNumber"] == "3000"


def test_send_date_time_is_tehran_wall_time():
    from zoneinfo import ZoneInfo

    assert local_time(datetime(2025, 1, 1, tzinfo=UTC), ZoneInfo("Asia/Tehran")) == "2025-01-01 03:30:00"


def test_mobile_key_matches_every_spelling():
    assert {mobile_key(x) for x in (9120000000, "09120000000", "+989120000000", "989120000000")} == {
        "9120000000"
    }


def test_parse_send_simple_matches_rows_by_mobile_not_position():
    b = batch(["+989150000000", "+989120000000"])  # reverse of the reply's order
    results = parse_simple_reply(fixture("send_simple_success"), b)
    assert [(r.recipient_id, r.outcome, r.message_id) for r in results] == [
        (1, SendOutcome.ACCEPTED, "1234567"),
        (2, SendOutcome.ACCEPTED, "1234568"),
    ]


def test_parse_send_simple_per_row_outcomes(caplog):
    phones = [f"+98912000000{i}" for i in range(6)]
    rows = [
        {"Mobile": 9120000000, "MessageID": 11, "Status": "Success"},
        {"Mobile": 9120000001, "MessageID": 0, "Status": "Mobile_Invalid"},
        {"Mobile": 9120000002, "MessageID": 0, "Status": "Mobile_BlackList"},
        {"Mobile": 9120000004, "MessageID": 0, "Status": "Success"},
        {"Mobile": 9120000005, "MessageID": 15, "Status": "Brand_New_Row_Title"},
    ]  # 9120000003 is missing
    results = parse_simple_reply({"Status": "Success", "Data": rows}, batch(phones))
    got = [(r.outcome, r.status, r.message_id, r.raw_code) for r in results]
    assert got == [
        (SendOutcome.ACCEPTED, DeliveryStatus.UNKNOWN, "11", "Success"),
        (SendOutcome.REFUSED, DeliveryStatus.FAILED, None, "Mobile_Invalid"),
        (SendOutcome.REFUSED, DeliveryStatus.BLACKLISTED, None, "Mobile_BlackList"),
        (SendOutcome.UNKNOWN, DeliveryStatus.UNKNOWN, None, None),
        (SendOutcome.UNKNOWN, DeliveryStatus.UNKNOWN, None, "Success"),
        (SendOutcome.UNKNOWN, DeliveryStatus.UNKNOWN, None, "Brand_New_Row_Title"),
    ]
    assert results[1].error == "Mobile_Invalid" and "Brand_New_Row_Title" in caplog.text


def test_parse_peer_to_peer_takes_number_ids_as_message_ids():
    b = batch(["+989150000000", "+989120000000"], ["x", "پیام نمونه تستی شماره 1"])
    first, second = parse_p2p_reply(fixture("send_peer_to_peer_success"), b)
    assert first.outcome is SendOutcome.UNKNOWN  # not in the reply
    assert second.outcome is SendOutcome.ACCEPTED and second.message_id == "12345678"


def test_parse_deliveries_fixture_and_missing_ids():
    delivered, missing = parse_deliveries(fixture("get_deliveries_success"), ["123456789", "42"])
    assert delivered.status is DeliveryStatus.DELIVERED and delivered.raw_code == "1"
    assert missing.status is DeliveryStatus.UNKNOWN and missing.message_id == "42"


def test_row_status_is_about_the_query_not_the_delivery():
    rows = [{"MessageID": 7, "DeliveryType": None, "Status": "MessageID_Invalid"}]
    (result,) = parse_deliveries({"Status": "Success", "Data": rows}, ["7"])
    assert result.status is DeliveryStatus.UNKNOWN and result.raw_code == "MessageID_Invalid"


@pytest.mark.parametrize("settled,absent", [(True, SendOutcome.NOT_SENT), (False, SendOutcome.UNKNOWN)])
def test_parse_sent_box_matches_mobile_and_text(settled: bool, absent: SendOutcome):
    b = batch(
        ["+989150000000", "+989120000000", "+989120000000"], ["نمونه پیام تستی", "نمونه پیام تستی", "other"]
    )
    found_15, found_12, other = parse_sent_box(fixture("get_messages_success"), b, settled)
    assert (found_15.outcome, found_15.message_id) == (SendOutcome.ACCEPTED, "1234567")
    assert (found_12.outcome, found_12.message_id) == (SendOutcome.ACCEPTED, "1234568")
    assert other.outcome is absent and other.message_id is None


@pytest.mark.parametrize(
    "name,sending,cls",
    [
        ("send_simple_failure", True, RequestError),
        ("send_peer_to_peer_failure", True, AccountError),
        ("get_deliveries_failed", False, TransientError),
        ("account_status_error", False, AccountError),
    ],
)
def test_failure_fixtures_raise_their_class(name: str, sending: bool, cls: type[ProviderError]):
    body = fixture(name)
    with pytest.raises(cls) as info:
        offline_client()._envelope(Reply(200, body, json.dumps(body), {}), sending=sending)
    assert info.value.code == body["Status"]


def test_balance_fixture(monkeypatch):
    client = offline_client()
    body = fixture("account_status_success")
    monkeypatch.setattr(client, "_post", lambda *a, **kw: Reply(200, body, json.dumps(body), {}))
    balance = client.balance()
    assert (balance.amount, balance.unit) == (25000.0, "rial")


def test_numeric_status_is_read_as_its_title():
    with pytest.raises(AccountError) as info:
        offline_client()._envelope(Reply(200, {"Status": 4}, '{"Status": 4}', {}), sending=True)
    assert info.value.code == "CreditNotEnough"


@pytest.mark.parametrize(
    "key,value", [("status_batch", "0"), ("status_batch", "x"), ("timezone", "Mars/Base")]
)
def test_bad_options_are_configuration_errors(key: str, value: str):
    with pytest.raises(ConfigurationError):
        offline_client(**{key: value})


# ---- the twin over HTTP, and how the client reads it ----------------------------------------------
def test_twin_refuses_a_wrong_or_bearer_token_with_http_200(sandbox):
    form = {"SMSMessageText": "x", "LineNumber": "public", "Mobiles": "09121234567"}
    assert post(sandbox, "SendSimple", form, token="nope")["Status"] == "Token_NotExists"
    assert post(sandbox, "SendSimple", form, token=f"Bearer {TOKEN}")["Status"] == "Token_NotExists"
    assert (
        post(sandbox, "SendSimple", form | {"Token": TOKEN}, token="")["Status"] == "Success"
    )  # legacy field


@pytest.mark.parametrize(
    "missing,title",
    [
        ("SMSMessageText", "SMSMessageText_Empty"),
        ("Mobiles", "Mobiles_Empty"),
        ("LineNumber", "LineNumber_Empty"),
    ],
)
def test_twin_names_the_missing_field(sandbox, missing: str, title: str):
    form = {
        "SendDateTime": "2025-01-01 10:00:00",
        "SMSMessageText": "x",
        "LineNumber": "public",
        "Mobiles": "09121234567",
    }
    del form[missing]
    assert post(sandbox, "SendSimple", form)["Status"] == title
    assert sandbox.state.accepted("amoot") == []
    assert error_class(title, sending=True) is RequestError


def test_client_with_empty_text_gets_a_request_error(sandbox, sandbox_environ):
    with pytest.raises(RequestError) as info:
        client_for(sandbox_environ).send(batch(PHONES[:2], ["", ""]))
    assert info.value.code == "SMSMessageText_Empty"


def test_twin_refuses_more_than_its_maximum(sandbox, sandbox_environ):
    mobiles = ",".join(f"0912{i:07d}" for i in range(101))
    reply = post(sandbox, "SendSimple", {"SMSMessageText": "x", "LineNumber": "public", "Mobiles": mobiles})
    assert reply["Status"] == "Count_Invalid" and sandbox.state.accepted("amoot") == []
    sandbox.state.amoot_max_numbers = 2
    with pytest.raises(RequestError) as info:
        client_for(sandbox_environ).send(batch(PHONES[:3]))
    assert info.value.code == "Count_Invalid"


def test_twin_refuses_an_unknown_line(sandbox, sandbox_environ):
    with pytest.raises(AccountError) as info:
        client_for(sandbox_environ).send(batch(PHONES[:1], sender="not-a-line"))
    assert info.value.code == "LineNumber_NotExist"


def test_invalid_number_in_a_list_is_refused_alone(sandbox, sandbox_environ):
    results = client_for(sandbox_environ).send(batch([PHONES[0], "+98912", PHONES[1]]))
    assert [r.outcome for r in results] == [SendOutcome.ACCEPTED, SendOutcome.REFUSED, SendOutcome.ACCEPTED]
    assert results[1].status is DeliveryStatus.FAILED and results[1].raw_code == "Mobile_Invalid"
    assert len(sandbox.state.accepted("amoot")) == 2


def test_call_level_mobiles_invalid_refuses_one_and_splits_many(sandbox, sandbox_environ):
    client = client_for(sandbox_environ)
    (single,) = client.send(batch(["+98912"]))
    assert (single.outcome, single.status, single.raw_code) == (
        SendOutcome.REFUSED,
        DeliveryStatus.FAILED,
        "Mobiles_Invalid",
    )
    with pytest.raises(RecipientRefusedError):
        client.send(batch(["+98912", "+98913"]))
    assert sandbox.state.accepted("amoot") == []


def test_different_texts_go_peer_to_peer(sandbox, sandbox_environ):
    client = client_for(sandbox_environ)
    texts = ["متن یک", "متن دو", "متن یک"]
    results = client.send(batch(PHONES[:3], texts))
    assert all(r.outcome is SendOutcome.ACCEPTED and r.message_id for r in results)
    by_id = {m.message_id: m for m in sandbox.state.accepted("amoot")}
    assert [by_id[r.message_id].text for r in results] == texts
    assert [by_id[r.message_id].phone for r in results] == [p.lstrip("+") for p in PHONES[:3]]
    statuses = client.status([r.message_id for r in results])
    assert [s.message_id for s in statuses] == [r.message_id for r in results]


def test_peer_to_peer_needs_every_text(sandbox):
    body = {"LineNumber": "public", "Input": [{"Number": "09121234567", "MessageText": ""}]}
    r = requests.post(
        f"{sandbox.url}/amoot/rest/SendPeerToPeer", json=body, headers={"Authorization": TOKEN}, timeout=5
    )
    assert r.status_code == 200 and r.json()["Status"] == "SMSMessageText_Empty"


def test_status_of_unknown_ids(sandbox, sandbox_environ):
    client = client_for(sandbox_environ)
    (sent,) = client.send(batch(PHONES[:1]))
    known, unknown = client.status([sent.message_id, "999"])
    assert known.status is not DeliveryStatus.UNKNOWN
    assert (unknown.status, unknown.raw_code) == (DeliveryStatus.UNKNOWN, "MessageID_Invalid")


def test_status_halves_a_list_refused_for_one_bad_id(sandbox, sandbox_environ):
    client = client_for(sandbox_environ)
    sent = client.send(batch(PHONES[:2]))
    sandbox.state.add_fault(Fault("amoot", "status", "code", code="MessageID_Invalid"))
    results = client.status([r.message_id for r in sent])
    assert all(r.status is not DeliveryStatus.UNKNOWN for r in results)
    assert sandbox.state.calls[("amoot", "status")] == 3


def test_status_batches_by_the_option(sandbox, sandbox_environ):
    client = client_for(sandbox_environ, status_batch="2")
    sent = client.send(batch(PHONES[:5]))
    assert len(client.status([r.message_id for r in sent])) == 5
    assert sandbox.state.calls[("amoot", "status")] == 3


def test_reconcile_after_the_grace_says_not_sent(sandbox, sandbox_environ):
    client = client_for(sandbox_environ, reconcile_grace="0")
    b = batch(PHONES[:2])
    (sent,) = client.send(SendBatch(b.messages[:1], b.sender))
    found, absent = client.reconcile(b, datetime.now(UTC) - timedelta(seconds=5))
    assert (found.outcome, found.message_id) == (SendOutcome.ACCEPTED, sent.message_id)
    assert absent.outcome is SendOutcome.NOT_SENT


def test_twin_sent_box_wants_valid_dates(sandbox):
    assert (
        post(sandbox, "GetMessages", {"ToDateTime": "2025-01-01 10:00:00"})["Status"]
        == "FromDateTime_Invalid"
    )
    late = {"FromDateTime": "2025-01-02 10:00:00", "ToDateTime": "2025-01-01 10:00:00"}
    assert post(sandbox, "GetMessages", late)["Status"] == "FromDateTimeIsAfterThanToDateTime"


def test_no_credit_is_an_account_error(sandbox, sandbox_environ):
    sandbox.state.credit["amoot"] = 1
    with pytest.raises(AccountError) as info:
        client_for(sandbox_environ).send(batch(PHONES[:2]))
    assert info.value.code == "CreditNotEnough" and sandbox.state.accepted("amoot") == []
    assert client_for(sandbox_environ).balance().amount == 1_000


@pytest.mark.parametrize("retry,expected", [(None, 900.0), ("30", 30.0)])
def test_system_disabled_waits_long(sandbox, sandbox_environ, retry: str | None, expected: float):
    client = client_for(sandbox_environ, **({"disabled_retry": retry} if retry else {}))
    sandbox.state.add_fault(Fault("amoot", "send", "code", code="System_Disabled"))
    with pytest.raises(TransientError) as info:
        client.send(batch(PHONES[:1]))
    assert info.value.retry_after == expected


@pytest.mark.parametrize("title", ["ServerError", "Brand_New_Title"])
def test_server_error_and_unknown_titles(sandbox, sandbox_environ, title: str):
    client = client_for(sandbox_environ)
    sandbox.state.add_fault(Fault("amoot", "send", "code", code=title))
    with pytest.raises(AmbiguousSendError):
        client.send(batch(PHONES[:1]))
    for op, call in (("status", lambda: client.status(["1"])), ("balance", client.balance)):
        sandbox.state.add_fault(Fault("amoot", op, "code", code=title))
        with pytest.raises(TransientError):
            call()
    sandbox.state.add_fault(Fault("amoot", "reconcile", "code", code=title))
    with pytest.raises(TransientError):
        client.reconcile(batch(PHONES[:1]), datetime.now(UTC))


def test_twin_turns_a_numeric_fault_code_into_its_title():
    assert json.loads(render_code(4).get_data())["Status"] == "CreditNotEnough"
    assert json.loads(render_code("-201").get_data())["Status"] == "Token_NotExists"


def test_no_secret_in_a_refusal(sandbox, sandbox_environ):
    env = {**sandbox_environ, "SMSDISPATCH_AMOOT_TOKEN": "leaky-token-987"}
    with pytest.raises(AccountError) as info:
        client_for(env).status(["1"])
    assert "leaky-token-987" not in f"{info.value} {info.value.snippet}"
    assert re.search(r"Token_NotExists", str(info.value))
