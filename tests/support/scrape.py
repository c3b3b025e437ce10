"""Scraping our processes' metrics endpoints as Prometheus would, parsed with prometheus_client's parser,
and the checks every scrape passes: no phone number, campaign id or secret in any label or line."""

from __future__ import annotations

import json
import re
import time
import urllib.error
import urllib.request
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from prometheus_client.parser import text_string_to_metric_families

ROOT = Path(__file__).resolve().parents[2]
MONITORING = ROOT / "deploy" / "monitoring"
# label names whose values are numbers by nature (bucket bounds, gc generations, versions)
NUMERIC_LABELS = frozenset({"le", "quantile", "generation", "version", "major", "minor", "patchlevel"})
FORBIDDEN_LABELS = frozenset(
    {"campaign", "campaign_id", "chunk", "chunk_id", "phone", "recipient", "user", "key"}
)
SUFFIXES = {"counter": ("_total",), "histogram": ("_bucket", "_count", "_sum"), "summary": ("_count", "_sum")}


def get(url: str, token: str | None = None, timeout: float = 10) -> tuple[int, str]:
    """(HTTP status, body) of a GET; an HTTP error status is returned, not raised."""
    request = urllib.request.Request(url)
    if token:
        request.add_header("Authorization", f"Bearer {token}")
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode()


def wait_up(port: int, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if get(f"http://127.0.0.1:{port}/healthz", timeout=2)[0] == 200:
                return
        except OSError:
            pass
        time.sleep(0.2)
    raise AssertionError(f"nothing answered /healthz on port {port}")


@dataclass
class Scrape:
    text: str

    @classmethod
    def of(cls, port: int) -> Scrape:
        status, body = get(f"http://127.0.0.1:{port}/metrics")
        assert status == 200, body
        return cls(body)

    @property
    def families(self) -> list:
        return list(text_string_to_metric_families(self.text))

    def value(self, metric: str, /, **labels: str) -> float:
        """The sum of the samples called `name` whose labels include `labels` (0 when none)."""
        return sum(
            s.value
            for f in self.families
            for s in f.samples
            if s.name == metric and all(s.labels.get(k) == v for k, v in labels.items())
        )

    def names(self) -> set[str]:
        """Every name a query may use: each family's, with its type's suffixes, samples or not."""
        out: set[str] = set()
        for f in self.families:
            out.add(f.name)
            out.update(f.name + suffix for suffix in SUFFIXES.get(f.type, ()))
            out.update(s.name for s in f.samples)
        return out

    def assert_clean(
        self, *, phones: Iterable[str], campaign_ids: Iterable[int], secrets: Iterable[str]
    ) -> None:
        """No phone, campaign id or secret anywhere a label can carry one (the whole text is searched)."""
        for phone in phones:
            digits = re.sub(r"\D", "", phone)
            for spelling in {digits, "0" + digits[2:] if digits.startswith("98") else digits}:
                assert spelling not in self.text, f"a phone number ({spelling}) in a scrape"
        for secret in secrets:
            assert secret not in self.text, "a secret in a scrape"
        ids = {str(c) for c in campaign_ids}
        for family in self.families:
            for sample in family.samples:
                assert not FORBIDDEN_LABELS & set(sample.labels), f"{sample.name}: label {sample.labels}"
                for key, value in sample.labels.items():
                    if key not in NUMERIC_LABELS:
                        assert value not in ids, f"{sample.name}{{{key}={value!r}}}: a campaign id as a label"


def queried_names() -> dict[str, set[str]]:
    """Metric names each dashboard query and alert expression uses: where -> names."""
    import yaml

    out: dict[str, set[str]] = {}
    dashboard = json.loads((MONITORING / "grafana" / "dashboards" / "smsdispatch.json").read_text())
    for panel in dashboard["panels"]:
        for target in panel.get("targets", []):
            out.setdefault(f"panel {panel['title']!r}", set()).update(metric_names(target["expr"]))
    rules = yaml.safe_load((MONITORING / "prometheus" / "alerts.yml").read_text())
    for group in rules["groups"]:
        for rule in group["rules"]:
            out[f"alert {rule['alert']}"] = metric_names(rule["expr"])
    return out


def metric_names(expr: str) -> set[str]:
    """The metric names in a PromQL expression (ours, Celery's, and Prometheus' own `up`)."""
    without_labels = re.sub(r"\{[^}]*\}", "", expr)
    return set(re.findall(r"\b((?:smsdispatch|celery)_[a-z0-9_]+|up)\b(?!\s*\()", without_labels))
