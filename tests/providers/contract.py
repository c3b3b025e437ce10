"""`ProviderContract`: the checks every provider client must pass, run against its sandbox twin.

A provider test module subclasses it and sets `provider` (the registry name) and `transient_code`
(a send code the provider documents as transient). Everything runs over real HTTP on loopback.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta

import pytest

from dispatcher.sandbox.core import Fault
from workers.errors import AccountError, AmbiguousSendError, ProviderError, RequestError, TransientError
from workers.providers import client_class
from workers.settings import env_prefix
from workers.status import DeliveryStatus, Message, SendBatch, SendOutcome

PHONES = ["+989121234567", "+989351234567", "+989901234567", "+989191112233", "+989031112233"]


def batch_of(phones: list[str], text: str = "سلام، تخفیف ویژه لغو11", start: int = 1) -> SendBatch:
    msgs = tuple(Message(start + i, p, text, client_ref=f"t{start + i}") for i, p in enumerate(phones))
    return SendBatch(msgs, sender="")


class ProviderContract:
    provider: str = ""
    transient_code: int | str = ""
    account_code: int | str = ""  # a send code the provider documents as an account-level error

    def client(self, env: dict[str, str], **overrides: str):
        env = {**env, **overrides}
        cls = client_class(self.provider)
        return cls(cls.load_settings(env))

    def batch(self, client, phones=PHONES, text="سلام، تخفیف ویژه لغو11") -> SendBatch:
        b = batch_of(list(phones), text)
        return SendBatch(b.messages, sender=client.settings.sender)

    def test_send_accepts_every_recipient_once(self, sandbox, sandbox_environ):
        client = self.client(sandbox_environ)
        phones = PHONES[: client.settings.batch]
        results = client.send(self.batch(client, phones))
        assert [r.recipient_id for r in results] == list(range(1, len(phones) + 1))
        assert all(r.outcome is SendOutcome.ACCEPTED and r.message_id for r in results)
        assert all(isinstance(r.message_id, str) for r in results)
        counts = sandbox.state.count_by_phone(self.provider)
        assert sorted(counts) == sorted(p.lstrip("+") for p in phones)
        assert set(counts.values()) == {1}

    def test_status_maps_to_what_the_sandbox_decided(self, sandbox, sandbox_environ):
        client = self.client(sandbox_environ)
        phones = PHONES[: client.settings.batch]
        results = client.send(self.batch(client, phones))
        statuses = {s.message_id: s for s in client.status([r.message_id for r in results])}
        for phone, result in zip(phones, results, strict=True):
            expected = DeliveryStatus(sandbox.state.outcome(phone))
            got = statuses[result.message_id]
            assert got.status is expected, (phone, got)
            assert got.raw_code is not None

    def test_not_final_before_the_operator_answers(self, sandbox, sandbox_environ):
        sandbox.state.final_after_s = 60
        client = self.client(sandbox_environ)
        results = client.send(self.batch(client, PHONES[:1]))
        (status,) = client.status([results[0].message_id])
        assert not status.status.is_final

    def test_transient_code_raises_transient(self, sandbox, sandbox_environ):
        client = self.client(sandbox_environ)
        sandbox.state.add_fault(Fault(self.provider, "send", "code", code=self.transient_code))
        with pytest.raises(TransientError):
            client.send(self.batch(client, PHONES[:1]))
        assert sandbox.state.accepted(self.provider) == []

    def test_account_code_raises_account_error(self, sandbox, sandbox_environ):
        client = self.client(sandbox_environ)
        sandbox.state.add_fault(Fault(self.provider, "send", "code", code=self.account_code))
        with pytest.raises(AccountError):
            client.send(self.batch(client, PHONES[:1]))

    def test_http_503_is_transient(self, sandbox, sandbox_environ):
        client = self.client(sandbox_environ)
        sandbox.state.add_fault(Fault(self.provider, "send", "http", status=503))
        with pytest.raises(TransientError):
            client.send(self.batch(client, PHONES[:1]))

    def test_500_after_accept_is_ambiguous(self, sandbox, sandbox_environ):
        client = self.client(sandbox_environ)
        sandbox.state.add_fault(Fault(self.provider, "send", "accept_then_http", status=500))
        with pytest.raises(AmbiguousSendError):
            client.send(self.batch(client, PHONES[:1]))
        assert len(sandbox.state.accepted(self.provider)) == 1

    def test_read_timeout_after_accept_is_ambiguous(self, sandbox, sandbox_environ):
        client = self.client(sandbox_environ, **{f"{env_prefix(self.provider)}TIMEOUT": "2,0.5"})
        sandbox.state.add_fault(Fault(self.provider, "send", "accept_then_hang", seconds=1.5))
        with pytest.raises(AmbiguousSendError):
            client.send(self.batch(client, PHONES[:1]))

    def test_connection_refused_is_transient(self, sandbox_environ):
        env = {**sandbox_environ, f"{env_prefix(self.provider)}URL": "http://127.0.0.1:9/nothing"}
        client = self.client(env)
        with pytest.raises(TransientError):
            client.send(self.batch(client, PHONES[:1]))

    def test_wrong_credentials_are_an_account_error_without_the_secret(self, sandbox, sandbox_environ):
        env = dict(sandbox_environ)
        secret_keys = [k for k in env if k.endswith(("_APIKEY", "_TOKEN", "_PASSWORD"))]
        secret_keys = [k for k in secret_keys if k.startswith(f"{env_prefix(self.provider)}")]
        assert secret_keys
        for key in secret_keys:
            env[key] = "wrong-secret-value-123"
        client = self.client(env)
        with pytest.raises(AccountError) as info:
            client.send(self.batch(client, PHONES[:1]))
        text = f"{info.value} {info.value.snippet!r} {info.value!r}"
        assert "wrong-secret-value-123" not in text

    def test_more_than_the_batch_size_is_refused_before_any_call(self, sandbox, sandbox_environ):
        client = self.client(sandbox_environ)
        too_many = [f"+98912{i:07d}" for i in range(client.settings.batch + 1)]
        with pytest.raises(RequestError):
            client.send(self.batch(client, too_many))
        assert sandbox.state.accepted(self.provider) == []

    def test_balance(self, sandbox, sandbox_environ):
        balance = self.client(sandbox_environ).balance()
        assert balance.amount >= 0 and balance.unit

    def test_reconcile_finds_what_went_out(self, sandbox, sandbox_environ):
        client = self.client(sandbox_environ)
        since = datetime.now(UTC) - timedelta(seconds=5)
        sent = self.batch(client, PHONES[:2])
        client.send(SendBatch(sent.messages[:1], sent.sender))
        time.sleep(0.05)
        results = {r.recipient_id: r for r in client.reconcile(sent, since)}
        if client.capabilities.reconcile == "none":
            assert {r.outcome for r in results.values()} == {SendOutcome.UNKNOWN}
            return
        assert results[1].outcome is SendOutcome.ACCEPTED and results[1].message_id
        assert results[2].outcome in (SendOutcome.NOT_SENT, SendOutcome.UNKNOWN)

    def test_error_classes_are_provider_errors(self):
        for cls in (TransientError, AmbiguousSendError, AccountError, RequestError):
            assert issubclass(cls, ProviderError)
