"""collect_optouts over the real sandbox HTTP and a real store (SQLite and PostgreSQL)."""

from __future__ import annotations

from datetime import UTC, datetime

from campaigns.optout import keyword_set
from dispatcher.sandbox.core import Fault
from workers.deps import ProviderPool, WorkerDeps
from workers.operations.optout import collect_optouts, inbox_account, optout_reason, optouts_from
from workers.settings import DispatchSettings
from workers.status import InboundMessage

READ_AT = datetime(2026, 11, 26, 8, 0, tzinfo=UTC)


def inbound(text: str, phone: str | None = "+989121234567", at: str | None = "2026-11-26T11:00:00"):
    return InboundMessage("ghasedak", "1", phone, phone or "1000777", text, at)


def test_reason_quotes_the_reply_its_provider_and_date():
    assert optout_reason(inbound(" لغو  ۱۱ "), READ_AT) == (
        "opted out: replied 'لغو ۱۱' via ghasedak on 2026-11-26T11:00:00"
    )
    assert optout_reason(inbound("stop", at=None), READ_AT) == (
        "opted out: replied 'stop' via ghasedak read on 2026-11-26"
    )


def test_only_opt_outs_from_mobiles_count_and_the_first_reply_wins():
    messages = [
        inbound("hello"),
        inbound("لغو", phone=None),  # a sender that is no mobile
        inbound("لغو ۱۱", phone="+989351234567"),
        inbound("STOP", phone="+989351234567", at="later"),
        inbound("the bus stop is near", phone="+989901112222"),
    ]
    assert optouts_from(messages, keyword_set(["لغو11", "stop"]), READ_AT) == {
        "+989351234567": "opted out: replied 'لغو ۱۱' via ghasedak on 2026-11-26T11:00:00"
    }


def deps_for(store, env: dict[str, str]) -> WorkerDeps:
    return WorkerDeps(store=store, providers=ProviderPool(env), settings=DispatchSettings.from_env(env))


def test_collect_suppresses_opt_outs_from_both_inboxes_once(store, sandbox, sandbox_environ):
    state = sandbox.state
    state.add_inbound("ghasedak", "09121111111", "لغو ۱۱", line="10008566")
    state.add_inbound("ghasedak", "09122222222", "ممنون", line="10008566")
    state.add_inbound("ghasedak", "09123333333", "لغو", line="3000")  # another line: not ours
    state.add_inbound("mediapayamak", "09354444444", "Stop!", line="50004001")
    deps = deps_for(store, sandbox_environ)
    assert collect_optouts(deps) == 2
    listed = store.suppressed()
    assert set(listed) == {"+989121111111", "+989354444444"}
    assert listed["+989121111111"].startswith("opted out: replied 'لغو ۱۱' via ghasedak on ")
    assert listed["+989354444444"].startswith("opted out: replied 'Stop!' via mediapayamak on ")
    assert state.calls[("amoot", "inbox")] == state.calls[("negin", "inbox")] == 0
    for provider in ("ghasedak", "mediapayamak"):
        assert store.inbox_cursor(inbox_account(deps.providers.get(provider)))
    # idempotent: the same replies again add nothing, and a number taken off the list stays off
    assert collect_optouts(deps) == 0
    store.unsuppress(["+989121111111"])
    assert collect_optouts(deps) == 0
    assert "+989121111111" not in store.suppressed()
    # a new reply is found by the next pass
    state.add_inbound("mediapayamak", "09125555555", "لغو11", line="50004001")
    assert collect_optouts(deps) == 1


def test_a_provider_down_does_not_stop_the_others(store, sandbox, sandbox_environ):
    state = sandbox.state
    state.add_inbound("ghasedak", "09121111111", "لغو", line="10008566")
    state.add_inbound("mediapayamak", "09352222222", "لغو", line="50004001")
    state.add_fault(Fault("ghasedak", op="inbox", kind="http", status=502))
    deps = deps_for(store, sandbox_environ)
    assert collect_optouts(deps) == 1
    assert set(store.suppressed()) == {"+989352222222"}
    assert store.inbox_cursor(inbox_account(deps.providers.get("ghasedak"))) is None  # not moved
    assert collect_optouts(deps) == 1  # ghasedak is back: its reply is read now
    assert set(store.suppressed()) == {"+989352222222", "+989121111111"}


def test_an_unconfigured_provider_is_skipped(store, sandbox, sandbox_environ):
    env = {k: v for k, v in sandbox_environ.items() if not k.startswith("SMSDISPATCH_GHASEDAK_")}
    sandbox.state.add_inbound("ghasedak", "09121111111", "لغو", line="10008566")
    sandbox.state.add_inbound("mediapayamak", "09352222222", "لغو", line="50004001")
    assert collect_optouts(deps_for(store, env)) == 1
    assert set(store.suppressed()) == {"+989352222222"}
    assert sandbox.state.calls[("ghasedak", "inbox")] == 0


def test_keywords_are_a_setting(store, sandbox, sandbox_environ):
    sandbox.state.add_inbound("mediapayamak", "09352222222", "انصراف", line="50004001")
    sandbox.state.add_inbound("mediapayamak", "09353333333", "لغو", line="50004001")
    env = {**sandbox_environ, "SMSDISPATCH_OPTOUT_KEYWORDS": "انصراف"}
    assert collect_optouts(deps_for(store, env)) == 1
    assert set(store.suppressed()) == {"+989352222222"}


def test_beat_schedules_collection_unless_turned_off():
    from workers.celery_app import make_app

    schedule = make_app(DispatchSettings(optout_every=30)).conf.beat_schedule
    assert schedule["optouts"] == {
        "task": "smsdispatch.collect_optouts",
        "schedule": 30,
        "options": {"expires": 30},
    }
    assert "optouts" not in make_app(DispatchSettings(optout_every=0)).conf.beat_schedule
    assert DispatchSettings.from_env({"SMSDISPATCH_OPTOUT_EVERY": "15"}).optout_every == 15


def test_the_embedded_poll_loop_collects_opt_outs(store, sandbox, sandbox_environ):
    from dispatcher.engine.runner import LocalRunner

    sandbox.state.add_inbound("ghasedak", "09121111111", "لغو", line="10008566")
    runner = LocalRunner(deps_for(store, {**sandbox_environ, "SMSDISPATCH_OPTOUT_EVERY": "3600"}))
    runner.poll(until_done=False)
    assert set(store.suppressed()) == {"+989121111111"}
    sandbox.state.add_inbound("ghasedak", "09122222222", "لغو", line="10008566")
    runner.poll(until_done=False)  # within the hour: not read again yet
    assert set(store.suppressed()) == {"+989121111111"}
