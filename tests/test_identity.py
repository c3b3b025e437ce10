"""Roles and permissions, passwords, API keys and login throttling (README "Security").

The permission matrix below is written by hand from the roles' description (viewer reads; operator also
uploads, checks drafts and adds opt-outs; sender also sends, pauses, resumes and cancels; admin also
manages users and keys, purges and removes opt-outs), independently of `campaigns.identity.LEAST_ROLE`.
Throttling is tested across two processes sharing one database, on SQLite and PostgreSQL.
"""

from __future__ import annotations

import hashlib
import subprocess
import sys
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select, update

from campaigns.identity import PER_ACCOUNT, Permission, Role, ThrottleRule, allows, locked_for
from campaigns.store.identity_tables import api_keys_t, users_t
from dispatcher.app import BadInput
from dispatcher.app import identity as idn
from dispatcher.app.hashing import verify_password
from dispatcher.config import AppSettings

# role -> permission -> allowed, by hand (not from the code's table)
EXPECTED = {
    "viewer": {"read": 1, "upload": 0, "optout_add": 0, "send": 0, "optout_remove": 0, "manage": 0},
    "operator": {"read": 1, "upload": 1, "optout_add": 1, "send": 0, "optout_remove": 0, "manage": 0},
    "sender": {"read": 1, "upload": 1, "optout_add": 1, "send": 1, "optout_remove": 0, "manage": 0},
    "admin": {"read": 1, "upload": 1, "optout_add": 1, "send": 1, "optout_remove": 1, "manage": 1},
}
PASSWORD = "correct horse battery"


def settings_for(url: str) -> AppSettings:
    return AppSettings.from_env({"SMSDISPATCH_DATABASE_URL": url})


@pytest.fixture
def settings(database_url) -> AppSettings:
    return settings_for(database_url)


def test_the_permission_matrix():
    assert {r.value for r in Role} == set(EXPECTED)
    assert {p.value for p in Permission} == set(EXPECTED["admin"])
    for role, row in EXPECTED.items():
        for permission, allowed in row.items():
            assert allows(role, permission) is bool(allowed), (role, permission)
            actor = idn.Actor("x", Role(role), idn.ActorKind.USER, user_id=1)
            if allowed:
                idn.require(actor, Permission(permission))
            else:
                with pytest.raises(idn.Forbidden, match="needs the"):
                    idn.require(actor, Permission(permission))


def test_the_cli_is_an_admin_named_by_login_and_host():
    actor = idn.cli_actor()
    assert actor.role == Role.ADMIN and actor.who.startswith("cli:") and "@" in actor.who
    assert actor.principal is None


def test_throttle_verdict():
    t0 = datetime(2026, 1, 1, tzinfo=UTC)
    rule = ThrottleRule(3, timedelta(minutes=15), timedelta(minutes=15))
    two = [t0, t0 + timedelta(minutes=1)]
    assert locked_for(two, t0 + timedelta(minutes=2), rule) is None
    three = [*two, t0 + timedelta(minutes=14)]
    assert locked_for(three, t0 + timedelta(minutes=14), rule) == 15 * 60
    assert locked_for(three, t0 + timedelta(minutes=28), rule) == 60
    assert locked_for(three, t0 + timedelta(minutes=29), rule) is None  # 15 minutes after the third
    spread = [t0, t0 + timedelta(minutes=10), t0 + timedelta(minutes=20)]  # never 3 within 15 minutes
    assert locked_for(spread, t0 + timedelta(minutes=20), rule) is None


