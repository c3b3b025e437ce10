"""`poll --until-done` as a person sees it: what it waits for is said, and a provider that stays down
is one error line, not one a round (README, "Who collects the delivery reports"). Real subprocesses, SQLite, the sandbox over HTTP."""

from __future__ import annotations

import json
import os
import subprocess
import sys

from dispatcher.demo.messy import write as write_demo_csv
from dispatcher.sandbox.core import SandboxState, sandbox_env
from dispatcher.sandbox.server import start


def _cli(env: dict[str, str], cwd, *args: str, timeout: float = 120) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "dispatcher", *args],
        env=env,
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def test_poll_until_done_says_what_it_waits_for_and_an_outage_once(tmp_path):
    state = SandboxState(seed=4, final_after_s=0.0)
    running = start(state)
    env = {k: v for k, v in os.environ.items() if not k.startswith("SMSDISPATCH_")}
    env.update(sandbox_env(running.url))
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [os.getcwd(), env.get("PYTHONPATH", "")]))
    env["SMSDISPATCH_DATABASE_URL"] = f"sqlite:///{tmp_path / 'poll.db'}"
    env["SMSDISPATCH_POLL_INTERVALS"] = "0.5,1"
    env["SMSDISPATCH_GHASEDAK_TIMEOUT"] = "1,1"
    env["SMSDISPATCH_OPTOUT_EVERY"] = "0"
    src = tmp_path / "list.csv"
    write_demo_csv(src, 40, seed=3)
    try:
        sent = _cli(env, tmp_path, "send", str(src), "-p", "ghasedak", "-m", "hello", "--json")
        assert sent.returncode == 0, sent.stderr
        assert json.loads(sent.stdout.strip().splitlines()[-1])["state"] == "running"  # reports to come
    finally:
        running.stop()  # the provider goes down before any report was asked for
    polled = _cli(env, tmp_path, "poll", "--until-done", "--timeout", "8")
    assert polled.returncode == 1, polled.stderr  # timed out: nothing could be asked
    lines = polled.stderr.strip().splitlines()
    assert any("awaiting a delivery report; next check at" in line and "+03:30" in line for line in lines), (
        lines
    )
    errors = [line for line in lines if "error" in line.lower() and "timed out with" not in line]
    # about 8 rounds of a refused connection: said once (and at most once more with its count)
    assert 1 <= len(errors) <= 2, lines
