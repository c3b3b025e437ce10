"""Ghasedak v2: code tables, pure parsing over the documents' own bodies, and the twin over real HTTP.

Fixtures in fixtures/ghasedak/ are reply bodies copied from seed 004, except status_csharp_model.json, which is
the status example of providers.md §2A (the official C# model's camelCase `messageId`).
"""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import requests

from dispatcher.sandbox.core import DEFAULT_CREDENTIALS, Fault
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
from workers.providers.base import Reply
from workers.providers.ghasedak import (
    CALL_CODES,
    DELIVERY,
    GhasedakClient,
    build_bulk_form,
    build_inbox_form,
    build_pair_form,
    error_class,
    format_inbox_cursor,
    inbox_total,
    local_number,
    parse_balance,
    parse_envelope,
    parse_inbox_cursor,
    parse_inbox_items,
    parse_lookup_items,
    parse_send_items,
    parse_status_items,
)
from workers.status import Balance, DeliveryStatus, Message, SendBatch, SendOutcome

FIXTURES = Path(__file__).parent / "fixtures" / "ghasedak"
KEY = DEFAULT_CREDENTIALS["ghasedak"]["apikey"]


def fixture(name: str) -> Any:
    return json.loads((FIXTURES / f"{name}.json").read_text(encoding="utf-8"))


def client_for(env: dict[str, str], **overrides: str) -> GhasedakClient:
    env = {**env, **{f"SMSDISPATCH_GHASEDAK_{k.upper()}": v for k, v in overrides.items()}}
    return GhasedakClient(GhasedakClient.load_settings(env))


def personal_batch(texts: list[str], phones: list[str] | None = None, sender: str = "10008566") -> SendBatch:
    phones = phones or PHONES[: len(texts)]
    msgs = tuple(
        Message(i + 1, p, t, client_ref=f"p{i + 1}")
        for i, (p, t) in enumerate(zip(phones, texts, strict=True))
    )
    return SendBatch(msgs, sender=sender)


def raw_post(sandbox, path: str, form: dict[str, str], key: str | None = KEY) -> requests.Response:
    headers = {"apikey": key} if key is not None else {}
    return requests.post(f"{sandbox.url}/ghasedak/v2/{path}", data=form, headers=headers, timeout=5)


def classify(client: GhasedakClient, response: requests.Response, *, sending: bool) -> ProviderError:
    reply = Reply(response.status_code, response.json(), response.text, response.headers)
    with pytest.raises(ProviderError) as info:
        client.unwrap(reply, sending=sending, what="test")
    return info.value


class TestContract(ProviderContract):
    provider = "ghasedak"
    transient_code = 10
    account_code = 9


# ---- code tables (providers.md §2A) -----------------------------------------------------------
CALL_EXPECTED: dict[int, type[ProviderError]] = {
    1: AccountError,
    2: RequestError,
    3: RequestError,
    4: RequestError,
    5: TransientError,
    6: AccountError,
    7: AccountError,
    8: RecipientRefusedError,
    9: AccountError,
    10: TransientError,
    11: AccountError,
    20: RecipientRefusedError,
    24: AccountError,
    400: RequestError,
    401: AccountError,
    404: RequestError,
    419: AccountError,
}


def test_the_call_table_covers_exactly_the_documented_codes():
    assert set(CALL_CODES) == {200, 21, *CALL_EXPECTED}


@pytest.mark.parametrize("code", sorted(CALL_EXPECTED))
@pytest.mark.parametrize("sending", [True, False])
def test_call_code_class(code: int, sending: bool):
    assert error_class(code, sending=sending) is CALL_EXPECTED[code]
    assert error_class(str(code), sending=sending) is CALL_EXPECTED[code]


def test_success_and_code_21():
    assert error_class(200, sending=True) is None
    assert error_class(21, sending=True) is AmbiguousSendError  # the operator link dropped: may have gone out
    assert error_class(21, sending=False) is TransientError


@pytest.mark.parametrize("code", [999, -7, "abc", None])
def test_unknown_call_codes_never_raise_key_error(code: object):
    assert error_class(code, sending=True) is AmbiguousSendError
    assert error_class(code, sending=False) is TransientError


DELIVERY_EXPECTED = {
    0: DeliveryStatus.SENT_TO_OPERATOR,
    1: DeliveryStatus.DELIVERED,
    2: DeliveryStatus.UNDELIVERED,
    8: DeliveryStatus.SENT_TO_OPERATOR,
    16: DeliveryStatus.FAILED,
    27: DeliveryStatus.BLACKLISTED,
    -1: DeliveryStatus.UNKNOWN,
}


