"""Failover through a campaign's route (README, "Failover") in the embedded mode, on both stores, against the
sandbox over real HTTP: the first provider fails (credit runs out halfway, a 503 storm, a revoked
key, an ambiguous send) and the campaign completes through the next, every number accepted exactly
once across all providers (the sandbox's ledger is the witness).
"""

from __future__ import annotations

from collections import Counter
from dataclasses import replace

import pandas as pd
import pytest

from campaigns.circuit import CircuitState
from campaigns.plan import plan
from campaigns.states import CampaignState, ChunkState, RecipientState
from campaigns.store import CampaignSpec, Store
from campaigns.text import Template
from dispatcher.engine.runner import LocalRunner
from dispatcher.sandbox.core import Fault
from workers.deps import ProviderPool, WorkerDeps
from workers.settings import DispatchSettings

FAST = DispatchSettings(
    backoff_base=0.01,
    backoff_cap=0.05,
    poll_intervals=(0.05, 0.1),
    reconcile_max_age=5,
    max_attempts=4,
    circuit_failures=3,
    circuit_cooldown=60,
)
ROUTE = ("ghasedak", "mediapayamak")


def numbers(n: int) -> list[str]:
    return [f"+98936{i:07d}" for i in range(n)]


def routed_campaign(store: Store, phones: list[str], route: tuple[str, ...] = ROUTE, batch: int = 10) -> int:
    df = pd.DataFrame({"row": range(2, len(phones) + 2), "phone": phones})
    spec = CampaignSpec(
        name="failover",
        provider=route[0],
        account=f"{route[0]}:x",
        sender="",
        message="Hello",
        personalised=False,
        route=route,
    )
    return store.create_campaign(spec, plan([df], Template("Hello"), batch, []))


@pytest.fixture
def deps(store, sandbox_environ):
    env = {**sandbox_environ, "SMSDISPATCH_GHASEDAK_RECONCILE_GRACE": "0"}
    return WorkerDeps(store=store, providers=ProviderPool(env), settings=FAST)


def run(deps: WorkerDeps, cid: int):
    # no status poll of its own (poll_every an hour): the tests assert the states the sends left
    return LocalRunner(deps, threads=2, tick=0.02, reconcile_every=0.05, poll_every=3600).send(
        cid, timeout=60
    )


def accepted_once_across(sandbox, phones: list[str]) -> Counter[str]:
    """Every number accepted exactly once by all providers together; returns accepted per provider."""
    counts = Counter(m.phone for m in sandbox.state.accepted())
    assert set(counts.values()) == {1}, f"sent twice: {[p for p, n in counts.items() if n > 1]}"
    assert {"+" + p for p in counts} == set(phones), "lost or extra recipients"
    return Counter(m.provider for m in sandbox.state.accepted())


def test_credit_runs_out_halfway_and_the_next_provider_sends_the_rest(deps, sandbox, database_url, tmp_path):
    phones = numbers(40)
    cid = routed_campaign(deps.store, phones)
    sandbox.state.credit["ghasedak"] = 20
    result = run(deps, cid)
    assert result.state == CampaignState.RUNNING and not result.timed_out, result
    by_provider = accepted_once_across(sandbox, phones)
    assert by_provider == {"ghasedak": 20, "mediapayamak": 20}
    view = deps.store.campaign(cid)
    assert view.counts == {RecipientState.SENT: 40}
    counts = deps.store.by_provider(cid)
    assert counts == {"ghasedak": {"sent": 20}, "mediapayamak": {"sent": 20}}
    ghasedak = next(h for h in deps.store.all_health() if h.provider == "ghasedak")
    assert ghasedak.state == CircuitState.OPEN and ghasedak.reason
    # status --json, summary --json: counts by provider; the circuit with its reason
    from dispatcher import app
    from dispatcher.config import AppSettings

    settings = AppSettings(DispatchSettings(database_url=database_url))
    shown = app.status(settings, cid).as_json()
    assert shown["by_provider"] == counts
    assert {c["provider"]: c["state"] for c in shown["circuits"]} == {"ghasedak": "open"}
    assert app.summary(settings, [cid])[0].as_json()["by_provider"] == counts
    from openpyxl import load_workbook

    app.report(settings, cid, tmp_path / "report.xlsx")
    sheet = [
        [c for c in row if c is not None] for row in load_workbook(tmp_path / "report.xlsx")["Summary"].values
    ]
    at = sheet.index(["recipients by provider"])
    assert [row[:3] for row in sheet[at + 2 : at + 4]] == [["ghasedak", 20, 20], ["mediapayamak", 20, 20]]


