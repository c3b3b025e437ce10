"""`smsdispatch contacts push|groups|list` as a user runs them (subprocess), against the sandbox's
phonebooks over real HTTP, on SQLite and PostgreSQL. The sandbox's record of every number it added
(`dispatcher.sandbox.phonebook.book(state).adds`) is the witness of "each number exactly once"."""

from __future__ import annotations

import csv
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from campaigns.load import RecipientLoader
from campaigns.store import Store
from dispatcher.demo import messy
from dispatcher.sandbox.core import Fault, FaultKind, Rename, SandboxState, digits, sandbox_env
from dispatcher.sandbox.phonebook import book
from dispatcher.sandbox.server import RunningSandbox, start

ROOT = Path(__file__).resolve().parents[1]
# Seed 001 (Amoot ContactCreate): every parameter after Token, in the seed's order.
AMOOT_SEED_FIELDS = [
    "ContactGroupID",
    "Active",
    "Mobile",
    "FName",
    "LName",
    "GenderType",
    "CompanyTitle",
    "JobTitle",
    "Email",
    "CityName",
    "AddressText",
    "BornDate",
    "AnniversaryDate",
    "CustomText1",
    "CustomText2",
    "CustomText3",
    "CustomText4",
    "CustomText5",
    "CustomText6",
    "CustomDate1",
    "CustomDate2",
    "CustomDate3",
    "Labels",
]
# Seed 004 (Ghasedak contact groups): each method's parameters (apikey is the header).
GHASEDAK_SEED_FIELDS = {
    "contact/group/new": {"name", "parent"},
    "contact/group/addnumber": {"groupid", "number", "firstname", "lastname", "email"},
    "contact/group/list": {"parent"},
    "contact/group/listnumber": {"groupid", "offset", "page"},
}


@pytest.fixture
def phonebooks() -> RunningSandbox:
    running = start(SandboxState(seed=7))
    try:
        yield running
    finally:
        running.stop()