def test_passwords_are_argon2_hashes_and_weak_ones_are_refused(settings):
    for weak, why in (
        ("short1234", "at least 10"),
        ("password123", "most common"),
        ("Qwertyuiop", "most common"),
    ):
        with pytest.raises(BadInput, match=why):
            idn.add_user(settings, "alice", "sender", weak)
    idn.add_user(settings, "alice", "sender", PASSWORD)
    store = idn.identity_store(settings)
    with store.engine.connect() as conn:
        stored = conn.execute(select(users_t.c.password_hash)).scalar_one()
    assert stored.startswith("$argon2id$") and PASSWORD not in stored
    assert verify_password(stored, PASSWORD) and not verify_password(stored, PASSWORD + "!")
    with pytest.raises(BadInput, match="exists already"):
        idn.add_user(settings, "Alice", "viewer", PASSWORD)
    with pytest.raises(BadInput, match="choose one of"):
        idn.add_user(settings, "bob", "root", PASSWORD)
    assert idn.login(settings, "ALICE", PASSWORD).role == Role.SENDER
    idn.set_password(settings, "alice", "another good phrase")
    with pytest.raises(idn.Unauthenticated):
        idn.login(settings, "alice", PASSWORD)
    assert idn.login(settings, "alice", "another good phrase").who == "alice"


def test_a_disabled_user_cannot_log_in_and_its_sessions_end(settings):
    user = idn.add_user(settings, "carol", "viewer", PASSWORD)
    assert idn.current_user(settings, user.id).who == "carol"
    idn.disable_user(settings, "carol")
    with pytest.raises(idn.Unauthenticated, match="wrong user name or password"):
        idn.login(settings, "carol", PASSWORD)
    with pytest.raises(idn.Unauthenticated):
        idn.current_user(settings, user.id)


def test_only_an_admin_manages_and_a_user_may_change_their_own_password(settings):
    idn.add_user(settings, "dave", "sender", PASSWORD)
    dave = idn.login(settings, "dave", PASSWORD)
    with pytest.raises(idn.Forbidden):
        idn.create_key(settings, "crm", "viewer", actor=dave)
    with pytest.raises(idn.Forbidden):
        idn.add_user(settings, "eve", "admin", PASSWORD, actor=dave)
    with pytest.raises(idn.Forbidden):
        idn.purge(settings, 30, actor=dave)
    idn.set_password(settings, "dave", "dave's new phrase", actor=dave)
    idn.add_user(settings, "erin", "viewer", PASSWORD)
    with pytest.raises(idn.Forbidden):
        idn.set_password(settings, "erin", "dave was here!", actor=dave)


def test_api_keys_are_random_shown_once_and_stored_as_sha256(settings):
    made = idn.create_key(settings, "crm", "sender", expires_days=30, daily_cap_rial="10,000")
    key = made.key
    assert key.startswith("smsd_") and len(key) == len("smsd_") + 43  # 32 bytes, base64url
    assert set(made.as_json()) == {"key", "name", "role", "expires_at", "webhook_secret"}
    other = idn.create_key(settings, "shop", "viewer").key
    assert key != other
    store = idn.identity_store(settings)
    with store.engine.connect() as conn:
        row = conn.execute(select(api_keys_t)).first()
    assert row.key_hash == hashlib.sha256(key.encode()).hexdigest() and row.hint == key[-5:]
    assert key not in str(tuple(row))
    listed = {k.name: k.as_json() for k in idn.list_keys(settings)}
    assert listed["crm"]["key"] == f"smsd_…{key[-5:]}" and key not in str(listed)
    assert listed["crm"]["daily_cap_rial"] == 10_000
    actor = idn.authenticate_key(settings, key)
    assert (actor.who, actor.role, actor.key_id) == ("key:crm", Role.SENDER, made.record.id)
    assert actor.principal == f"key:{made.record.id}"
    for bad in ("", None, "Bearer " + key, key[:-1], key + "x", "smsd_" + "A" * 43):
        with pytest.raises(idn.Unauthenticated) as caught:
            idn.authenticate_key(settings, bad)
        assert key not in str(caught.value)


