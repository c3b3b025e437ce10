"""A real distributed cluster for tests: a fresh PostgreSQL database, the sandbox on a free port (in this
process, so tests script its faults and read its record directly), and `python -m dispatcher worker|beat`
subprocesses on a broker. Shared by tests/test_distributed.py and tests/test_faults.py.

The witness of every test is the sandbox's own record of what it accepted: `assert_witnessed` checks
that each number went out at most once and that the store agrees with the sandbox number by number.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from campaigns.states import AWAITING_REPORT, FINAL_RECIPIENT, RecipientState
from campaigns.store import Store
from dispatcher.demo.messy import write as write_demo_csv
from dispatcher.sandbox.core import AcceptedMessage, SandboxState, digits, sandbox_env
from dispatcher.sandbox.server import start
from tests.support.counters import assert_counts_agree
from tests.support.services import IN_CI, drop_postgres_db, fresh_postgres_db

EXE = [sys.executable, "-m", "dispatcher"]
R = RecipientState
# Store states only a number the provider took can be in (sent, then what the delivery report said).
ONLY_IF_SENT = frozenset(AWAITING_REPORT | {R.DELIVERED, R.UNDELIVERED, R.EXPIRED})
# ... and those a delivery report may also give (failed, blacklisted), which a refusal gives too.
WENT_OUT = ONLY_IF_SENT | {R.FAILED, R.BLACKLISTED}
# Default short settings: every wait in a test is a few seconds, not the production minutes.
FAST_ENV = {
    "SMSDISPATCH_POLL_INTERVALS": "0.5,1",
    "SMSDISPATCH_QUEUED_GRACE": "3",
    "SMSDISPATCH_LEASE_MARGIN": "1",
    "SMSDISPATCH_GHASEDAK_TIMEOUT": "1,2",
    "SMSDISPATCH_GHASEDAK_RECONCILE_GRACE": "2",
}


@dataclass
class Cluster:
    env: dict[str, str]
    state: SandboxState
    db: str
    tmp: Path
    procs: list[subprocess.Popen] = field(default_factory=list)

    def spawn(self, *args: str) -> subprocess.Popen:
        """`python -m dispatcher <args>` in the cluster's environment, its output in tmp/<cmd>-<n>.log."""
        log = open(self.tmp / f"{args[0]}-{len(self.procs)}.log", "w")  # noqa: SIM115 - closed with the process
        proc = subprocess.Popen(
            [*EXE, *args], env=self.env, cwd=self.tmp, stdout=log, stderr=subprocess.STDOUT
        )
        self.procs.append(proc)
        return proc

    def workers(self, n: int = 2, concurrency: int = 4) -> list[subprocess.Popen]:
        return [self.spawn("worker", "-c", str(concurrency), "-n", f"w{i}@%h") for i in range(n)]

    def beat(self) -> subprocess.Popen:
        return self.spawn("beat", "-s", str(self.tmp / "beat-schedule"))

    def logs(self, prefix: str = "") -> str:
        return "".join(p.read_text(errors="replace") for p in sorted(self.tmp.glob(f"{prefix}*.log")))

    def cli(self, *args: str, timeout: float = 120) -> subprocess.CompletedProcess:
        """Run `smsdispatch <args>` to its end in the cluster's environment (output captured)."""
        return subprocess.run(
            [*EXE, *args], env=self.env, cwd=self.tmp, capture_output=True, text=True, timeout=timeout
        )

    def send(
        self, rows: int, provider: str = "ghasedak", *extra: str, text: str = "Hi {name}"
    ) -> tuple[int, dict[str, Any]]:
        """Run `smsdispatch send` on a demo CSV of `rows` rows; (campaign id, the --json summary)."""
        done = self.send_cli(rows, provider, *extra, text=text)
        assert done.returncode == 0, done.stderr
        summary = json.loads(done.stdout.strip().splitlines()[-1])
        return summary["campaign"], summary

    def send_cli(
        self,
        rows: int,
        provider: str = "ghasedak",
        *extra: str,
        text: str = "Hi {name}",
        timeout: float = 120,
    ) -> subprocess.CompletedProcess:
        """`smsdispatch send … --json` on a demo CSV of `rows` rows, whatever its exit code."""
        src = self.tmp / f"list-{rows}.csv"
        write_demo_csv(src, rows, seed=rows)
        return self.cli(
            "send", str(src), "--provider", provider, "--message", text, "--json", *extra, timeout=timeout
        )

    def store(self) -> Store:
        return Store.from_url(self.db)