def test_delivery_table_covers_exactly_the_documented_codes():
    assert DELIVERY == DELIVERY_EXPECTED


@pytest.mark.parametrize("code", sorted(DELIVERY_EXPECTED))
def test_delivery_code_maps(code: int):
    (result,) = parse_status_items([{"messageid": 5, "status": code}], ["5"])
    assert result.status is DELIVERY_EXPECTED[code]
    assert result.raw_code == str(code)


@pytest.mark.parametrize("code", [3, 99, "x", None])
def test_unknown_delivery_code_is_unknown_with_raw_code(code: object):
    (result,) = parse_status_items([{"messageid": 5, "status": code}], ["5"])
    assert result.status is DeliveryStatus.UNKNOWN
    assert result.raw_code == (None if code is None else str(code))


# ---- pure parsing over the documents' bodies ----------------------------------------------------
def two_messages() -> tuple[Message, ...]:
    return (Message(1, "+989111111111", "test1", "2020"), Message(2, "+989111111112", "test2", "2021"))


def test_parse_send_reply_keeps_ids_as_strings_in_order():
    code, _, items = parse_envelope(fixture("send_bulk_ok"))
    assert code == 200
    results = parse_send_items(items, two_messages())
    assert [(r.recipient_id, r.outcome, r.message_id) for r in results] == [
        (1, SendOutcome.ACCEPTED, "2581100787"),
        (2, SendOutcome.ACCEPTED, "2581100788"),
    ]


def test_parse_send_reply_refuses_to_guess_on_a_length_mismatch():
    _, _, items = parse_envelope(fixture("send_simple_ok"))
    assert parse_send_items(items, two_messages()) is None
    assert parse_send_items(None, two_messages()) is None
    assert parse_send_items([1, "x"], two_messages()) is None


@pytest.mark.parametrize(
    ("name", "code", "cls"),
    [
        ("error_400_receptor_required", 400, RequestError),
        ("error_401_apikey_invalid", 401, AccountError),
        ("error_404_not_found", 404, RequestError),
        ("error_419_exception", 419, AccountError),
    ],
)
def test_error_bodies(name: str, code: int, cls: type[ProviderError]):
    got_code, message, _ = parse_envelope(fixture(name))
    assert got_code == code and message
    assert error_class(got_code, sending=True) is cls


def test_parse_envelope_rejects_non_envelopes():
    assert parse_envelope("<html>502</html>") is None
    assert parse_envelope({"items": []}) is None
    assert parse_envelope({"result": {"message": "x"}}) is None


def test_parse_status_reply_seed_sample():
    _, _, items = parse_envelope(fixture("status_ok"))
    (result,) = parse_status_items(items, ["2581227073"])
    assert result.status is DeliveryStatus.SENT_TO_OPERATOR and result.raw_code == "8"


def test_parse_status_reply_reads_keys_case_insensitively():
    _, _, items = parse_envelope(fixture("status_csharp_model"))
    got = parse_status_items(items, ["2914845496", "7"])
    assert got[0].status is DeliveryStatus.DELIVERED
    assert got[1].status is DeliveryStatus.UNKNOWN and got[1].raw_code is None  # left out of the reply


def test_parse_balance():
    _, _, items = parse_envelope(fixture("account_info"))
    assert parse_balance(items) == Balance(8880.0, "rial", "2524608000")
    assert parse_balance({"expire": "1"}) is None


def test_parse_inbox():
    _, _, items = parse_envelope(fixture("receive_last"))
    (msg,) = parse_inbox_items(items)
    assert (msg.provider, msg.message_id, msg.phone, msg.sender, msg.text, msg.received_at) == (
        "ghasedak",
        "1020",
        "+989122222222",
        "09122222222",
        "test",
        "2017-10-16T12:31:1",  # kept as written: the seed gives no time zone
    )


def test_parse_inbox_keeps_a_sender_that_is_no_mobile():
    (msg,) = parse_inbox_items([{"messageid": 5, "message": "x", "sender": "1000777"}])
    assert (msg.phone, msg.sender) == (None, "1000777")
    assert parse_inbox_items(None) == [] and parse_inbox_items("") == []


