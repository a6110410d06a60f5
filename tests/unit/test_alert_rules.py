"""The example alert rules (manifests/monitoring): valid PromQL over metrics that the
operator and the serving pods really export."""

from __future__ import annotations

import re
from pathlib import Path

import promql_parser
import pytest
import yaml
from prometheus_client import REGISTRY, generate_latest

import torchyard.metrics  # noqa: F401  (registers the operator's metrics)
from torchyard.workloads.serve.metrics import ServerMetrics

RULES = Path(__file__).parents[2] / "manifests" / "monitoring" / "prometheusrule.yaml"
SUFFIXES = ("_bucket", "_sum", "_count")


def _rules() -> list[dict]:
    groups = yaml.safe_load(RULES.read_text())["spec"]["groups"]
    return [rule for group in groups for rule in group["rules"]]


def _exported() -> set[str]:
    """Metric family names in the text format: the operator's and a serving pod's."""
    server = ServerMetrics("digits", "1")
    server.request(500, 0.01)
    server.batch(1)
    text = generate_latest(REGISTRY).decode() + server.render().decode()
    return set(re.findall(r"^# TYPE (\S+) ", text, flags=re.MULTILINE))


def _family(name: str) -> str:
    for suffix in SUFFIXES:
        if name.endswith(suffix):
            return name.removesuffix(suffix)
    return name


def test_there_are_alerts_for_rollbacks_health_traffic_and_errors():
    names = {rule["alert"] for rule in _rules()}
    assert {
        "TorchyardModelVersionRolledBack",
        "TorchyardModelVersionUnhealthy",
        "TorchyardModelWithoutTraffic",
        "TorchyardServingErrorRate",
        "TorchyardOperatorDown",
    } <= names


@pytest.mark.parametrize("rule", _rules(), ids=lambda rule: rule["alert"])
def test_rule_is_valid_promql_over_exported_metrics(rule):
    promql_parser.parse(rule["expr"])
    used = {_family(name) for name in re.findall(r"\btorchyard_[a-z_]+", rule["expr"])}
    exported = {_family(name) for name in _exported()}
    assert used <= exported, f"{rule['alert']} reads metrics nobody exports: {used - exported}"
    assert rule["labels"]["severity"] in ("warning", "critical")
    assert rule["annotations"]["summary"]


def test_a_broken_expression_is_refused():
    with pytest.raises(Exception):  # noqa: B017 (the parser raises a plain Exception)
        promql_parser.parse("sum by (model) (rate(torchyard_inference_requests_total[5m])")