def test_an_expired_or_revoked_key_is_refused(settings):
    soon = idn.create_key(settings, "soon", "viewer", expires_days=1)
    idn.authenticate_key(settings, soon.key)
    store = idn.identity_store(settings)
    with store.engine.begin() as conn:
        past = datetime.now(UTC) - timedelta(seconds=1)
        conn.execute(update(api_keys_t).where(api_keys_t.c.name == "soon").values(expires_at=past))
    with pytest.raises(idn.Unauthenticated):
        idn.authenticate_key(settings, soon.key)
    crm = idn.create_key(settings, "crm", "sender")
    idn.authenticate_key(settings, crm.key)
    assert idn.revoke_key(settings, "crm").revoked_at is not None
    with pytest.raises(idn.Unauthenticated):
        idn.authenticate_key(settings, crm.key)
    with pytest.raises(BadInput, match="no key named"):
        idn.revoke_key(settings, "nope")
    with pytest.raises(BadInput, match="exists already"):
        idn.create_key(settings, "crm", "sender")


LOGIN_SCRIPT = """
import sys
from dispatcher.app import identity as idn
from dispatcher.config import AppSettings
settings = AppSettings.from_env({"SMSDISPATCH_DATABASE_URL": sys.argv[1]})
for password in sys.argv[3:]:
    try:
        idn.login(settings, "alice", password, sys.argv[2] or None)
        print("ok")
    except idn.Throttled as exc:
        print("throttled", exc.retry_after_seconds)
    except idn.Unauthenticated:
        print("failed")
"""


def _logins(url: str, client: str, *passwords: str) -> list[str]:
    done = subprocess.run(
        [sys.executable, "-c", LOGIN_SCRIPT, url, client, *passwords],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    for password in passwords:  # the log says who and from where, never the password tried
        assert password not in done.stderr
    return done.stdout.split("\n")[:-1]


def test_ten_failures_across_two_processes_lock_the_account_for_fifteen_minutes(settings, database_url):
    idn.add_user(settings, "alice", "sender", PASSWORD)
    assert _logins(database_url, "10.0.0.1", *["guess-one-xyz"] * 5, PASSWORD) == ["failed"] * 5 + ["ok"]
    assert _logins(database_url, "10.0.0.2", *["guess-two-xyz"] * 5) == ["failed"] * 5
    # the tenth failure was in the other process: the right password is refused now, from any address
    first = _logins(database_url, "10.0.0.3", PASSWORD)
    assert first[0].startswith("throttled") and 14 * 60 < int(first[0].split()[1]) <= 15 * 60
    with pytest.raises(idn.Throttled):
        idn.login(settings, "alice", PASSWORD, None)
    # each attempt recorded, and the throttled ones do not extend the lockout
    store = idn.identity_store(settings)
    now = datetime.now(UTC)
    assert len(store.failures_since(now - timedelta(hours=1), username="alice")) == 10
    later = now + PER_ACCOUNT.lockout + timedelta(seconds=5)
    assert (
        locked_for(store.failures_since(now - timedelta(hours=1), username="alice"), later, PER_ACCOUNT)
        is None
    )


def test_thirty_failures_from_one_address_lock_that_address(settings, database_url):
    idn.add_user(settings, "alice", "sender", PASSWORD)
    idn.add_user(settings, "bob", "sender", PASSWORD)
    store = idn.identity_store(settings)
    now = datetime.now(UTC)
    for i in range(29):  # 29 failures spread over other accounts from one address
        store.record_attempt(f"user{i % 5}", "10.9.9.9", "failed", now - timedelta(minutes=5))
    assert _logins(database_url, "10.9.9.9", "guess-three-xyz", PASSWORD)[0] == "failed"
    assert _logins(database_url, "10.9.9.9", PASSWORD)[0].startswith("throttled")
    assert _logins(database_url, "10.9.9.8", PASSWORD) == ["ok"]  # another address is not locked
    assert idn.login(settings, "bob", PASSWORD, "10.9.9.8").who == "bob"