def test_inbox_paging_form_and_cursor():
    assert build_inbox_form("10008566", 0, 100, 200, 3) == {
        "linenumber": "10008566",
        "isread": "0",
        "fromdate": "100",
        "todate": "200",
        "page": "3",
        "offset": "200",
    }
    assert inbox_total({"result": {}, "items": [], "totalcount": 1000}) == 1000
    assert inbox_total({"items": []}) is None
    cursor = format_inbox_cursor(1700000000, {"9", "10", ""})
    assert parse_inbox_cursor(cursor) == (1700000000, frozenset({"9", "10"}))
    assert parse_inbox_cursor(None) == (None, frozenset())
    assert parse_inbox_cursor("garbage") == (None, frozenset())


def test_parse_lookup():
    msgs = two_messages()
    items = [{"messageid": 77, "status": 8, "receptor": "09111111111"}, {"messageid": None, "status": -1}]
    found, missing = parse_lookup_items(items, msgs, grace_over=True)
    assert (found.outcome, found.message_id) == (SendOutcome.ACCEPTED, "77")
    assert missing.outcome is SendOutcome.NOT_SENT
    assert parse_lookup_items(items, msgs, grace_over=False)[1].outcome is SendOutcome.UNKNOWN
    # A receptor that is not ours, or a reply that does not line up, is never taken as proof.
    wrong = [{"messageid": 77, "status": 8, "receptor": "09350000000"}, {"messageid": 78, "status": 1}]
    assert [r.outcome for r in parse_lookup_items(wrong, msgs, True)] == [
        SendOutcome.UNKNOWN,
        SendOutcome.ACCEPTED,
    ]
    assert {r.outcome for r in parse_lookup_items(items[:1], msgs, True)} == {SendOutcome.UNKNOWN}


def test_lookup_rows_we_cannot_read_are_said_once_and_never_mean_not_sent(caplog):
    msgs = two_messages()
    renamed = [{"messageid": 11, "state": 1}, {"messageid": None, "state": -1}]  # `status` renamed
    assert {r.outcome for r in parse_lookup_items(renamed, msgs, True)} == {SendOutcome.UNKNOWN}
    assert {r.outcome for r in parse_lookup_items({"list": []}, msgs, True)} == {SendOutcome.UNKNOWN}
    said = [r.getMessage() for r in caplog.records if r.name == "workers.providers.evidence"]
    assert len(said) == 2 and "2 of 2 rows" in said[0] and "no items list" in said[1]
    statuses = parse_status_items([{"messageid": 5, "state": 1}, {"id": 6, "status": 1}], ["5", "6"])
    assert [(r.status, r.raw_code) for r in statuses] == [(DeliveryStatus.UNKNOWN, None)] * 2


def test_build_forms():
    msgs = (Message(1, "+989121234567", "a, b", "r1"), Message(2, "+989351234567", "c+d%", "r2"))
    pair = build_pair_form(msgs, "10008566")
    assert pair == {
        "message": "a, b",
        "receptor": "09121234567,09351234567",
        "checkid": "r1,r2",
        "linenumber": "10008566",
    }
    bulk = build_bulk_form(msgs, "10008566")
    assert bulk["message"] == "a%2C%20b,c%2Bd%25"
    assert bulk["linenumber"] == "10008566,10008566" and bulk["checkid"] == "r1,r2"
    assert local_number("+989121234567") == "09121234567"


# ---- the twin over HTTP, and how the client classifies its answers -------------------------------
def test_twin_wrong_and_missing_key(sandbox, sandbox_environ):
    client = client_for(sandbox_environ)
    wrong = raw_post(sandbox, "sms/send/simple", {"message": "x", "receptor": "09121234567"}, key="nope")
    assert wrong.status_code == 401 and wrong.json()["result"] == {
        "code": 401,
        "message": "apikey is invalid",
    }
    assert isinstance(classify(client, wrong, sending=True), AccountError)
    missing = raw_post(sandbox, "account/info", {}, key=None)
    assert missing.status_code == 400 and missing.json()["result"]["message"] == '["apikey is required"]'


def test_twin_missing_field(sandbox, sandbox_environ):
    response = raw_post(sandbox, "sms/send/simple", {"message": "x", "linenumber": "10008566"})
    assert response.status_code == 400
    assert response.json() == {"result": {"code": 400, "message": '["receptor is required"]'}, "items": None}
    assert isinstance(classify(client_for(sandbox_environ), response, sending=True), RequestError)


