"""deploy/monitoring checked by the tools that will run it: promtool (config, rules, and the rules' unit
tests, which fire each alert from sample series) and amtool; the dashboard and compose's monitoring
profile read without Grafana or Docker; the default webhook receiver run for real. Whether every metric
the dashboard and the alerts name is exposed is checked against live scrapes in tests/test_metrics.py."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import urllib.request

import pytest
import yaml

from tests.support.cluster import free_port, wait_for
from tests.support.scrape import MONITORING, ROOT
from tests.support.services import IN_CI

PROMETHEUS = MONITORING / "prometheus"
COMPOSE = yaml.safe_load((ROOT / "docker-compose.yml").read_text())


def tool(name: str) -> str:
    path = shutil.which(name)
    if path is None:
        message = f"{name} is not installed (Debian: apt-get install prometheus prometheus-alertmanager)"
        pytest.fail(message) if IN_CI else pytest.skip(message)
    return path


def run(*cmd: str) -> subprocess.CompletedProcess:
    return subprocess.run(cmd, capture_output=True, text=True, timeout=300)


def test_promtool_accepts_the_config_and_the_rules():
    promtool = tool("promtool")
    for args in (("check", "config", "prometheus.yml"), ("check", "rules", "alerts.yml")):
        done = subprocess.run([promtool, *args], cwd=PROMETHEUS, capture_output=True, text=True, timeout=120)
        assert done.returncode == 0, done.stdout + done.stderr


def test_every_alert_fires_in_its_promtool_unit_test():
    promtool = tool("promtool")
    rules = yaml.safe_load((PROMETHEUS / "alerts.yml").read_text())
    alerts = {rule["alert"] for group in rules["groups"] for rule in group["rules"]}
    tests = yaml.safe_load((PROMETHEUS / "alerts_test.yml").read_text())
    fired = {
        case["alertname"]
        for test in tests["tests"]
        for case in test.get("alert_rule_test", [])
        if case.get("exp_alerts")
    }
    assert alerts == fired, f"alerts without a test that fires them: {alerts - fired}"
    assert len(alerts) == 6
    done = subprocess.run(
        [promtool, "test", "rules", "alerts_test.yml"],
        cwd=PROMETHEUS,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stdout + done.stderr


def test_amtool_accepts_the_alertmanager_config():
    done = run(tool("amtool"), "check-config", str(MONITORING / "alertmanager" / "alertmanager.yml"))
    assert done.returncode == 0, done.stdout + done.stderr


def test_prometheus_finds_every_worker_replica_not_one_static_target():
    config = yaml.safe_load((PROMETHEUS / "prometheus.yml").read_text())
    jobs = {job["job_name"]: job for job in config["scrape_configs"]}
    worker = jobs["smsdispatch-worker"]
    assert "static_configs" not in worker
    assert worker["dns_sd_configs"][0]["names"] == ["worker"]
    assert worker["dns_sd_configs"][0]["port"] == 9464
    assert "--metrics-port" in COMPOSE["services"]["worker"]["command"]


def test_dashboard_is_provisioned_against_the_provisioned_datasource():
    dashboard = json.loads((MONITORING / "grafana" / "dashboards" / "smsdispatch.json").read_text())
    datasources = yaml.safe_load(
        (MONITORING / "grafana" / "provisioning" / "datasources" / "prometheus.yml").read_text()
    )["datasources"]
    uid = datasources[0]["uid"]
    panels = [p for p in dashboard["panels"] if p["type"] != "row"]
    titles = " | ".join(p["title"].lower() for p in panels)
    for needed in (
        "sent per provider",
        "delivered share",
        "latency",
        "errors by kind",
        "credit",
        "queued",
        "circuit",
        "worker liveness",
    ):
        assert needed in titles, needed
    for panel in panels:
        assert panel["datasource"]["uid"] == uid and panel["targets"], panel["title"]
        for target in panel["targets"]:
            assert target["expr"].strip() and target["datasource"]["uid"] == uid
    ids = [p["id"] for p in dashboard["panels"]]
    assert len(ids) == len(set(ids))


def test_compose_monitoring_profile_mounts_files_that_exist():
    services = COMPOSE["services"]
    for name in ("prometheus", "alertmanager", "grafana", "alert-log"):
        assert services[name]["profiles"] == ["monitoring"], name
        for volume in services[name].get("volumes", []):
            source = volume.split(":")[0]
            if source.startswith("./"):
                assert (ROOT / source).exists(), f"{name}: {source}"
        for port in services[name].get("ports", []):
            assert port.startswith("127.0.0.1:"), f"{name} published beyond loopback: {port}"
    for name in ("worker", "beat", "serve"):
        test = " ".join(services[name]["healthcheck"]["test"])
        assert "/readyz" in test, name


def test_the_default_webhook_receiver_logs_each_alert(tmp_path):
    port = free_port()
    env = {**os.environ, "ALERT_LOG_PORT": str(port), "ALERT_LOG_HOST": "127.0.0.1"}
    out = (tmp_path / "out.log").open("w")
    proc = subprocess.Popen(
        [sys.executable, str(MONITORING / "alertmanager" / "webhook_log.py")],
        env=env,
        stdout=out,
        stderr=subprocess.DEVNULL,
    )
    try:
        payload = {
            "version": "4",
            "status": "firing",
            "alerts": [
                {
                    "status": "firing",
                    "labels": {"alertname": "SmsdispatchWorkerDown", "severity": "critical"},
                    "annotations": {"summary": "Worker 10.0.0.7:9464 does not answer its metrics port"},
                    "startsAt": "2026-11-29T09:35:00Z",
                }
            ],
        }
        request = urllib.request.Request(
            f"http://127.0.0.1:{port}/alerts",
            data=json.dumps(payload).encode(),
            method="POST",
            headers={"Content-Type": "application/json"},
        )

        def post() -> bool:
            try:
                with urllib.request.urlopen(request, timeout=5) as response:
                    return response.status == 200
            except OSError:
                return False

        wait_for(post, "the webhook receiver to answer", timeout=20)
        line = wait_for(
            lambda: (tmp_path / "out.log").read_text().strip(), "a line for the alert", timeout=10
        )
        logged = json.loads(line.splitlines()[0])
        assert logged["alert"] == "SmsdispatchWorkerDown" and logged["status"] == "firing"
    finally:
        proc.kill()
        proc.wait(timeout=10)


def test_systemd_units_serve_metrics_and_wait_for_readyz():
    for name in ("smsdispatch-serve.service", "smsdispatch-worker@.service", "smsdispatch-beat.service"):
        unit = (ROOT / "docs" / name).read_text()
        start = next(line for line in unit.splitlines() if line.startswith("ExecStart="))
        assert "--metrics-port" in start, name
        post = next(line for line in unit.splitlines() if line.startswith("ExecStartPost="))
        assert "/readyz" in post and "--fail" in post, name
