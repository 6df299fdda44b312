"""The alert rules and the Grafana dashboard name only metrics and labels the service exports.

Metric names are a contract (server/uoom_orders/observability/metrics.py): a rename there
must fail here, not silently empty a panel or disarm an alert. When promtool is installed
(Debian package `prometheus`, or PROMTOOL=/path), the rules are also checked and
unit-tested with it (monitoring/tests/prometheus-alerts.test.yml).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml
from prometheus_client import REGISTRY
from prometheus_client.metrics import MetricWrapperBase

from uoom_orders.observability import metrics
from uoom_orders.observability.loop_metrics import LoopCounter, LoopHistogram

ROOT = Path(__file__).resolve().parents[2]
RULES = ROOT / "monitoring" / "prometheus-alerts.yml"
DASHBOARD = ROOT / "monitoring" / "grafana-dashboard.json"
PROMTOOL_TESTS = ROOT / "monitoring" / "tests" / "prometheus-alerts.test.yml"

# Labels Prometheus adds when it scrapes, valid on every series.
TARGET_LABELS = frozenset({"job", "instance"})

# The alerts the reference's CloudWatch alarms and the design call for; a rename is a change
# to whoever routes or silences them.
EXPECTED_ALERTS = {
    "OrderReadLatencyHigh",
    "DynamoDBThrottling",
    "OrderCacheHitRateLow",
    "OrderReadTierBreakerOpen",
    "OrderReadFallbackBreakerOpen",
    "OrderRpcErrorRatioHigh",
    "OrderRpcErrorRatioElevated",
    "OutboxRelayStalled",
    "OutboxPublishErrors",
    "ProjectorEndToEndLagHigh",
    "ProjectorConsumerLagHigh",
    "ProjectorDeadLetters",
    "ReadModelDiverged",
    "PostgresCommitsNotDurable",
}

# --- what the exporter exposes ------------------------------------------------------------

_SUFFIXES = {
    "counter": ("_total", "_created"),
    "gauge": ("",),
    "histogram": ("_bucket", "_sum", "_count", "_created"),
    "summary": ("", "_sum", "_count", "_created"),
    "info": ("_info",),
}


def _service_families() -> dict[str, frozenset[str]]:
    """Every family metrics.py defines (prometheus_client's metrics and the event loop's own,
    observability/loop_metrics.py), with its label names."""
    families: dict[str, frozenset[str]] = {}
    for metric in vars(metrics).values():
        if isinstance(metric, MetricWrapperBase):
            families[metric._name] = frozenset(metric._labelnames)
        elif isinstance(metric, LoopCounter | LoopHistogram):
            families[metric.name] = frozenset(metric.labelnames)
    return families


def exported_series() -> dict[str, frozenset[str]]:
    """Every series name the default registry exposes, with the labels it may carry."""
    labels_by_family = _service_families()
    series: dict[str, frozenset[str]] = {}
    for family in REGISTRY.collect():
        labels = labels_by_family.get(family.name, frozenset()) | TARGET_LABELS
        for suffix in _SUFFIXES[family.type]:
            extra = {"le"} if suffix == "_bucket" else set()
            series[family.name + suffix] = labels | extra
    return series


# --- what a PromQL expression reads -------------------------------------------------------

_STRING = re.compile(r'"(?:[^"\\]|\\.)*"|\'(?:[^\'\\]|\\.)*\'|`[^`]*`')
_RANGE = re.compile(r"\[[^\]]*\]")
_GROUPING = re.compile(r"\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)")
_SELECTOR = re.compile(r"(?<![\w:$.])([a-zA-Z_:][\w:]*)\s*(\{[^}]*\})?")
_MATCHER = re.compile(r"([a-zA-Z_]\w*)\s*(?:=~|!~|!=|=)")
_KEYWORDS = frozenset(
    {"and", "or", "unless", "bool", "offset", "by", "without", "on", "ignoring"}
    | {"group_left", "group_right", "inf", "nan", "atan2", "start", "end"}
)


@dataclass(frozen=True)
class Selector:
    metric: str
    labels: frozenset[str]


def selectors(expr: str) -> list[Selector]:
    """The metric selectors of a PromQL expression: names and the labels they match on."""
    text = _STRING.sub('""', expr)
    text = _RANGE.sub("", text)
    text = _GROUPING.sub("", text)
    found = []
    for match in _SELECTOR.finditer(text):
        name, braces = match.group(1), match.group(2)
        is_call = text[match.end() :].lstrip().startswith("(") and braces is None
        if is_call or name.lower() in _KEYWORDS:
            continue
        labels = frozenset(_MATCHER.findall(braces or ""))
        found.append(Selector(name, labels))
    return found


def test_selector_extraction() -> None:
    expr = (
        "histogram_quantile(0.99, sum by (tier, le) "
        '(rate(dynamodb_read_latency_seconds_bucket{tier!="postgres"}[5m]))) > 0.01 '
        "and on (tier) sum without (instance) (rate(x_total[$__rate_interval] offset 1m)) > 1e3"
        " or y"
    )
    assert selectors(expr) == [
        Selector("dynamodb_read_latency_seconds_bucket", frozenset({"tier"})),
        Selector("x_total", frozenset()),
        Selector("y", frozenset()),
    ]


# --- the files ----------------------------------------------------------------------------


def load_rules() -> list[dict[str, Any]]:
    document = yaml.safe_load(RULES.read_text())
    return [rule for group in document["groups"] for rule in group["rules"]]


def load_dashboard() -> dict[str, Any]:
    dashboard: dict[str, Any] = json.loads(DASHBOARD.read_text())
    return dashboard


def dashboard_panels(panels: list[dict[str, Any]]) -> Iterator[dict[str, Any]]:
    for panel in panels:
        yield panel
        yield from dashboard_panels(panel.get("panels", []))


def dashboard_exprs() -> list[tuple[str, str]]:
    return [
        (panel["title"], target["expr"])
        for panel in dashboard_panels(load_dashboard()["panels"])
        for target in panel.get("targets", [])
    ]


def unknown_references(expr: str) -> list[str]:
    series = exported_series()
    problems = []
    found = selectors(expr)
    if not found:
        problems.append("reads no metric")
    for selector in found:
        if selector.metric not in series:
            problems.append(f"unknown metric {selector.metric}")
        elif not selector.labels <= series[selector.metric]:
            extra = sorted(selector.labels - series[selector.metric])
            problems.append(f"{selector.metric} has no label {extra}")
    return problems


def test_service_metrics_are_registered() -> None:
    series = exported_series()
    # Both kinds of metric are seen: the loop's own (loop_metrics.py) and prometheus_client's.
    assert {"grpc_server_handled", "grpc_server_cancelled"} <= set(_service_families())
    assert "grpc_server_handled_total" in series
    assert series["dynamodb_read_latency_seconds_bucket"] >= {"tier", "le"}
    assert metrics.READ_LATENCY_BUCKETS == (0.001, 0.002, 0.005, 0.01, 0.02, 0.05)


@pytest.mark.parametrize("rule", load_rules(), ids=lambda rule: str(rule.get("alert")))
def test_alert_reads_exported_metrics(rule: dict[str, Any]) -> None:
    assert unknown_references(rule["expr"]) == []


@pytest.mark.parametrize("rule", load_rules(), ids=lambda rule: str(rule.get("alert")))
def test_alert_is_actionable(rule: dict[str, Any]) -> None:
    assert rule["labels"]["severity"] in {"critical", "warning"}
    for annotation in ("summary", "description", "runbook"):
        assert rule["annotations"][annotation].strip(), annotation


def test_expected_alerts_are_defined_once() -> None:
    names = [rule["alert"] for rule in load_rules()]
    assert len(names) == len(set(names))
    assert set(names) == EXPECTED_ALERTS


@pytest.mark.parametrize(("panel", "expr"), dashboard_exprs())
def test_dashboard_reads_exported_metrics(panel: str, expr: str) -> None:
    assert unknown_references(expr) == []


def test_dashboard_shows_every_service_metric() -> None:
    shown = {s.metric for _, expr in dashboard_exprs() for s in selectors(expr)}
    families = set(_service_families())
    missing = {
        family
        for family in families
        if not any(name == family or name.startswith(family + "_") for name in shown)
    }
    assert missing == set()


def test_dashboard_is_well_formed() -> None:
    dashboard = load_dashboard()
    panels = list(dashboard_panels(dashboard["panels"]))
    ids = [panel["id"] for panel in panels]
    assert len(ids) == len(set(ids))
    assert dashboard["uid"] == "uoom-orders"
    for panel in panels:
        assert set(panel["gridPos"]) == {"h", "w", "x", "y"}
        assert panel["gridPos"]["x"] + panel["gridPos"]["w"] <= 24
        if panel["type"] != "row":
            assert panel["targets"], panel["title"]
            assert panel["datasource"]["uid"] == "${datasource}"


# --- promtool, when installed -------------------------------------------------------------


def _promtool() -> str:
    path = os.environ.get("PROMTOOL") or shutil.which("promtool")
    if not path:
        pytest.skip("promtool not installed (Debian package prometheus)")
    return path


def _run(*args: str) -> None:
    result = subprocess.run(args, capture_output=True, text=True, timeout=120, check=False)
    assert result.returncode == 0, result.stdout + result.stderr


def test_rules_pass_promtool_check() -> None:
    _run(_promtool(), "check", "rules", str(RULES))


def test_alerts_fire_as_specified(tmp_path: Path) -> None:
    promtool = _promtool()
    # promtool compares annotations verbatim; the unit tests pin expressions and labels only.
    document = yaml.safe_load(RULES.read_text())
    for group in document["groups"]:
        for rule in group["rules"]:
            rule.pop("annotations", None)
    (tmp_path / RULES.name).write_text(yaml.safe_dump(document))
    shutil.copy(PROMTOOL_TESTS, tmp_path / PROMTOOL_TESTS.name)
    _run(promtool, "test", "rules", str(tmp_path / PROMTOOL_TESTS.name))


def test_dashboard_queries_parse(tmp_path: Path) -> None:
    promtool = _promtool()
    rules = [
        {"record": f"dashboard:query_{i}", "expr": expr.replace("$__rate_interval", "5m")}
        for i, (_, expr) in enumerate(dashboard_exprs())
    ]
    path = tmp_path / "dashboard-queries.yml"
    path.write_text(yaml.safe_dump({"groups": [{"name": "dashboard", "rules": rules}]}))
    _run(promtool, "check", "rules", str(path))