@pytest.mark.parametrize(
    ("path", "form", "code"),
    [
        ("sms/send/pair", {"message": "x", "receptor": ",".join(["09121234567"] * 101)}, 3),
        ("sms/send/pair", {"message": "x", "receptor": ","}, 2),
        ("sms/send/pair", {"message": "x", "receptor": "09121234567,09351234567", "checkid": "a"}, 4),
        ("sms/send/bulk", {"message": "a,b", "receptor": "09121234567", "linenumber": "1,1"}, 4),
        ("sms/status", {"id": ",".join(["1"] * 101), "type": "1"}, 3),
    ],
)
def test_twin_list_codes(sandbox, sandbox_environ, path: str, form: dict[str, str], code: int):
    response = raw_post(sandbox, path, form)
    assert response.json()["result"]["code"] == code
    assert isinstance(classify(client_for(sandbox_environ), response, sending=True), RequestError)
    assert sandbox.state.accepted("ghasedak") == []


def test_twin_unknown_path(sandbox, sandbox_environ):
    response = raw_post(sandbox, "sms/nothing", {})
    assert response.status_code == 404 and response.json()["items"] == ""
    assert isinstance(classify(client_for(sandbox_environ), response, sending=False), RequestError)


def test_invalid_receptor_alone_is_refused(sandbox, sandbox_environ):
    client = client_for(sandbox_environ)
    (result,) = client.send(SendBatch((Message(1, "+98212345678", "x", "r1"),), "10008566"))
    assert (result.outcome, result.status, result.raw_code) == (
        SendOutcome.REFUSED,
        DeliveryStatus.FAILED,
        "8",
    )


def test_invalid_receptor_in_a_batch_raises_recipient_refused(sandbox, sandbox_environ):
    client = client_for(sandbox_environ)
    with pytest.raises(RecipientRefusedError):
        client.send(SendBatch(batch_of([PHONES[0], "+98212345678"]).messages, "10008566"))
    assert sandbox.state.accepted("ghasedak") == []


def test_credit_exhausted_is_account_error(sandbox, sandbox_environ):
    sandbox.state.credit["ghasedak"] = 1
    with pytest.raises(AccountError) as info:
        client_for(sandbox_environ).send(SendBatch(batch_of(PHONES[:2]).messages, "10008566"))
    assert info.value.code == "9"


def test_balance_follows_the_credit(sandbox, sandbox_environ):
    sandbox.state.credit["ghasedak"] = 10
    balance = client_for(sandbox_environ).balance()
    assert balance == Balance(1550.0, "rial", "2524608000")


@pytest.mark.parametrize(
    ("op", "code", "cls"), [("send", 777, AmbiguousSendError), ("send", 21, AmbiguousSendError)]
)
def test_unknown_or_ambiguous_code_on_send(
    sandbox, sandbox_environ, op: str, code: int, cls: type[ProviderError]
):
    sandbox.state.add_fault(Fault("ghasedak", op, "code", code=code))
    with pytest.raises(cls):
        client_for(sandbox_environ).send(SendBatch(batch_of(PHONES[:1]).messages, "10008566"))


@pytest.mark.parametrize("code", [777, 21, 10])
def test_unknown_or_ambiguous_code_off_send_is_transient(sandbox, sandbox_environ, code: int):
    sandbox.state.add_fault(Fault("ghasedak", "status", "code", code=code))
    with pytest.raises(TransientError):
        client_for(sandbox_environ).status(["1"])


def test_status_of_unknown_id(sandbox, sandbox_environ):
    (result,) = client_for(sandbox_environ).status(["123"])
    assert result.status is DeliveryStatus.UNKNOWN and result.raw_code == "-1"


def test_status_splits_into_calls_of_100(sandbox, sandbox_environ):
    results = client_for(sandbox_environ).status([str(i) for i in range(250)])
    assert len(results) == 250 and sandbox.state.calls[("ghasedak", "status")] == 3


# ---- different texts -----------------------------------------------------------------------------
TEXTS = ["سلام علی، کد شما: 12", "Hi, Bob + 50% off", "a,b,,c", "متن چهارم لغو11"]


def test_bulk_send_keeps_commas_inside_texts(sandbox, sandbox_environ):
    results = client_for(sandbox_environ).send(personal_batch(TEXTS))
    assert all(r.outcome is SendOutcome.ACCEPTED for r in results)
    accepted = {m.message_id: m for m in sandbox.state.accepted("ghasedak")}
    assert [accepted[r.message_id].text for r in results] == TEXTS
    assert [accepted[r.message_id].client_ref for r in results] == ["p1", "p2", "p3", "p4"]
    assert sandbox.state.calls[("ghasedak", "send")] == 1


