"""`smsdispatch optouts add|remove` and the listing, as a user runs them (subprocess, SQLite)."""

from __future__ import annotations

import json
import os
import subprocess
import sys

from campaigns.store import Store


def run(tmp_path, *args: str) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SMSDISPATCH_")}
    env["SMSDISPATCH_DATABASE_URL"] = f"sqlite:///{tmp_path / 'store.db'}"
    return subprocess.run(
        [sys.executable, "-m", "dispatcher", *args],
        env=env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_add_list_remove(tmp_path):
    assert (
        run(
            tmp_path, "optouts", "add", "09121234567", "+98 935 123 4567", "--reason", "called the shop"
        ).returncode
        == 0
    )
    listed = json.loads(run(tmp_path, "optouts", "--json").stdout)
    assert listed["added"] is None
    assert {(s["phone"], s["reason"]) for s in listed["suppressions"]} == {
        ("+989121234567", "opted out: called the shop"),
        ("+989351234567", "opted out: called the shop"),
    }
    done = run(tmp_path, "optouts", "remove", "۰۹۱۲۱۲۳۴۵۶۷")
    assert done.returncode == 0 and "1 removed" in done.stdout
    store = Store.from_url(f"sqlite:///{tmp_path / 'store.db'}")
    assert set(store.suppressed()) == {"+989351234567"}


def test_a_bad_number_is_bad_input_and_nothing_is_written(tmp_path):
    done = run(tmp_path, "optouts", "add", "09121234567", "12345")
    assert done.returncode == 2
    assert done.stderr.strip().splitlines() == [
        "error: '12345' is too short; give Iranian mobile numbers such as 09121234567"
    ]
    assert json.loads(run(tmp_path, "optouts", "--json").stdout)["suppressions"] == []
