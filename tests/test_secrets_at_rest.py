"""No secret in clear in the database or a log (README "Security"): the secrets this test uses (a user's
password, a wrong password tried at login, an API key, the provider's API key) are looked for in the whole
SQLite file (and its WAL) or a `pg_dump` of the PostgreSQL database, and in every line the commands and
the identity use cases printed. The key printed once by `keys create` is the one answer allowed to hold it.
"""

from __future__ import annotations

import logging
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from sqlalchemy.engine import make_url

from dispatcher.app import identity as idn
from dispatcher.config import AppSettings
from dispatcher.demo.messy import write as write_demo_csv

PASSWORD = "tulip-Orbit-7731-quartz"
WRONG = "marble-Lantern-0042-fig"


def _run(env: dict[str, str], cwd: Path, *args: str, stdin: str | None = None) -> subprocess.CompletedProcess:
    done = subprocess.run(
        [sys.executable, "-m", "dispatcher", *args],
        env=env,
        cwd=cwd,
        input=stdin,
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert done.returncode == 0, done.stderr
    return done


def _database_bytes(url: str) -> bytes:
    parsed = make_url(url)
    if parsed.drivername.startswith("sqlite"):
        files = [Path(parsed.database), Path(parsed.database + "-wal")]
        return b"".join(f.read_bytes() for f in files if f.exists())
    if shutil.which("pg_dump") is None:
        pytest.skip("pg_dump is not installed")
    libpq = parsed.set(drivername="postgresql").render_as_string(hide_password=False)
    return subprocess.run(
        ["pg_dump", "--data-only", libpq], capture_output=True, check=True, timeout=120
    ).stdout


def test_no_secret_in_the_database_or_the_logs(database_url, sandbox_environ, tmp_path, caplog):
    provider_key = sandbox_environ["SMSDISPATCH_GHASEDAK_APIKEY"]
    env = {**os.environ, **sandbox_environ, "SMSDISPATCH_DATABASE_URL": database_url}
    env.pop("SMSDISPATCH_BROKER_URL", None)
    logs = [
        _run(
            env,
            tmp_path,
            "users",
            "add",
            "alice",
            "--role",
            "sender",
            "--password-stdin",
            stdin=PASSWORD + "\n",
        )
    ]
    made = _run(env, tmp_path, "keys", "create", "--name", "crm", "--role", "sender", "--json")
    key = made.stdout.split('"key": "')[1].split('"')[0]
    assert key.startswith("smsd_")
    logs.append(made.stderr)  # its stdout is the one answer that shows the key
    src = tmp_path / "list.csv"
    write_demo_csv(src, 20, seed=3)
    logs.append(
        _run(env, tmp_path, "send", str(src), "--provider", "ghasedak", "--message", "Hi {name}", "--yes")
    )
    logs.append(_run(env, tmp_path, "users", "list", "--json"))
    logs.append(_run(env, tmp_path, "keys", "list", "--json"))
    settings = AppSettings.from_env({**sandbox_environ, "SMSDISPATCH_DATABASE_URL": database_url})
    with caplog.at_level(logging.DEBUG):
        with pytest.raises(idn.Unauthenticated) as wrong:
            idn.login(settings, "alice", WRONG, "10.1.2.3")
        assert idn.login(settings, "alice", PASSWORD, "10.1.2.3").who == "alice"
        assert idn.authenticate_key(settings, key).who == "key:crm"
        with pytest.raises(idn.Unauthenticated) as bad_key:
            idn.authenticate_key(settings, key[:-1] + "Z")
        idn.revoke_key(settings, "crm")
    printed = "\n".join(x if isinstance(x, str) else x.stdout + x.stderr for x in logs)
    printed += caplog.text + str(wrong.value) + str(bad_key.value)
    assert "login failed for 'alice'" in caplog.text  # the attempts are logged...
    dumped = _database_bytes(database_url)
    assert b"alice" in dumped and b"key created" in dumped  # ...and the dump is the real database
    for secret in (PASSWORD, WRONG, key, key[:-1] + "Z", provider_key):
        assert secret not in printed, "a secret in a log or an answer"
        assert secret.encode() not in dumped, "a secret in clear in the database"