def test_simple_mode_sends_one_call_per_recipient(sandbox, sandbox_environ):
    results = client_for(sandbox_environ, bulk_mode="simple").send(personal_batch(TEXTS))
    accepted = {m.message_id: m for m in sandbox.state.accepted("ghasedak")}
    assert [accepted[r.message_id].text for r in results] == TEXTS
    assert sandbox.state.calls[("ghasedak", "send")] == len(TEXTS)


def test_simple_mode_stopping_half_way_keeps_the_accepted_ids(sandbox, sandbox_environ):
    sandbox.state.credit["ghasedak"] = 2
    results = client_for(sandbox_environ, bulk_mode="simple").send(personal_batch(TEXTS))
    assert [r.outcome for r in results] == [SendOutcome.ACCEPTED] * 2 + [SendOutcome.NOT_SENT] * 2
    assert results[2].error and "code 9" in results[2].error
    assert len(sandbox.state.accepted("ghasedak")) == 2


def test_simple_mode_ambiguous_half_way_leaves_that_one_unknown(sandbox, sandbox_environ):
    client = client_for(sandbox_environ, bulk_mode="simple")
    original, calls = client.send_call, []

    def second_call_is_cut_off(request, messages):  # the sandbox accepts it, then answers HTTP 500
        calls.append(request.path)
        if len(calls) == 2:
            sandbox.state.add_fault(Fault("ghasedak", "send", "accept_then_http", status=500))
        return original(request, messages)

    client.send_call = second_call_is_cut_off  # type: ignore[method-assign]
    outcomes = [r.outcome for r in client.send(personal_batch(TEXTS))]
    assert outcomes == [SendOutcome.ACCEPTED, SendOutcome.UNKNOWN, SendOutcome.NOT_SENT, SendOutcome.NOT_SENT]
    assert len(sandbox.state.accepted("ghasedak")) == 2  # the ambiguous one did go out


def test_bad_options_are_configuration_errors(sandbox_environ):
    with pytest.raises(ConfigurationError):
        client_for(sandbox_environ, bulk_mode="pairs")
    with pytest.raises(ConfigurationError):
        client_for(sandbox_environ, reconcile_grace="soon")


def test_empty_batch_is_refused_before_any_call(sandbox, sandbox_environ):
    with pytest.raises(RequestError):
        client_for(sandbox_environ).send(SendBatch((), "10008566"))
    assert sandbox.state.calls[("ghasedak", "send")] == 0


# ---- ambiguity ----------------------------------------------------------------------------------
class _FakeResponse:
    def __init__(self, status: int, text: str) -> None:
        self.status_code, self.text, self.headers = status, text, {}


class _FakeSession:
    def __init__(self, status: int, text: str) -> None:
        self.reply = _FakeResponse(status, text)

    def request(self, *args: object, **kwargs: object) -> _FakeResponse:
        return self.reply


def fake_client(sandbox_environ: dict[str, str], status: int, body: object) -> GhasedakClient:
    text = body if isinstance(body, str) else json.dumps(body)
    return GhasedakClient(GhasedakClient.load_settings(sandbox_environ), _FakeSession(status, text))  # type: ignore[arg-type]


def test_fewer_ids_than_receptors_is_ambiguous(sandbox_environ):
    client = fake_client(sandbox_environ, 200, fixture("send_simple_ok"))
    with pytest.raises(AmbiguousSendError):
        client.send(SendBatch(batch_of(PHONES[:2]).messages, "10008566"))


def test_unreadable_2xx_is_ambiguous_on_send_and_transient_elsewhere(sandbox_environ):
    client = fake_client(sandbox_environ, 200, "<html>ok</html>")
    with pytest.raises(AmbiguousSendError):
        client.send(SendBatch(batch_of(PHONES[:1]).messages, "10008566"))
    with pytest.raises(TransientError):
        client.balance()


def test_error_code_with_http_200_is_read_from_the_body(sandbox_environ):
    client = fake_client(sandbox_environ, 200, {"result": {"code": 6, "message": "inactive"}, "items": None})
    with pytest.raises(AccountError):
        client.balance()


