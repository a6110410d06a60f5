"""The Grafana dashboard (manifests/monitoring/grafana-dashboard.json): valid PromQL over
metrics the operator and the serving pods export, per model, every panel placed; the
e2e (tests/e2e/test_prometheus_e2e.py) runs each query against a real Prometheus."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import promql_parser
import pytest

from tests.unit.test_alert_rules import _exported, _family

DASHBOARD = Path(__file__).parents[2] / "manifests" / "monitoring" / "grafana-dashboard.json"


def dashboard() -> dict[str, Any]:
    return dict(json.loads(DASHBOARD.read_text()))


def queries(namespace: str, model: str, window: str) -> list[tuple[str, str]]:
    """(panel title, PromQL) of every panel, its variables filled in as Grafana does."""
    found = []
    for panel in dashboard()["panels"]:
        for target in panel["targets"]:
            expr = (
                target["expr"]
                .replace("$namespace", namespace)
                .replace("$model", model)
                .replace("$__rate_interval", window)
            )
            found.append((panel["title"], expr))
    return found


def test_the_dashboard_shows_weights_errors_latency_and_rollbacks_per_model():
    titles = " / ".join(panel["title"] for panel in dashboard()["panels"])
    for shown in ("Traffic share", "error rate", "Latency", "Rollbacks", "analyses"):
        assert shown.lower() in titles.lower(), titles
    variables = [v["name"] for v in dashboard()["templating"]["list"]]
    assert variables == ["datasource", "namespace", "model"]


@pytest.mark.parametrize(
    ("title", "expr"), queries("ns", "digits", "1m"), ids=lambda value: str(value)[:40]
)
def test_each_query_is_valid_promql_for_one_model_over_exported_metrics(title, expr):
    promql_parser.parse(expr)
    used = {_family(name) for name in re.findall(r"\btorchyard_[a-z_]+", expr)}
    assert used <= {_family(name) for name in _exported()}, f"{title}: {used}"
    # Every selector names the model: no panel mixes models.
    for selector in re.findall(r"torchyard_[a-z_]+\{([^}]*)\}", expr):
        assert 'namespace="ns"' in selector and 'model="digits"' in selector, expr
    assert "$" not in expr


def test_panels_have_their_own_ids_and_places():
    panels = dashboard()["panels"]
    assert len({p["id"] for p in panels}) == len(panels)
    places = {(p["gridPos"]["x"], p["gridPos"]["y"]) for p in panels}
    assert len(places) == len(panels)
