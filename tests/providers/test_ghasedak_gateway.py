"""Ghasedak gateway REST v1 ("ghasedak-gateway"): shared/providers.md §2B, over its sandbox twin and fixtures."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from dispatcher.sandbox.core import Fault
from tests.providers.contract import PHONES, ProviderContract
from workers.errors import AccountError, ConfigurationError, ProviderError, RequestError, TransientError
from workers.providers import ghasedak_gateway as gw
from workers.providers.base import Reply
from workers.providers.ghasedak_gateway import GhasedakGatewayClient
from workers.status import Balance, DeliveryStatus, Message, SendBatch, SendOutcome

FIXTURES = Path(__file__).parent / "fixtures" / "ghasedak_gateway"
P = "SMSDISPATCH_GHASEDAK_GATEWAY_"


def fixture(name: str) -> Any:
    return json.loads((FIXTURES / f"{name}.json").read_text(encoding="utf-8"))


def client(env: dict[str, str], **overrides: str) -> GhasedakGatewayClient:
    merged = {**env, **{P + k.upper(): v for k, v in overrides.items()}}
    return GhasedakGatewayClient(GhasedakGatewayClient.load_settings(merged))


def offline(**overrides: str) -> GhasedakGatewayClient:
    return client(
        {P + "APIKEY": "k", P + "SENDER": "2100000000", P + "URL": "http://127.0.0.1:9"}, **overrides
    )


def batch(c: GhasedakGatewayClient, phones: list[str], texts: list[str] | None = None) -> SendBatch:
    texts = texts or ["سلام"] * len(phones)
    msgs = tuple(
        Message(i + 1, p, t, client_ref=f"r{i + 1}")
        for i, (p, t) in enumerate(zip(phones, texts, strict=True))
    )
    return SendBatch(msgs, sender=c.settings.sender)


def reply(body: Any, status: int = 200) -> Reply:
    return Reply(status, body, json.dumps(body), {})


class TestContract(ProviderContract):
    provider = "ghasedak-gateway"
    transient_code = 402
    account_code = 418


# ---- the envelope, read case-insensitively ------------------------------------------------------
def test_envelope_keys_in_either_case():
    assert gw.parse_envelope(fixture("send_bulk_docs"))[0] == 200
    code, message, data = gw.parse_envelope(fixture("account"))
    assert code == 200 and message == "success" and data["Credit"] == 9135538
    assert gw.parse_envelope({"result": {"code": 200}}) is None
    assert gw.parse_envelope({"isSuccess": False, "statusCode": 200})[0] == "isSuccess=false"


@pytest.mark.parametrize(
    "code,cls",
    [(418, AccountError), (401, AccountError), (406, AccountError), (412, AccountError), (416, AccountError),
     (429, RequestError), (400, RequestError), (413, RequestError), (402, TransientError), (500, TransientError)],
)  # fmt: skip
@pytest.mark.parametrize("sending", [True, False])
def test_status_code_table(code: int, cls: type[ProviderError], sending: bool):
    body = {"isSuccess": False, "statusCode": code, "message": "x", "data": None}
    with pytest.raises(ProviderError) as info:
        offline().read_reply(reply(body, 400), sending=sending, what="t")
    assert type(info.value) is cls and info.value.code == str(code)


def test_429_is_missed_params_not_a_rate_limit():
    with pytest.raises(RequestError) as info:
        offline().read_reply(reply(fixture("error_missed_params"), 400), sending=True, what="t")
    assert not isinstance(info.value, TransientError)


# ---- send replies: both documented shapes of the bulk reply ---------------------------------------
def test_bulk_reply_docs_shape_with_cost():
    (r,) = gw.parse_send_data(fixture("send_bulk_docs")["data"], batch(offline(), PHONES[:1]).messages)
    assert (r.outcome, r.message_id, r.cost) == (SendOutcome.ACCEPTED, "4249", 1732.0)


def test_bulk_reply_sdk_shape_matched_by_receptor_not_position():
    results = gw.parse_send_data(fixture("send_bulk_sdk")["data"], batch(offline(), PHONES[:2]).messages)
    assert [r.message_id for r in results] == ["4250", "4251"]
    assert all(r.cost is None for r in results)  # the SDK shape's cost is per call


def test_pair_reply_and_a_missing_row_is_unknown():
    results = gw.parse_send_data(fixture("send_pair")["data"], batch(offline(), PHONES[:3]).messages)
    assert [r.message_id for r in results[:2]] == ["5001", "5002"] and results[1].cost == 3464.0
    assert results[2].outcome is SendOutcome.UNKNOWN


def test_status_both_enums_kept_raw():
    rows = fixture("status_pascal")["Data"]
    docs = gw.parse_status_data(rows, ["4249", "4250", "9"], "docs")
    assert [(s.status, s.raw_code) for s in docs] == [
        (DeliveryStatus.DELIVERED, "5"), (DeliveryStatus.SENT_TO_OPERATOR, "3"), (DeliveryStatus.UNKNOWN, None)
    ]  # fmt: skip
    assert [s.cost for s in docs] == [1732.0, 1732.0, None]  # each item's Price: the recipient's actual cost
    sdk = gw.parse_status_data(rows, ["4249", "4250"], "sdk")
    assert [(s.status, s.raw_code) for s in sdk] == [
        (DeliveryStatus.UNKNOWN, "5"),
        (DeliveryStatus.PENDING, "3"),
    ]


def test_enum_tables_are_section_2b():
    assert {k for k, v in gw.SDK_DELIVERY.items() if v is DeliveryStatus.PENDING} == {0, 2, 3, 9, 17}
    assert gw.SDK_DELIVERY[14] is DeliveryStatus.DELIVERED and gw.DOCS_DELIVERY[5] is DeliveryStatus.DELIVERED
    assert set(gw.DOCS_DELIVERY) == set(range(9)) and set(gw.SDK_DELIVERY) == set(range(18))


def test_account_fixture():
    assert gw.parse_account(fixture("account")["Data"], "rial") == Balance(
        9135538.0, "rial", "2024-07-16T10:48:21+03:30"
    )


# ---- over the twin ------------------------------------------------------------------------------
def test_pair_send_carries_a_reference_per_message_and_the_cost(sandbox, sandbox_environ):
    c = client(sandbox_environ)
    results = c.send(batch(c, PHONES[:3], ["a", "b", "a"]))
    assert all(r.outcome is SendOutcome.ACCEPTED and r.cost == 1732.0 for r in results)
    refs = {m.client_ref for m in sandbox.state.accepted("ghasedak-gateway")}
    assert refs == {"r1", "r2", "r3"}


@pytest.mark.parametrize("shape", ["docs", "sdk"])
def test_bulk_mode_reads_either_reply_shape(sandbox, sandbox_environ, shape):
    sandbox.state.gateway_bulk_shape = shape
    c = client(sandbox_environ, send_mode="bulk")
    results = c.send(batch(c, PHONES[:3]))
    assert all(r.outcome is SendOutcome.ACCEPTED for r in results)
    assert sandbox.state.calls[("ghasedak-gateway", "send")] == 1
    statuses = c.status([r.message_id for r in results])
    assert all(s.raw_code is not None for s in statuses)


def test_duplicate_request_451_is_looked_up_not_sent_again(sandbox, sandbox_environ):
    c = client(sandbox_environ)
    b = batch(c, PHONES[:2])
    first = c.send(b)
    again = c.send(b)  # same clientReferenceIds: the gateway answers 451
    assert [r.message_id for r in again] == [r.message_id for r in first]
    assert all(r.outcome is SendOutcome.ACCEPTED for r in again)
    assert len(sandbox.state.accepted("ghasedak-gateway")) == 2


def test_reconcile_by_client_reference(sandbox, sandbox_environ):
    c = client(sandbox_environ, reconcile_grace="0")
    b = batch(c, PHONES[:2])
    sandbox.state.add_fault(Fault("ghasedak-gateway", "send", "accept_then_http", status=500))
    with pytest.raises(ProviderError):
        c.send(SendBatch(b.messages[:1], b.sender))
    results = c.reconcile(b, datetime.now(UTC) - timedelta(seconds=5))
    assert results[0].outcome is SendOutcome.ACCEPTED and results[0].message_id
    assert results[1].outcome is SendOutcome.NOT_SENT


def two(c: GhasedakGatewayClient) -> tuple[Message, ...]:
    return batch(c, PHONES[:2]).messages


def test_a_lookup_answer_without_its_rows_proves_nothing(caplog):
    msgs = two(offline())
    for data in ({"Result": []}, "x"):  # the list renamed, or no list at all
        results = gw.parse_lookup_data(data, msgs, True, "docs")
        assert {r.outcome for r in results} == {SendOutcome.UNKNOWN}
    assert {r.outcome for r in gw.parse_lookup_data([], msgs, True, "docs")} == {SendOutcome.NOT_SENT}
    said = [r.getMessage() for r in caplog.records if r.name == "workers.providers.evidence"]
    assert len(said) == 1 and "CheckSmsStatus Type=2" in said[0] and "no list of rows" in said[0]


def test_a_lookup_row_with_neither_reference_nor_receptor_could_be_anyones():
    msgs = two(offline())
    mine = {"clientReferenceId": msgs[0].client_ref, "messageId": 71, "status": 5}
    stray = {"messageId": 72, "status": 5}  # clientReferenceId and receptor renamed away
    results = gw.parse_lookup_data([mine, stray], msgs, True, "docs")
    assert [(r.outcome, r.message_id) for r in results] == [
        (SendOutcome.ACCEPTED, "71"),
        (SendOutcome.UNKNOWN, None),  # not "not sent", and not the stray row's id either
    ]


def test_status_rows_without_an_id_or_a_status_answer_nothing():
    rows = [{"messageId": 1, "status": 5}, {"messageId": 2}, {"id": 3, "status": 5}]
    results = gw.parse_status_data(rows, ["1", "2", "3"], "docs")
    assert [(r.status, r.raw_code) for r in results] == [
        (DeliveryStatus.DELIVERED, "5"),
        (DeliveryStatus.UNKNOWN, None),
        (DeliveryStatus.UNKNOWN, None),
    ]


def test_reconcile_within_the_grace_period_stays_unknown(sandbox, sandbox_environ):
    c = client(sandbox_environ)
    (r,) = c.reconcile(batch(c, PHONES[:1]), datetime.now(UTC))
    assert r.outcome is SendOutcome.UNKNOWN


def test_no_credit_is_an_account_error(sandbox, sandbox_environ):
    sandbox.state.credit["ghasedak-gateway"] = 0
    c = client(sandbox_environ)
    with pytest.raises(AccountError) as info:
        c.send(batch(c, PHONES[:1]))
    assert info.value.code == "418"


def test_repeated_ids_format(sandbox, sandbox_environ):
    c = client(sandbox_environ, ids_format="repeat")
    results = c.send(batch(c, PHONES[:2]))
    assert all(s.raw_code for s in c.status([r.message_id for r in results]))


def test_balance_reads_pascal_case(sandbox, sandbox_environ):
    sandbox.state.credit["ghasedak-gateway"] = 10
    assert client(sandbox_environ).balance() == Balance(17320.0, "rial", "2024-07-16T10:48:21+03:30")


def test_inbox_reads_replies_once(sandbox, sandbox_environ):
    c = client(sandbox_environ)
    sandbox.state.add_inbound("ghasedak-gateway", "09121234567", "لغو11")
    messages, cursor = c.inbox(None)
    assert [(m.phone, m.text) for m in messages] == [("+989121234567", "لغو11")]
    sandbox.state.add_inbound("ghasedak-gateway", "09351234567", "stop")
    again, _ = c.inbox(cursor)
    assert [m.phone for m in again] == ["+989351234567"]


@pytest.mark.parametrize("key,value", [("send_mode", "x"), ("status_enum", "v3"), ("inbox_fields", "a,b")])
def test_bad_options_are_configuration_errors(key: str, value: str):
    with pytest.raises(ConfigurationError):
        offline(**{key: value})