def environ(sandbox: RunningSandbox, database_url: str, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SMSDISPATCH_")}
    env.update(sandbox_env(sandbox.url))
    env.update(
        PYTHONPATH=str(ROOT),
        SMSDISPATCH_DATABASE_URL=database_url,
        SMSDISPATCH_GHASEDAK_CONTACT_LIST_GRACE="0",
        SMSDISPATCH_AMOOT_TIMEOUT="5,5",
        SMSDISPATCH_GHASEDAK_TIMEOUT="5,5",
    )
    env.update(extra)
    return env


def command(*args: str) -> list[str]:
    return [sys.executable, "-m", "dispatcher", "contacts", *args]


def run(env: dict[str, str], cwd: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(command(*args), env=env, cwd=cwd, capture_output=True, text=True, timeout=300)


def loaded_numbers(path: Path) -> set[str]:
    """What `send` would load from the file: the numbers a push must leave in the phonebook once each."""
    loader = RecipientLoader(path)
    return {digits(p) for frame in loader.blocks() for p in frame["phone"]}


def kill_halfway(
    env: dict[str, str],
    cwd: Path,
    args: tuple[str, ...],
    added: callable,
    half: int,
    sig: signal.Signals = signal.SIGKILL,
) -> None:
    """Start the push, send `sig` once the sandbox holds `half` numbers, and check it had not finished
    (SIGKILL: killed; SIGINT, Ctrl-C: exit 130)."""
    proc = subprocess.Popen(command(*args), env=env, cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 240
    while added() < half:
        assert proc.poll() is None, proc.communicate()
        assert time.monotonic() < deadline, "the push did not get halfway"
        time.sleep(0.01)
    proc.send_signal(sig)
    _, stderr = proc.communicate(timeout=30)
    assert proc.returncode == (-signal.SIGKILL if sig == signal.SIGKILL else 130), stderr
    if sig == signal.SIGINT:
        assert b"run the same command again to continue" in stderr


def ledger(database_url: str, provider: str, book_key: str) -> dict[str, int]:
    """The push ledger's counts for the provider's (only) account and `book_key`."""
    store = Store.from_url(database_url)
    try:
        with store.engine.connect() as conn:
            accounts = [a for (a,) in conn.exec_driver_sql("SELECT DISTINCT account FROM contact_pushes")]
        (account,) = [a for a in accounts if a.startswith(provider + ":")]
        return {str(k): v for k, v in store.contacts(account, book_key).counts().items()}
    finally:
        store.engine.dispose()


@pytest.mark.parametrize("sig", [signal.SIGKILL, signal.SIGINT], ids=["SIGKILL", "Ctrl-C"])
def test_ghasedak_push_killed_halfway_and_run_again_adds_every_number_once(
    tmp_path, database_url, phonebooks, sig
):
    if sig == signal.SIGINT and "postgres" in database_url:
        pytest.skip("Ctrl-C leaves the ledger as SIGKILL does; once is enough")
    csv_path = messy.write(tmp_path / "list.csv", 2000)
    wanted = loaded_numbers(csv_path)
    phonebooks.state.latency_ms = 150  # 20 calls of 100 numbers: about three seconds
    env = environ(phonebooks, database_url)
    contacts = book(phonebooks.state)
    args = ("push", "list.csv", "--provider", "ghasedak", "--group", "customers")
    kill_halfway(env, tmp_path, args, lambda: len(contacts.adds), len(wanted) // 2, sig)
    done = run(env, tmp_path, *args)
    assert done.returncode == 0, done.stderr
    assert lock_files(tmp_path) == []  # the killed push's lock file (SQLite) removed by the run that followed
    group = contacts.group_id("customers")
    counted = contacts.count("ghasedak", group)
    assert set(counted) == wanted
    assert set(counted.values()) == {1}  # never a number twice
    assert ledger(database_url, "ghasedak", group)["added"] == len(wanted)
    assert [g for g in contacts.groups.values() if g["name"] == "customers"] != [] and len(
        contacts.groups
    ) == 1
    for _, path, names in contacts.calls:  # the seed's parameter names, and no other
        assert set(names) <= GHASEDAK_SEED_FIELDS[path], (path, names)
    adds = [names for _, path, names in contacts.calls if path == "contact/group/addnumber"]
    assert adds and all({"groupid", "number", "firstname"} <= set(n) for n in adds)
    assert any(path == "contact/group/listnumber" for _, path, _ in contacts.calls)  # the crash was settled


@pytest.mark.parametrize("duplicate", ["", "Contact_Duplicate"], ids=["no-listing", "duplicate-known"])
def test_amoot_push_killed_halfway_and_run_again_never_adds_a_number_twice(
    tmp_path, database_url, phonebooks, duplicate
):
    if duplicate and "postgres" in database_url:
        pytest.skip("the setting's path is the same on both databases; one is enough")
    csv_path = messy.write(tmp_path / "list.csv", 2000)
    wanted = loaded_numbers(csv_path)
    phonebooks.state.latency_ms = 3
    contacts = book(phonebooks.state)
    contacts.amoot_duplicate = duplicate or None
    env = environ(phonebooks, database_url, SMSDISPATCH_AMOOT_CONTACT_DUPLICATE=duplicate)
    args = ("push", "list.csv", "--provider", "amoot", "--label", "مشتری", "--label", "1405")
    kill_halfway(env, tmp_path, args, lambda: len(contacts.adds), len(wanted) // 2)
    done = run(env, tmp_path, *args)
    counted = contacts.count("amoot")
    assert set(counted.values()) == {1}  # never a number twice
    counts = ledger(database_url, "amoot", "")
    if duplicate:  # an interrupted add is simply made again: Amoot answers the duplicate
        assert done.returncode == 0, done.stderr
        assert set(counted) == wanted and counts["added"] == len(wanted)
    else:  # no listing: the number in flight when killed is held unknown, not added a second time
        assert counts["unknown"] <= 1 and counts["added"] + counts["unknown"] == len(wanted)
        assert len(wanted) - 1 <= len(counted) <= len(wanted)
        assert done.returncode == (1 if counts["unknown"] else 0), done.stderr
        if counts["unknown"]:
            assert "unknown" in done.stderr and "--retry-unknown" in done.stderr
    for provider, path, names in contacts.calls:
        assert (provider, path) == ("amoot", "ContactCreate")
        assert list(names) == AMOOT_SEED_FIELDS  # every field of seed 001, in its order
    first = next(a for a in contacts.adds)
    assert first.fields["ContactGroupID"] == "0" and first.fields["Active"] == "true"
    assert first.fields["Labels"] == "مشتری,1405" and first.fields["FName"]
    assert first.fields["Mobile"].startswith("09")


def lock_files(folder: Path) -> list[str]:
    """Lock files beside a SQLite database in `folder` (a push's lock is a file only there)."""
    return sorted(p.name for p in folder.iterdir() if p.name.endswith(".lock"))


def write_rows(path: Path, rows: list[tuple[str, ...]]) -> Path:
    with path.open("w", encoding="utf-8", newline="") as fh:
        csv.writer(fh).writerows([("mobile", "first_name", "last_name", "email", "city"), *rows])
    return path


ROWS = [
    ("09121110001", "علی", "رضایی", "ali@example.com", "تهران"),
    ("09121110002", "", "", "", "شیراز"),  # no name: Amoot refuses it (FirstNameOrLastName_Empty)
    ("09121110003", "سارا", "احمدی", "", "تبریز"),
    ("0912 111 0001", "علی", "رضایی", "", ""),  # a duplicate of the first row: the loader's reject
]


def test_a_refused_number_lands_in_the_rejects_file_with_the_providers_reason(tmp_path, phonebooks):
    env = environ(phonebooks, f"sqlite:///{tmp_path / 'store.db'}")
    write_rows(tmp_path / "people.csv", ROWS)
    contacts = book(phonebooks.state)
    amoot = run(env, tmp_path, "push", "people.csv", "--provider", "amoot")
    contacts.refused.add("09121110003")  # from now on the provider's filter refuses this one (code 8)
    ghasedak = run(env, tmp_path, "push", "people.csv", "--provider", "ghasedak", "--group", "g", "--json")
    assert amoot.returncode == 0 and ghasedak.returncode == 0, (amoot.stderr, ghasedak.stderr)
    summary = json.loads(ghasedak.stdout)
    assert summary["counts"]["added"] == 2 and summary["counts"]["failed"] == 1
    assert summary["mapped"] == {"firstname": "first_name", "lastname": "last_name", "email": "email"}
    rejects = list(csv.reader((tmp_path / "people.contacts.rejects.csv").open(encoding="utf-8")))
    reasons = {(row[0], row[1]): row[2] for row in rejects[1:]}
    assert reasons[("5", "0912 111 0001")].startswith("duplicate of row 2")
    assert "code 8" in reasons[("4", "09121110003")] and reasons[("4", "09121110003")].startswith(
        "ghasedak code 8"
    )
    # The Amoot run's rejects file was rewritten by the Ghasedak run's load; its refusal is in the ledger:
    assert contacts.count("amoot") == {"989121110001": 1, "989121110003": 1}
    contacts.refused.clear()
    amoot_again = run(env, tmp_path, "push", "people.csv", "--provider", "amoot")
    rejects = list(csv.reader((tmp_path / "people.contacts.rejects.csv").open(encoding="utf-8")))
    assert any(r[0] == "3" and "FirstNameOrLastName_Empty" in r[2] for r in rejects), rejects
    assert amoot_again.returncode == 0 and contacts.count("amoot") == {"989121110001": 1, "989121110003": 1}
    added = next(a for a in contacts.adds if a.provider == "amoot")
    assert (added.fields["FName"], added.fields["LName"], added.fields["Email"]) == (
        "علی",
        "رضایی",
        "ali@example.com",
    )
    assert added.fields["CityName"] == "تهران"  # mapped by its column name


def test_an_interrupted_add_is_settled_by_ghasedaks_listing_in_the_same_run(tmp_path, phonebooks):
    env = environ(phonebooks, f"sqlite:///{tmp_path / 'store.db'}", SMSDISPATCH_GHASEDAK_CONTACT_BATCH="2")
    write_rows(tmp_path / "people.csv", ROWS)
    phonebooks.state.add_fault(Fault("ghasedak", "contacts", FaultKind.ACCEPT_THEN_HTTP, status=502))
    done = run(env, tmp_path, "push", "people.csv", "--provider", "ghasedak", "--group", "g", "--json")
    assert done.returncode == 0, done.stderr
    summary = json.loads(done.stdout)
    assert summary["counts"]["added"] == 3 and summary["found"] == 2
    contacts = book(phonebooks.state)
    assert contacts.count("ghasedak", contacts.group_id("g")) == {
        "989121110001": 1,
        "989121110002": 1,
        "989121110003": 1,
    }


LISTING_WITHOUT_NUMBERS = Rename("ghasedak", "contact/group/listnumber", {"number": "mobile"})


def test_an_interrupted_add_with_an_unreadable_listing_is_held_never_added_again(tmp_path, phonebooks):
    """The listing's rows have no `number` (a renamed field): it proves no number absent from the group, so
    the numbers of the interrupted add are held `unknown`, not pushed a second time."""
    env = environ(phonebooks, f"sqlite:///{tmp_path / 'store.db'}", SMSDISPATCH_GHASEDAK_CONTACT_BATCH="2")
    write_rows(tmp_path / "people.csv", ROWS)
    phonebooks.state.add_fault(Fault("ghasedak", "contacts", FaultKind.ACCEPT_THEN_HTTP, status=502))
    phonebooks.state.add_rename(LISTING_WITHOUT_NUMBERS)
    done = run(env, tmp_path, "push", "people.csv", "--provider", "ghasedak", "--group", "g", "--json")
    assert done.returncode == 1 and "2 numbers unknown" in done.stderr, done.stderr
    summary = json.loads(done.stdout)
    assert (summary["counts"]["added"], summary["counts"]["unknown"], summary["held"]) == (1, 2, 2)
    contacts = book(phonebooks.state)
    assert contacts.count("ghasedak", contacts.group_id("g")) == {
        "989121110001": 1,
        "989121110002": 1,
        "989121110003": 1,
    }
    assert done.stderr.count("rows could not be read") == 1  # said once


def test_a_group_whose_listing_cannot_be_read_gets_no_number_that_may_be_there(tmp_path, phonebooks):
    """Pushing into a group that existed before reads its listing so that numbers already there are not
    added again; a listing with unreadable rows cannot say, so nothing is added and the push says why."""
    env = environ(phonebooks, f"sqlite:///{tmp_path / 'store.db'}")
    write_rows(tmp_path / "first.csv", ROWS[:2])
    assert run(env, tmp_path, "push", "first.csv", "--provider", "ghasedak", "--group", "g").returncode == 0
    write_rows(tmp_path / "more.csv", ROWS[:3])
    other = environ(phonebooks, f"sqlite:///{tmp_path / 'other.db'}")  # another store: its ledger is empty
    phonebooks.state.add_rename(LISTING_WITHOUT_NUMBERS)
    done = run(other, tmp_path, "push", "more.csv", "--provider", "ghasedak", "--group", "g")
    assert done.returncode == 1
    assert (
        "2 rows of the group's listing could not be read" in done.stderr
        and "nothing was added" in done.stderr
    )
    contacts = book(phonebooks.state)
    assert contacts.count("ghasedak", contacts.group_id("g")) == {"989121110001": 1, "989121110002": 1}


def test_an_interrupted_amoot_add_is_held_unknown_never_added_again_unless_asked(tmp_path, phonebooks):
    env = environ(phonebooks, f"sqlite:///{tmp_path / 'store.db'}")
    write_rows(tmp_path / "people.csv", ROWS)
    phonebooks.state.add_fault(Fault("amoot", "contacts", FaultKind.ACCEPT_THEN_HTTP, status=502))
    first = run(env, tmp_path, "push", "people.csv", "--provider", "amoot", "--json")
    assert first.returncode == 1 and "1 number unknown" in first.stderr and "--retry-unknown" in first.stderr
    summary = json.loads(first.stdout)
    assert (summary["counts"]["added"], summary["counts"]["failed"], summary["counts"]["unknown"]) == (
        1,
        1,
        1,
    )
    contacts = book(phonebooks.state)
    assert contacts.count("amoot") == {"989121110001": 1, "989121110003": 1}
    again = run(env, tmp_path, "push", "people.csv", "--provider", "amoot")
    assert again.returncode == 1 and contacts.count("amoot") == {"989121110001": 1, "989121110003": 1}
    # Told how Amoot answers a duplicate, the held number is pushed again and that answer counts as added.
    contacts.amoot_duplicate = "Contact_Duplicate"
    env["SMSDISPATCH_AMOOT_CONTACT_DUPLICATE"] = "Contact_Duplicate"
    known = run(env, tmp_path, "push", "people.csv", "--provider", "amoot", "--json")
    assert known.returncode == 0, known.stderr
    assert json.loads(known.stdout)["counts"]["added"] == 2
    assert contacts.count("amoot") == {"989121110001": 1, "989121110003": 1}


def test_columns_are_mapped_by_name_unless_mapped_by_hand():
    from dispatcher.app.contacts import resolve_mapping
    from workers.providers.phonebook.amoot import FIELDS

    columns = ["نام", "Last Name", "E-mail", "شهر", "CustomText1", "note"]
    assert resolve_mapping(columns, FIELDS, ["CustomText2=note", "fname=E-mail"]) == {
        "CustomText2": "note",
        "FName": "E-mail",
        "LName": "Last Name",
        "CityName": "شهر",
        "CustomText1": "CustomText1",
    }


def test_groups_and_list(tmp_path, phonebooks):
    env = environ(phonebooks, f"sqlite:///{tmp_path / 'store.db'}")
    write_rows(tmp_path / "people.csv", ROWS)
    assert (
        run(env, tmp_path, "push", "people.csv", "--provider", "ghasedak", "--group", "vip").returncode == 0
    )
    groups = run(env, tmp_path, "groups", "--provider", "ghasedak", "--json")
    assert groups.returncode == 0
    assert json.loads(groups.stdout) == [
        {"id": book(phonebooks.state).group_id("vip"), "name": "vip", "parent": "0"}
    ]
    listed = run(env, tmp_path, "list", "--provider", "ghasedak", "--group", "vip", "--json")
    assert listed.returncode == 0, listed.stderr
    rows = json.loads(listed.stdout)["contacts"]
    assert {r["phone"] for r in rows} == {"+989121110001", "+989121110002", "+989121110003"}
    assert {
        "phone": "+989121110001",
        "firstname": "علی",
        "lastname": "رضایی",
        "email": "ali@example.com",
    } in rows
    people = run(env, tmp_path, "list", "--provider", "ghasedak", "--group", "vip")
    assert "09121110001" in people.stdout and "3 numbers" in people.stdout
    missing = run(env, tmp_path, "list", "--provider", "ghasedak", "--group", "nope")
    assert missing.returncode == 2 and missing.stderr.startswith("error: ghasedak has no group 'nope'")


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (("push", "people.csv", "--provider", "negin"), "--provider negin: no phonebook"),
        (("push", "people.csv", "--provider", "amoot", "--map", "FName"), "write it field=column"),
        (("push", "people.csv", "--provider", "amoot", "--map", "Nickname=city"), "no field 'Nickname'"),
        (
            ("push", "people.csv", "--provider", "ghasedak", "--group", "g", "--map", "email=mail"),
            "no column 'mail'",
        ),
        (("push", "people.csv", "--provider", "ghasedak"), "give --group NAME"),
        (("push", "people.csv", "--provider", "amoot", "--group", "g"), "no groups"),
        (("push", "people.csv", "--provider", "amoot", "--label", "a,b"), "--label 'a,b'"),
        (("groups", "--provider", "amoot"), "no groups"),
    ],
)
def test_bad_input_is_one_line_and_exit_2(tmp_path, phonebooks, args, says):
    env = environ(phonebooks, f"sqlite:///{tmp_path / 'store.db'}")
    write_rows(tmp_path / "people.csv", ROWS)
    done = run(env, tmp_path, *args)
    assert done.returncode == 2
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and says in lines[0], lines
    assert book(phonebooks.state).adds == []


def test_a_second_push_into_the_same_book_while_one_runs_is_refused(tmp_path, database_url, phonebooks):
    from workers.providers.phonebook.amoot import AmootPhonebook

    env = environ(phonebooks, database_url)
    write_rows(tmp_path / "people.csv", ROWS)
    store = Store.from_url(database_url)
    store.migrate()
    account = AmootPhonebook.load_settings(env).account_key
    try:
        with store.contacts(account, "").lock():
            busy = run(env, tmp_path, "push", "people.csv", "--provider", "amoot")
            held = lock_files(tmp_path)
        assert lock_files(tmp_path) == []  # let go: its file removed
    finally:
        store.engine.dispose()
    assert busy.returncode == 2 and "another contacts push into amoot phonebook is running" in busy.stderr
    assert len(held) == (0 if "postgres" in database_url else 1)  # the refused push left the holder's file
    assert book(phonebooks.state).adds == []
    done = run(env, tmp_path, "push", "people.csv", "--provider", "amoot")
    assert done.returncode == 0, done.stderr  # the lock is gone
    assert lock_files(tmp_path) == []  # and the push left no file behind
    assert run(env, tmp_path, "groups", "--provider", "ghasedak").returncode == 0
    assert lock_files(tmp_path) == []


def test_a_lock_file_removed_under_a_waiting_push_is_not_taken_for_the_lock(tmp_path, monkeypatch):
    """The lock file is removed when a push ends. A push that opened it just before (and so would flock a
    file no longer there) must lock the file now at the path instead; else a third push, making a new
    file, would run beside it. The interleaving is forced at the second push's `open`."""
    from campaigns.store import contacts as ledger_module

    path = tmp_path / "store.db.contacts-0000abcd.lock"
    first = ledger_module._file_lock(path)
    first.__enter__()
    real_open = os.open

    def open_then_first_ends(*args, **kwargs):  # noqa: ANN002, ANN003
        fd = real_open(*args, **kwargs)
        if path.exists() and not opened:
            opened.append(fd)
            first.__exit__(None, None, None)  # the first push ends: its file removed, its lock let go
        return fd

    opened: list[int] = []
    monkeypatch.setattr(ledger_module.os, "open", open_then_first_ends)
    with ledger_module._file_lock(path):
        monkeypatch.setattr(ledger_module.os, "open", real_open)
        assert opened and path.exists()  # the second push holds the file at the path
        with pytest.raises(ledger_module.PushBusy), ledger_module._file_lock(path):
            pass  # a third push is refused
    assert not path.exists()


def test_transient_errors_back_off_and_an_account_error_stops_with_nothing_lost(tmp_path, phonebooks):
    env = environ(phonebooks, f"sqlite:///{tmp_path / 'store.db'}", SMSDISPATCH_GHASEDAK_CONTACT_BATCH="1")
    write_rows(tmp_path / "people.csv", ROWS)
    contacts = book(phonebooks.state)
    phonebooks.state.add_fault(Fault("ghasedak", "contacts", FaultKind.TRANSIENT, times=2))
    done = run(env, tmp_path, "push", "people.csv", "--provider", "ghasedak", "--group", "g", "--json")
    assert done.returncode == 0, done.stderr
    assert contacts.count("ghasedak", contacts.group_id("g")) == {
        "989121110001": 1,
        "989121110002": 1,
        "989121110003": 1,
    }
    phonebooks.state.add_fault(Fault("amoot", "contacts", FaultKind.CODE, code="CreditNotEnough"))
    stopped = run(env, tmp_path, "push", "people.csv", "--provider", "amoot")
    assert stopped.returncode == 1 and "CreditNotEnough" in stopped.stderr
    assert contacts.count("amoot") == {}
    resumed = run(env, tmp_path, "push", "people.csv", "--provider", "amoot", "--json")
    assert resumed.returncode == 0, resumed.stderr
    assert json.loads(resumed.stdout)["counts"] == {
        "pending": 0,
        "pushing": 0,
        "added": 2,
        "failed": 1,
        "unknown": 0,
    }
    assert contacts.count("amoot") == {"989121110001": 1, "989121110003": 1}