def test_a_503_storm_opens_the_circuit_and_the_next_provider_sends(deps, sandbox):
    phones = numbers(30)
    cid = routed_campaign(deps.store, phones)
    sandbox.state.add_fault(Fault("ghasedak", "send", "http", status=503, times=10_000))
    result = run(deps, cid)
    assert not result.timed_out, result
    assert accepted_once_across(sandbox, phones) == {"mediapayamak": 30}
    assert deps.store.campaign(cid).counts == {RecipientState.SENT: 30}
    assert ChunkState.REROUTED in deps.store.chunk_counts(cid)


def test_a_revoked_key_moves_the_campaign_to_the_next_provider(deps, sandbox):
    phones = numbers(25)
    cid = routed_campaign(deps.store, phones)
    sandbox.state.credentials["ghasedak"]["apikey"] = "revoked"
    result = run(deps, cid)
    assert not result.timed_out, result
    assert accepted_once_across(sandbox, phones) == {"mediapayamak": 25}
    assert deps.store.campaign(cid).counts == {RecipientState.SENT: 25}


def test_an_ambiguous_send_is_reconciled_at_the_first_and_never_resent_through_the_second(deps, sandbox):
    phones = numbers(30)
    cid = routed_campaign(deps.store, phones)
    sandbox.state.add_fault(Fault("ghasedak", "send", "accept_then_http", status=500, times=1))
    sandbox.state.credit["ghasedak"] = 10  # the ambiguous chunk took it all: the rest must move
    result = run(deps, cid)
    assert not result.timed_out, result
    by_provider = accepted_once_across(sandbox, phones)
    assert by_provider == {"ghasedak": 10, "mediapayamak": 20}
    assert deps.store.by_provider(cid) == {"ghasedak": {"sent": 10}, "mediapayamak": {"sent": 20}}


def test_every_provider_unusable_pauses_with_every_reason_and_resume_tries_the_first(deps, sandbox):
    phones = numbers(20)
    cid = routed_campaign(deps.store, phones)
    sandbox.state.credentials["ghasedak"]["apikey"] = "revoked"
    sandbox.state.credentials["mediapayamak"]["apikey"] = "revoked"
    result = run(deps, cid)
    assert result.state == CampaignState.PAUSED
    assert "ghasedak:" in result.reason and "mediapayamak:" in result.reason, result.reason
    assert sandbox.state.accepted() == []
    sandbox.state.credentials["ghasedak"]["apikey"] = "sandbox-ghasedak-key"
    assert deps.store.resume(cid)
    result = run(deps, cid)
    assert not result.timed_out and result.state == CampaignState.RUNNING, result
    assert accepted_once_across(sandbox, phones) == {"ghasedak": 20}


def test_a_single_provider_campaign_still_pauses_on_an_account_error(deps, sandbox):
    phones = numbers(10)
    cid = routed_campaign(deps.store, phones, route=("ghasedak",))
    sandbox.state.credit["ghasedak"] = 0
    result = run(deps, cid)
    assert result.state == CampaignState.PAUSED
    assert sandbox.state.accepted() == []


