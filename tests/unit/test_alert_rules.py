"""The example alert rules (manifests/monitoring): valid PromQL over metrics that the
operator and the serving pods really export, accepted by Prometheus's own promtool, and
firing when and only when alert_rules_test.yml says (`promtool test rules`)."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import promql_parser
import pytest
import yaml
from prometheus_client import REGISTRY, generate_latest

import torchyard.metrics  # noqa: F401  (registers the operator's metrics)
from tests.promtool import INSTALL, find_or_install
from torchyard.workloads.serve.metrics import ServerMetrics

RULES = Path(__file__).parents[2] / "manifests" / "monitoring" / "prometheusrule.yaml"
PROMTOOL_TESTS = Path(__file__).with_name("alert_rules_test.yml")
SUFFIXES = ("_bucket", "_sum", "_count")


def _groups() -> list[dict[str, Any]]:
    return list(yaml.safe_load(RULES.read_text())["spec"]["groups"])


def _rules() -> list[dict]:
    return [rule for group in _groups() for rule in group["rules"]]


@pytest.fixture(scope="module")
def promtool() -> str:
    """promtool's path (tests/promtool.py): skipped where it cannot be had, but failed
    under CI=true, where a missing tool is a broken machine."""
    found = find_or_install(print)
    if found is None:
        missing = f"promtool is missing; as root: {INSTALL}"
        if os.environ.get("CI") == "true":
            pytest.fail(f"{missing} (CI runs every test: none is skipped)")
        pytest.skip(missing)
    return found


@pytest.fixture
def rule_dir(tmp_path: Path) -> Path:
    """The PrometheusRule's groups as a plain Prometheus rule file (rules.yml), beside a
    copy of the promtool tests that name it."""
    (tmp_path / "rules.yml").write_text(yaml.safe_dump({"groups": _groups()}, sort_keys=False))
    shutil.copy(PROMTOOL_TESTS, tmp_path)
    return tmp_path


def _run(promtool: str, *args: str) -> str:
    done = subprocess.run([promtool, *args], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, f"promtool {' '.join(args)}:\n{done.stdout}{done.stderr}"
    return done.stdout


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
        "TorchyardModelVersionAnalysisFailed",
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


def test_promtool_accepts_the_rules(promtool: str, rule_dir: Path):
    checked = _run(promtool, "check", "rules", str(rule_dir / "rules.yml"))
    assert f"SUCCESS: {len(_rules())} rules found" in checked


def test_the_alerts_fire_as_the_promtool_tests_expect(promtool: str, rule_dir: Path):
    _run(promtool, "test", "rules", str(rule_dir / PROMTOOL_TESTS.name))


def test_every_alert_has_promtool_cases_where_it_fires_and_where_it_does_not():
    tests = yaml.safe_load(PROMTOOL_TESTS.read_text())["tests"]
    cases = [case for test in tests for case in test["alert_rule_test"]]
    for rule in _rules():
        fires = {bool(case["exp_alerts"]) for case in cases if case["alertname"] == rule["alert"]}
        assert fires == {True, False}, f"{rule['alert']}: {fires or 'no case'}"
