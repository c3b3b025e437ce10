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
    for name in ("redis", "postgres", "worker", "beat", "serve", "web"):
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


METRICS_PORT = "9464"  # what compose's commands and healthchecks use inside each container


def free_port() -> str:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return str(s.getsockname()[1])


def local(args: list[str], port: str, tmp_path: Path) -> list[str]:
    """A compose command as it runs here: a free port on loopback for the metrics, files in tmp_path."""
    swap = {
        METRICS_PORT: port,
        "0.0.0.0": "127.0.0.1",
        "/tmp/celerybeat-schedule": str(tmp_path / "schedule"),
    }
    return [swap.get(a, a) for a in args]


def healthcheck(service: str, port: str, env: dict[str, str]) -> subprocess.CompletedProcess:
    test = SERVICES[service]["healthcheck"]["test"]
    assert test[0] == "CMD" and test[1] == "python", test
    code = test[3].replace(f":{METRICS_PORT}/", f":{port}/")
    return subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=60)


def test_worker_command_starts_answers_its_healthcheck_and_stops_warm(local_env, tmp_path):
    port = free_port()
    proc = run_until(local(SERVICES["worker"]["command"], port, tmp_path), local_env, "ready.", tmp_path)
    try:
        result = healthcheck("worker", port, local_env)
        assert result.returncode == 0, result.stdout + result.stderr
    finally:
        assert stop_warm(proc) == 0


def test_beat_command_starts_answers_its_healthcheck_and_stops_warm(local_env, tmp_path):
    port = free_port()
    proc = run_until(
        local(SERVICES["beat"]["command"], port, tmp_path), local_env, "beat: Starting", tmp_path
    )
    try:
        result = healthcheck("beat", port, local_env)
        assert result.returncode == 0, result.stdout + result.stderr
    finally:
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