# ---- the pieces: route resolution, the circuit's rule, the reroute's guard, the preflight ----------------
def test_a_route_is_a_comma_list_or_a_named_route_from_the_toml(tmp_path):
    from dispatcher.app.common import BadInput, resolve_route
    from dispatcher.config import load_config

    assert resolve_route("Ghasedak, mediapayamak", {}) == ROUTE
    assert resolve_route("amoot", {}) == ("amoot",)
    (tmp_path / "smsdispatch.toml").write_text(
        '[routes.default]\nproviders = ["negin", "ghasedak"]\n', encoding="utf-8"
    )
    env = load_config({}, cwd=tmp_path)
    assert env["SMSDISPATCH_ROUTE_DEFAULT"] == "negin,ghasedak"
    assert resolve_route("default", env) == ("negin", "ghasedak")
    with pytest.raises(BadInput, match="twice"):
        resolve_route("ghasedak,ghasedak", {})
    with pytest.raises(BadInput, match="unknown provider"):
        resolve_route("ghasedak,nosuch", {})


def test_the_circuit_chooses_the_first_closed_then_the_first_due_probe():
    from datetime import UTC, datetime, timedelta

    from campaigns.circuit import Health, Usability, choose_provider

    now = datetime.now(UTC)
    route = ("a", "b", "c")
    closed = {p: Health(p, p) for p in route}
    assert choose_provider(route, closed, now) == ("a", Usability.USABLE)
    is_open = Health("a", "a", CircuitState.OPEN, reason="credit", probe_at=now + timedelta(seconds=60))
    due = Health("b", "b", CircuitState.OPEN, reason="auth", probe_at=now - timedelta(seconds=1))
    assert choose_provider(route, {**closed, "a": is_open}, now) == ("b", Usability.USABLE)
    assert choose_provider(route, {"a": is_open, "b": due}, now) == ("b", Usability.PROBE)
    assert choose_provider(route, {"a": is_open}, now) is None
    assert choose_provider(route, closed, now, frozenset({"a"})) == ("b", Usability.USABLE)


def test_a_reroute_needs_the_attempt_and_a_state_known_not_sent(store):
    """The guard: a chunk that moved on (claimed again, or `unknown`) is never re-planned."""
    from datetime import timedelta

    phones = numbers(12)
    cid = routed_campaign(store, phones, batch=12)
    (chunk_id, attempt), *_ = store.claimable_chunks(campaign_id=cid)
    target = {"provider": "mediapayamak", "account": "m:x", "sender": "5000", "batch": 5, "reason": "test"}
    claimed = store.claim_chunk(chunk_id, attempt, timedelta(seconds=60))
    assert store.reroute_chunk(chunk_id, attempt, **target) is None  # the attempt it read is gone
    store.chunk_unknown(claimed, "ambiguous")
    assert store.reroute_chunk(chunk_id, claimed.attempt, **target) is None  # never from unknown
    store.resend_unknown(store.load_chunk(chunk_id), "reconciliation: not sent")
    new = store.reroute_chunk(chunk_id, claimed.attempt, **target)
    assert new is not None and len(new) == 3  # 12 recipients in batches of 5
    assert store.chunk_counts(cid) == {ChunkState.REROUTED: 1, ChunkState.QUEUED: 3}
    moved = store.load_chunk(new[0])
    assert (moved.provider, moved.account, moved.sender, len(moved.messages)) == (
        "mediapayamak",
        "m:x",
        "5000",
        5,
    )


def test_the_preflight_proves_every_provider_of_the_route(sandbox_environ, tmp_path):
    from campaigns.preflight import PreflightOptions
    from dispatcher.app.preflight.gather import CredentialsRejected, PreflightRequest, run_preflight

    file = tmp_path / "list.csv"
    file.write_text("mobile\n09121234567\n09121234568\n", encoding="utf-8")
    request = PreflightRequest(
        file, "amoot", Template("Hello"), PreflightOptions(window="09:00-21:00"), fallbacks=("ghasedak",)
    )
    result = run_preflight(request, engine=None, env=sandbox_environ, cwd=tmp_path)
    assert set(result.fallback_balances) == {"ghasedak"}
    # a provider that refuses the key is unusable for the route, like an unreachable one: skipped
    env = {**sandbox_environ, "SMSDISPATCH_GHASEDAK_APIKEY": "wrong"}
    result = run_preflight(request, engine=None, env=env, cwd=tmp_path)
    assert result.client.name == "amoot" and result.fallback_balances == {}
    env = {**env, "SMSDISPATCH_AMOOT_TOKEN": "wrong"}  # none usable: every refusal named
    with pytest.raises(CredentialsRejected, match="amoot refused the account.*ghasedak refused the account"):
        run_preflight(request, engine=None, env=env, cwd=tmp_path)


