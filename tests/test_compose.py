"""docker-compose.yml, checked without a Docker engine: its shape is read, and the commands of our
own services (worker, beat, cli, and the worker's healthcheck) are run here against the loopback
Redis and PostgreSQL, so a command that does not exist or does not start fails this test."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from tests.support.services import REDIS_URL, drop_postgres_db, fresh_postgres_db, require_service

ROOT = Path(__file__).resolve().parents[1]
COMPOSE = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
SERVICES = COMPOSE["services"]


def test_compose_has_the_services_and_what_they_need():
    assert {"redis", "postgres", "worker", "beat", "flower", "cli", "web"} <= set(SERVICES)
    for name in ("redis", "postgres", "worker", "web"):
        assert "healthcheck" in SERVICES[name], name
    assert any("postgresql" in v for v in SERVICES["postgres"]["volumes"])
    assert SERVICES["beat"]["deploy"]["replicas"] == 1
    for name in ("worker", "beat", "flower", "web"):
        assert isinstance(SERVICES[name]["command"], list), (
            f"{name}: exec form, so SIGTERM reaches the process"
        )
    assert "replicas" not in SERVICES["worker"].get("deploy", {}), "workers scale with --scale"
    assert "--appendonly" in SERVICES["redis"]["command"]


@pytest.fixture
def local_env(tmp_path):
    require_service("Redis", "127.0.0.1", 6379)
    db = fresh_postgres_db()
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"}
    env.update(
        {k: str(v) for k, v in SERVICES["worker"]["environment"].items() if not str(v).startswith("${")}
    )
    # What compose would resolve to service names resolves here to loopback.
    env["SMSDISPATCH_BROKER_URL"] = REDIS_URL.rsplit("/", 1)[0] + "/14"
    env["SMSDISPATCH_DATABASE_URL"] = db
    try:
        yield env
    finally:
        drop_postgres_db(db)


def run_until(
    cmd: list[str], env: dict[str, str], ready: str, tmp_path: Path, timeout: float = 60
) -> subprocess.Popen:
    log = tmp_path / "out.log"
    proc = subprocess.Popen(cmd, env=env, cwd=tmp_path, stdout=log.open("w"), stderr=subprocess.STDOUT)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if ready in log.read_text(errors="replace"):
            return proc
        if proc.poll() is not None:
            break
        time.sleep(0.2)
    proc.kill()
    raise AssertionError(f"{cmd} did not print {ready!r}:\n{log.read_text(errors='replace')[-3000:]}")


def stop_warm(proc: subprocess.Popen) -> int:
    proc.send_signal(signal.SIGTERM)  # what `docker compose stop` sends
    return proc.wait(timeout=60)


def test_worker_command_starts_answers_its_healthcheck_and_stops_warm(local_env, tmp_path):
    proc = run_until(SERVICES["worker"]["command"], local_env, "ready.", tmp_path)
    try:
        check = SERVICES["worker"]["healthcheck"]["test"][1].replace("$$", "$")
        env = {**local_env, "HOSTNAME": socket.gethostname()}
        result = subprocess.run(["sh", "-c", check], env=env, capture_output=True, text=True, timeout=60)
        assert result.returncode == 0, result.stdout + result.stderr
    finally:
        assert stop_warm(proc) == 0


def test_beat_command_starts_and_stops_warm(local_env, tmp_path):
    cmd = [
        str(tmp_path / "schedule") if a == "/tmp/celerybeat-schedule" else a
        for a in SERVICES["beat"]["command"]
    ]
    proc = run_until(cmd, local_env, "beat: Starting", tmp_path)
    assert stop_warm(proc) == 0


def test_cli_service_runs(local_env, tmp_path):
    cli = SERVICES["cli"]
    result = subprocess.run(
        [*cli["entrypoint"], *cli["command"]], env=local_env, capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0 and "send" in result.stdout


def test_web_command_serves_answers_its_healthcheck_and_stops_warm(local_env, tmp_path):
    from tests.support.cluster import free_port

    port = str(free_port())
    cmd = [
        port if a == "8080" else ("127.0.0.1" if a == "0.0.0.0" else a) for a in SERVICES["web"]["command"]
    ]
    env = {**local_env, "SMSDISPATCH_UPLOAD_DIR": str(tmp_path / "uploads")}
    proc = run_until(cmd, env, "Uvicorn running", tmp_path)
    try:
        check = [a.replace("8080", port) for a in SERVICES["web"]["healthcheck"]["test"][1:]]
        for _ in range(50):  # the log line comes a moment before the socket takes connections
            result = subprocess.run(check, env=env, capture_output=True, text=True, timeout=60)
            if result.returncode == 0:
                break
            time.sleep(0.2)
        assert result.returncode == 0, result.stdout + result.stderr
    finally:
        assert stop_warm(proc) == 0