@contextmanager
def run_cluster(
    tmp_path: Path,
    broker_url: str,
    *,
    state: SandboxState | None = None,
    env: Mapping[str, str] | None = None,
) -> Iterator[Cluster]:
    """A fresh database and sandbox; worker/beat processes started through `spawn` are killed at the end. A
    test that passed also has every campaign's counters checked against a recount of its rows."""
    db = fresh_postgres_db()
    state = state or SandboxState(seed=21, final_after_s=0.2, latency_ms=50)
    sandbox = start(state)
    full_env = {
        **os.environ,
        **sandbox_env(sandbox.url),
        "SMSDISPATCH_BROKER_URL": broker_url,
        "SMSDISPATCH_DATABASE_URL": db,
        **FAST_ENV,
        **(env or {}),
    }
    cluster = Cluster(full_env, state, db, tmp_path)
    try:
        yield cluster
        engine = cluster.store().engine  # whatever the test did: every campaign's counters equal a recount
        try:
            assert_counts_agree(engine)
        finally:
            engine.dispose()
    finally:
        for p in cluster.procs:
            if p.poll() is None:
                p.kill()
            p.wait(timeout=10)
        sandbox.stop()
        drop_postgres_db(db)


def wait_for(condition: Callable[[], Any], what: str, timeout: float = 120, every: float = 0.2) -> Any:
    """Poll `condition` until it returns something truthy; fail naming `what` after a generous deadline."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(every)
    raise AssertionError(f"timed out waiting for {what}")


def wait_completed(db: str, campaign_id: int, timeout: float = 120) -> dict[str, int]:
    store = Store.from_url(db)
    try:
        view = wait_for(
            lambda: (v := store.campaign(campaign_id)) and v.state == "completed" and v,
            f"campaign {campaign_id} to complete (now {store.campaign(campaign_id)})",
            timeout,
            every=0.5,
        )
        return view.counts
    finally:
        store.engine.dispose()


def once_each(state: SandboxState, expected: int, provider: str = "ghasedak") -> None:
    counts = Counter(m.phone for m in state.accepted(provider))
    assert set(counts.values()) == {1}, "a number was sent twice"
    assert len(counts) == expected


def store_ids(msg: AcceptedMessage) -> tuple[str, ...]:
    """The provider_message_id our client may record for a message the sandbox accepted: the message id,
    except Media Payamak's, which is "{batchSmsId}:{number as sent}" from the send's reply, or the message
    id when reconciliation found it in the sent box (workers/providers/mediapayamak.py)."""
    if msg.provider == "mediapayamak":
        from workers.providers.mediapayamak import provider_number

        return f"{msg.batch_id}:{provider_number('+' + msg.phone)}", msg.message_id
    return (msg.message_id,)


def assert_witnessed(
    cluster: Cluster,
    campaign_id: int,
    provider: str = "ghasedak",
    *,
    sent_twice: frozenset[str] = frozenset(),
) -> dict[str, dict[str, Any]]:
    """The sandbox's record and the store agree, number by number. Returns the store's rows by number.

    * every number the sandbox accepted belongs to the campaign and was accepted exactly once
      (`sent_twice` names the numbers a test expects twice, e.g. a resend the user's policy asked for);
    * a recipient is in a went-out state iff the sandbox accepted its number, and then its
      provider_message_id is the sandbox's id (the last one, for a number sent twice); `failed` and
      `blacklisted` may be either a delivery report or a refusal, so there the id tells;
    * nothing is pending; a recipient the sandbox did not accept is final (refused, failed);
    * a recipient held `unknown` has its reason, whether or not the sandbox took it (that is what
      "cannot be asked" means); tests that expect no unknowns say so themselves;
    * the campaign's maintained counters equal a recount of its rows (tests/support/counters.py).
    """
    store = cluster.store()
    try:
        rows = {digits(r["phone"]): r for r in store.recipients_rows(campaign_id)}
        assert_counts_agree(store.engine, [campaign_id])  # the counters the reads use equal a recount
    finally:
        store.engine.dispose()
    accepted = cluster.state.accepted(provider)
    counts = Counter(m.phone for m in accepted)
    last_id = {m.phone: store_ids(m) for m in accepted}
    assert set(counts) <= set(rows), (
        f"the sandbox accepted numbers of no recipient: {set(counts) - set(rows)}"
    )
    wrong = {p: n for p, n in counts.items() if n != (2 if p in sent_twice else 1)}
    assert not wrong, f"numbers sent a wrong number of times: {dict(list(wrong.items())[:10])}"
    for phone, row in rows.items():
        state = row["state"]
        assert state != R.PENDING, f"{phone} left pending"
        if state == R.UNKNOWN:  # held: nobody could say whether it went out; at most once, with the reason
            assert row["error"], f"{phone} held unknown without a reason"
        elif phone in counts:
            assert state in WENT_OUT, f"{phone} accepted by the sandbox but {state} in the store"
            assert row["provider_message_id"] in last_id[phone], f"{phone}: store and sandbox ids differ"
        else:
            assert state not in ONLY_IF_SENT, (
                f"{phone} is {state} in the store but the sandbox never accepted it"
            )
            assert state in FINAL_RECIPIENT, f"{phone} left {state}"
            mid = row["provider_message_id"]
            assert mid is None or cluster.state.find(provider, mid) is None, (
                f"{phone}: an id the sandbox never gave"
            )
    return rows


# ---- a broker of our own, to kill and restart -------------------------------------------------------------
def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class OwnRedis:
    """A `redis-server` subprocess on a free port (never the shared one): stop it hard, start it again."""

    def __init__(self, workdir: Path, *, appendonly: bool = False) -> None:
        if shutil.which("redis-server") is None:
            message = "redis-server is not installed; this test runs a broker of its own to kill and restart"
            pytest.fail(message) if IN_CI else pytest.skip(message)
        self.port = free_port()
        self.dir = workdir / f"redis-{self.port}"
        self.dir.mkdir(parents=True, exist_ok=True)
        self.appendonly = appendonly
        self.proc: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        args = ["redis-server", "--bind", "127.0.0.1", "--port", str(self.port), "--dir", str(self.dir)]
        # As docker-compose.yml runs it: AOF fsynced every second (a SIGKILL may lose the last second).
        args += [
            "--save",
            "",
            "--appendonly",
            "yes" if self.appendonly else "no",
            "--appendfsync",
            "everysec",
        ]
        log = open(self.dir / "redis.log", "a")  # noqa: SIM115 - lives as long as the server
        self.proc = subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT)
        wait_for(lambda: _answers(self.port), f"redis-server on port {self.port}", timeout=20, every=0.05)

    def kill(self) -> None:
        """SIGKILL: no shutdown save, connections cut mid-command."""
        if self.proc and self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGKILL)
            self.proc.wait(timeout=10)

    def __enter__(self) -> OwnRedis:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.kill()


def _answers(port: int) -> bool:
    import redis

    try:
        return bool(redis.Redis(port=port, socket_connect_timeout=0.2).ping())
    except redis.RedisError:
        return False
