"""Log lines: one JSON object per line with SMSDISPATCH_LOG_FORMAT=json (every process), the readable line
by default, secrets redacted in both; campaign, chunk and provider from `bind`."""

from __future__ import annotations

import io
import json
import logging
import os
import subprocess
import sys
import time

import pytest

from dispatcher.engine.eventlog import DedupHandler
from workers.logs import bind, configure, tag

KEYS = {"time", "level", "process", "pid", "campaign", "chunk", "provider", "event", "message"}
SECRET = "k3y-that-must-never-show"


@pytest.fixture
def restore_root():
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    yield
    root.handlers[:] = handlers
    root.setLevel(level)


def test_json_lines_carry_the_context_and_no_secret(restore_root, monkeypatch):
    monkeypatch.setenv("SMSDISPATCH_GHASEDAK_APIKEY", SECRET)
    stream = io.StringIO()
    configure("worker", env={"SMSDISPATCH_LOG_FORMAT": "json"}, stream=stream)
    log = logging.getLogger("workers.send")
    with bind(chunk=7):
        tag(campaign=3, provider="ghasedak")
        log.warning("called with %s and apikey=%s", SECRET, "other-value")
        try:
            raise RuntimeError(f"boom {SECRET}")
        except RuntimeError:
            log.exception("failed")
    log.info("outside", extra={"event": "custom"})
    lines = [json.loads(line) for line in stream.getvalue().splitlines()]
    assert len(lines) == 3
    assert all(set(line) >= KEYS for line in lines)
    first, second, third = lines
    assert (first["campaign"], first["chunk"], first["provider"]) == (3, 7, "ghasedak")
    assert first["level"] == "warning" and first["process"] == "worker" and first["event"] == "workers.send"
    assert first["time"].endswith("+00:00") and "T" in first["time"]
    assert SECRET not in stream.getvalue() and "other-value" not in stream.getvalue()
    assert second["error"].startswith("RuntimeError: boom ***")
    assert (third["campaign"], third["chunk"], third["event"]) == (None, None, "custom")


def test_the_readable_line_stays_and_is_redacted(restore_root, monkeypatch):
    monkeypatch.setenv("SMSDISPATCH_NEGIN_PASSWORD", SECRET)
    stream = io.StringIO()
    configure("serve", DedupHandler(stream), env={})
    logging.getLogger("dispatcher.engine.serve").warning("login with %s failed", SECRET)
    text = stream.getvalue()
    assert "warning: login with *** failed" in text and SECRET not in text
    assert not text.lstrip().startswith("{")


def test_a_worker_logs_json_lines(tmp_path):
    from tests.support.services import REDIS_URL, drop_postgres_db, fresh_postgres_db, require_service

    require_service("Redis", "127.0.0.1", 6379)
    db = fresh_postgres_db()
    env = {
        **os.environ,
        "SMSDISPATCH_BROKER_URL": REDIS_URL,
        "SMSDISPATCH_DATABASE_URL": db,
        "SMSDISPATCH_LOG_FORMAT": "json",
        "SMSDISPATCH_GHASEDAK_APIKEY": SECRET,
    }
    err = tmp_path / "err.log"
    proc = subprocess.Popen(
        [sys.executable, "-m", "dispatcher", "worker", "-c", "1", "-n", "logs@%h"],
        env=env,
        cwd=tmp_path,
        stdout=subprocess.DEVNULL,
        stderr=err.open("w"),
    )
    try:
        deadline = time.monotonic() + 60
        while "ready" not in err.read_text() and time.monotonic() < deadline and proc.poll() is None:
            time.sleep(0.2)
    finally:
        proc.terminate()
        proc.wait(timeout=60)
        drop_postgres_db(db)
    lines = [line for line in err.read_text().splitlines() if line.strip()]
    parsed = [json.loads(line) for line in lines]  # every line on stderr is one JSON object
    assert any("ready" in p["message"] for p in parsed), lines[-5:]
    assert all(set(p) >= KEYS and p["process"] == "worker" for p in parsed)
    assert SECRET not in err.read_text()
