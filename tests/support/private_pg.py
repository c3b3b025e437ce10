"""A PostgreSQL server of a test's own (initdb + pg_ctl on a free port), to stop and start again; never
the machine's shared one. Run as the `postgres` user when the tests run as root (initdb refuses root)."""

from __future__ import annotations

import contextlib
import glob
import os
import shutil
import subprocess
import tempfile
from pathlib import Path

import pytest

from tests.support.cluster import free_port
from tests.support.services import IN_CI


def _bin() -> Path | None:
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
    return Path(found[-1]).parent if found else None


class PrivatePostgres:
    """`with PrivatePostgres() as pg:` a trusted server on 127.0.0.1:pg.port; `stop()` / `start()` it."""

    def __init__(self) -> None:
        self.bin = _bin()
        if self.bin is None:
            message = "PostgreSQL's initdb/pg_ctl are not installed (/usr/lib/postgresql/*/bin)"
            pytest.fail(message) if IN_CI else pytest.skip(message)
        self.port = free_port()
        self.dir = Path(tempfile.mkdtemp(prefix="smsd-pg-"))
        self.data = self.dir / "data"
        self.as_postgres = os.geteuid() == 0

    @property
    def url(self) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/postgres"

    def _run(self, *args: str) -> None:
        cmd = [str(self.bin / args[0]), *args[1:]]
        if self.as_postgres:
            cmd = ["runuser", "-u", "postgres", "--", *cmd]
        done = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
        assert done.returncode == 0, f"{args[0]} failed: {done.stdout}{done.stderr}"

    def init(self) -> None:
        if self.as_postgres:
            shutil.chown(self.dir, "postgres", "postgres")
        self._run("initdb", "-D", str(self.data), "-U", "postgres", "--auth=trust", "-E", "UTF8")

    def start(self) -> None:
        options = f"-p {self.port} -c listen_addresses=127.0.0.1 -c unix_socket_directories={self.dir}"
        self._run("pg_ctl", "-D", str(self.data), "-o", options, "-l", str(self.dir / "log"), "-w", "start")

    def stop(self) -> None:
        self._run("pg_ctl", "-D", str(self.data), "-m", "fast", "-w", "stop")

    def __enter__(self) -> PrivatePostgres:
        self.init()
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        with contextlib.suppress(AssertionError):  # already stopped
            self.stop()
        shutil.rmtree(self.dir, ignore_errors=True)
