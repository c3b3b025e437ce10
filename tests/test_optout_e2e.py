"""Opt-outs (README, "Opt-outs"): "an opt-out reply suppresses the number in the next campaign": campaign 1 goes out,
one recipient replies "لغو ۱۱", the reply is collected (by beat in distributed mode, by
`optouts --collect` in embedded mode), and campaign 2 rejects that number into its rejects file with
the opt-out reason while every other number is sent. The sandbox's record is the witness."""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pytest
import requests

from campaigns.store import Store
from dispatcher.sandbox.core import SandboxState, sandbox_env
from dispatcher.sandbox.server import start
from tests.support.cluster import wait_completed

pytestmark = pytest.mark.slow
EXE = [sys.executable, "-m", "dispatcher"]
MESSAGE = "سلام {name}، تخفیف ویژه. لغو11"
FIRST = [f"0912{i:07d}" for i in range(1, 31)]
VICTIM = FIRST[4]  # replies "لغو ۱۱" after campaign 1
SECOND = [VICTIM, *FIRST[10:15], *(f"0935{i:07d}" for i in range(1, 21))]


def write_csv(path: Path, numbers: list[str]) -> Path:
    with path.open("w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f)
        writer.writerow(["mobile", "name"])
        writer.writerows([n, f"مشتری {i}"] for i, n in enumerate(numbers))
    return path


def cli(env: dict[str, str], cwd: Path, *args: str) -> dict:
    done = subprocess.run([*EXE, *args], env=env, cwd=cwd, capture_output=True, text=True, timeout=180)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout.strip().splitlines()[-1])


def e164(national: str) -> str:
    return "+98" + national[1:]


def sandbox_digits(national: str) -> str:
    return "98" + national[1:]


def rejects(path: str) -> list[dict[str, str]]:
    with open(path, encoding="utf-8-sig", newline="") as f:
        return list(csv.DictReader(f))


def check_second_campaign(summary: dict, sent: Counter[str]) -> None:
    assert summary["recipients"] == len(SECOND) - 1 and summary["rejected"] == 1
    (row,) = rejects(summary["rejects_file"])
    assert row["value"] == VICTIM
    assert row["reason"].startswith("opted out: replied 'لغو ۱۱' via ghasedak on ")
    assert sent[sandbox_digits(VICTIM)] == 1  # campaign 1 only
    assert all(sent[sandbox_digits(n)] == 2 for n in FIRST[10:15])  # in both campaigns
    assert all(sent[sandbox_digits(n)] == 1 for n in SECOND[6:])
    assert sum(sent.values()) == len(FIRST) + len(SECOND) - 1


def test_distributed_beat_collects_the_reply_and_the_next_campaign_rejects_the_number(cluster):
    env, tmp, db = cluster.env, cluster.tmp, cluster.db
    env["SMSDISPATCH_OPTOUT_EVERY"] = "1"
    cluster.spawn("worker", "-c", "4", "-n", "w1@%h")
    cluster.spawn("beat", "-s", str(tmp / "beat-schedule"))

    first = write_csv(tmp / "first.csv", FIRST)
    summary = cli(env, tmp, "send", str(first), "--provider", "ghasedak", "--message", MESSAGE, "--json")
    wait_completed(db, summary["campaign"])

    base = env["SMSDISPATCH_GHASEDAK_URL"].removesuffix("/ghasedak/v2")
    reply = {
        "provider": "ghasedak",
        "sender": VICTIM,
        "text": "لغو ۱۱",
        "line": env["SMSDISPATCH_GHASEDAK_SENDER"],
    }
    requests.post(f"{base}/_sandbox/inbox", json=reply, timeout=5).raise_for_status()
    store = Store.from_url(db)
    deadline = time.monotonic() + 90
    while e164(VICTIM) not in store.suppressed():  # beat's collection, run by the worker
        assert time.monotonic() < deadline, "the opt-out was not collected"
        time.sleep(0.5)

    second = write_csv(tmp / "second.csv", SECOND)
    # --include-blacklisted: numbers campaign 1's reports marked blacklisted are the operator blacklist
    # memory's business (tests/test_blacklist_memory.py); here every one but the opt-out is sent
    summary = cli(
        env,
        tmp,
        "send",
        str(second),
        "--provider",
        "ghasedak",
        "--message",
        MESSAGE,
        "--include-blacklisted",
        "--json",
    )
    wait_completed(db, summary["campaign"])
    check_second_campaign(summary, Counter(m.phone for m in cluster.state.accepted("ghasedak")))


def test_embedded_send_collect_send(tmp_path):
    state = SandboxState(seed=5, final_after_s=0.0)
    with start(state) as sandbox:
        env = {k: v for k, v in os.environ.items() if not k.startswith("SMSDISPATCH_")}
        env.update(sandbox_env(sandbox.url))
        env["SMSDISPATCH_DATABASE_URL"] = f"sqlite:///{tmp_path / 'store.db'}"
        env["SMSDISPATCH_POLL_INTERVALS"] = "0.2"

        first = write_csv(tmp_path / "first.csv", FIRST)
        cli(
            env,
            tmp_path,
            "send",
            str(first),
            "--provider",
            "ghasedak",
            "--message",
            MESSAGE,
            "--wait",
            "--json",
        )
        state.add_inbound("ghasedak", VICTIM, "لغو ۱۱", line=env["SMSDISPATCH_GHASEDAK_SENDER"])
        state.add_inbound("ghasedak", FIRST[5], "ممنون، لغو نکنید", line=env["SMSDISPATCH_GHASEDAK_SENDER"])

        collected = cli(env, tmp_path, "optouts", "--collect", "--json")
        assert collected["added"] == 1
        assert [s["phone"] for s in collected["suppressions"]] == [e164(VICTIM)]
        assert cli(env, tmp_path, "optouts", "--collect", "--json")["added"] == 0  # idempotent

        second = write_csv(tmp_path / "second.csv", SECOND)
        summary = cli(
            env,
            tmp_path,
            "send",
            str(second),
            "--provider",
            "ghasedak",
            "--message",
            MESSAGE,
            "--include-blacklisted",  # as above
            "--wait",
            "--json",
        )
        assert summary["state"] == "completed"
        check_second_campaign(summary, state.count_by_phone("ghasedak"))