# ---- reconciliation and inbox --------------------------------------------------------------------
def test_reconcile_with_no_grace_says_not_sent(sandbox, sandbox_environ):
    client = client_for(sandbox_environ, reconcile_grace="0")
    sent = SendBatch(batch_of(PHONES[:2]).messages, "10008566")
    (first,) = client.send(SendBatch(sent.messages[:1], sent.sender))
    results = client.reconcile(sent, datetime.now(UTC))
    assert (results[0].outcome, results[0].message_id) == (SendOutcome.ACCEPTED, first.message_id)
    assert results[1].outcome is SendOutcome.NOT_SENT


def test_reconcile_within_grace_stays_unknown(sandbox, sandbox_environ):
    client = client_for(sandbox_environ)
    sent = SendBatch(batch_of(PHONES[:1]).messages, "10008566")
    (result,) = client.reconcile(sent, datetime.now(UTC) - timedelta(seconds=5))
    assert result.outcome is SendOutcome.UNKNOWN
    (result,) = client.reconcile(sent, datetime.now(UTC) - timedelta(seconds=61))
    assert result.outcome is SendOutcome.NOT_SENT


def test_inbox_reads_read_and_unread_replies_on_our_line(sandbox, sandbox_environ):
    state = sandbox.state
    state.add_inbound("ghasedak", "09122222222", "لغو", line="10008566")
    state.add_inbound("ghasedak", "09123333333", "other line", line="3000")
    state.add_inbound("ghasedak", "09124444444", "stop", line="10008566")["read"] = True
    client = client_for(sandbox_environ)
    messages, cursor = client.inbox(None)
    assert sorted((m.phone, m.text) for m in messages) == [
        ("+989122222222", "لغو"),
        ("+989124444444", "stop"),
    ]
    until, seen = parse_inbox_cursor(cursor)
    assert until is not None and len(seen) == 2
    again, cursor2 = client.inbox(cursor)  # the overlap re-reads them, the cursor skips them
    assert again == [] and parse_inbox_cursor(cursor2)[0] >= until
    state.add_inbound("ghasedak", "09125555555", "لغو11", line="10008566")
    new, _ = client.inbox(cursor2)
    assert [(m.phone, m.text) for m in new] == [("+989125555555", "لغو11")]


def test_inbox_window_starts_at_the_cursor_minus_the_overlap(sandbox, sandbox_environ):
    state = sandbox.state
    old = state.add_inbound("ghasedak", "09122222222", "لغو", line="10008566")
    old["at"] -= 3600  # an hour ago
    client = client_for(sandbox_environ, inbox_overlap="60")
    cursor = format_inbox_cursor(int(time.time()) - 600, set())  # read up to ten minutes ago
    messages, _ = client.inbox(cursor)
    assert messages == []  # before the window
    messages, _ = client_for(sandbox_environ, inbox_lookback="7200").inbox(None)
    assert [m.text for m in messages] == ["لغو"]  # the first pass reaches back INBOX_LOOKBACK


def test_inbox_reads_every_page(sandbox, sandbox_environ):
    for i in range(450):
        sandbox.state.add_inbound("ghasedak", f"0912{i:07d}", "لغو", line="10008566")
    messages, _ = client_for(sandbox_environ, inbox_isread="0").inbox(None)
    assert len({m.phone for m in messages}) == 450
    assert sandbox.state.calls[("ghasedak", "inbox")] == 3  # 200 + 200 + 50


def test_inbox_errors_and_settings(sandbox, sandbox_environ):
    sandbox.state.add_fault(Fault("ghasedak", op="inbox", kind="code", code=5))
    with pytest.raises(TransientError):  # 5: cannot fetch new messages
        client_for(sandbox_environ).inbox(None)
    no_line = {k: v for k, v in sandbox_environ.items() if k != "SMSDISPATCH_GHASEDAK_SENDER"}
    with pytest.raises(ConfigurationError):
        client_for(no_line).inbox(None)
    for key, value in (("inbox_isread", "2"), ("inbox_overlap", "-1"), ("inbox_lookback", "a week")):
        with pytest.raises(ConfigurationError):
            client_for(sandbox_environ, **{key: value})


def test_paging_twin_requires_the_seed_fields(sandbox):
    reply = requests.post(
        f"{sandbox.url}/ghasedak/v2/sms/receive/paging",
        data={"linenumber": "10008566", "isread": "0"},
        headers={"apikey": DEFAULT_CREDENTIALS["ghasedak"]["apikey"]},
        timeout=5,
    )
    assert reply.status_code == 400 and "fromdate is required" in reply.json()["result"]["message"]