def test_retries_used_up_move_the_chunk_forward_only(deps, sandbox, store):
    """A closed circuit (the failures are spread thin) but one chunk's attempts are used up: it moves to
    the next provider of the route (a chunk at the last one fails as before, `chunk_retry`)."""
    relaxed = WorkerDeps(store, deps.providers, replace(FAST, circuit_failures=1000))
    phones = numbers(10)
    cid = routed_campaign(store, phones)
    sandbox.state.add_fault(Fault("ghasedak", "send", "code", code=10, times=4))  # transient, 4 = max
    result = run(relaxed, cid)
    assert not result.timed_out, result
    assert accepted_once_across(sandbox, phones) == {"mediapayamak": 10}
    assert store.chunk_counts(cid) == {ChunkState.REROUTED: 1, ChunkState.ACCEPTED: 1}


def test_a_moved_chunk_is_reconciled_at_the_provider_it_moved_to(deps, sandbox):
    """Recipients keep the provider that has them: an ambiguous send at the second provider is asked
    about there (its sent box), never re-sent."""
    phones = numbers(20)
    cid = routed_campaign(deps.store, phones)
    env = {**deps.providers._env, "SMSDISPATCH_MEDIAPAYAMAK_RECONCILE_GRACE": "0"}
    moved = WorkerDeps(deps.store, ProviderPool(env), FAST)
    sandbox.state.credentials["ghasedak"]["apikey"] = "revoked"
    sandbox.state.add_fault(Fault("mediapayamak", "send", "accept_then_http", status=500, times=1))
    result = run(moved, cid)
    assert not result.timed_out, result
    assert accepted_once_across(sandbox, phones) == {"mediapayamak": 20}
    assert deps.store.campaign(cid).counts == {RecipientState.SENT: 20}


def test_providers_check_shows_an_open_circuit_with_its_reason(deps, sandbox, database_url, sandbox_environ):
    from dispatcher.app import check_providers
    from dispatcher.config import AppSettings

    phones = numbers(10)
    cid = routed_campaign(deps.store, phones)
    sandbox.state.credit["ghasedak"] = 0
    assert not run(deps, cid).timed_out
    settings = AppSettings(DispatchSettings(database_url=database_url), sandbox_environ)
    rows = {r.provider: r.as_json() for r in check_providers(settings)}
    assert rows["ghasedak"]["circuit"] == "open" and "code" in rows["ghasedak"]["circuit_reason"]
    assert rows["mediapayamak"]["circuit"] in (None, "closed")


def test_a_moved_chunk_split_in_two_keeps_its_provider_in_both_halves(store):
    """A refused number in a moved chunk's batch splits it; both halves stay at the provider it moved to."""
    from datetime import timedelta

    cid = routed_campaign(store, numbers(8), batch=8)
    (chunk_id, attempt), *_ = store.claimable_chunks(campaign_id=cid)
    target = {"provider": "mediapayamak", "account": "m:x", "sender": "5000", "batch": 8, "reason": "test"}
    (moved,) = store.reroute_chunk(chunk_id, attempt, **target)
    claimed = store.claim_chunk(moved, 0, timedelta(seconds=60))
    second = store.split_chunk(claimed, "a number refused")
    assert second is not None
    halves = [store.load_chunk(moved), store.load_chunk(second)]
    assert [(c.provider, c.account, c.sender, len(c.messages)) for c in halves] == [
        ("mediapayamak", "m:x", "5000", 4),
        ("mediapayamak", "m:x", "5000", 4),
    ]
