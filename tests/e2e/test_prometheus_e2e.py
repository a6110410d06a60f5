"""A real Prometheus (the distribution's `prometheus` server, which scripts/test installs
with promtool) scrapes the operator and every serving pod as manifests/monitoring says,
loads the shipped rules, and fires the alerts when a version fails its analysis and is
rolled back; a model whose serving version loses every ready pod sets off its alert (pending:
its `for: 5m` is promtool's to test, tests/unit/alert_rules_test.yml); every panel of the
shipped Grafana dashboard shows the model.

Debian builds Prometheus without its Kubernetes service discovery, so this module does
what the PodMonitor's discovery does: a ServiceAccount that may only list pods lists
those labelled torchyard.io/serving=true through the API server, every half second, and
writes their `http` ports into a file_sd file that Prometheus follows."""

from __future__ import annotations

import json
import shutil
import subprocess
import threading
import urllib.parse
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.cluster.torchyard import (
    OPERATOR_ACCOUNT,
    OPERATOR_NAMESPACE,
    apply,
    get,
    install,
    running_operator,
    wait_until,
)
from tests.e2e.test_modelversion_e2e import (
    FAST_ANALYSIS,
    STEPS,
    _status,
    _stop_client,
    _v1_serving_with_a_client,
    _version,
    _wait_phase,
    _wait_ready,
    artifacts,
    root,
)
from tests.objects import REPO
from tests.unit.test_grafana_dashboard import queries as dashboard_queries
from tests.workload.serving import free_port
from torchyard.resources.serving import SERVING_LABEL

__all__ = ["artifacts", "root"]  # the modelversion module's fixtures, used here

RULES = REPO / "manifests" / "monitoring" / "prometheusrule.yaml"
READER = "prometheus"


@pytest.fixture(scope="module")
def metrics_port() -> int:
    return free_port()


@pytest.fixture(scope="module")
def operator(cluster, tmp_path_factory, metrics_port) -> Iterator[Path]:
    """The operator as conftest's, with its metrics served (--metrics-port)."""
    install(cluster.cp)
    kubeconfig = cluster.cp.service_account_kubeconfig(OPERATOR_NAMESPACE, OPERATOR_ACCOUNT)
    log = tmp_path_factory.mktemp("operator") / "operator.log"
    with running_operator(cluster.cp, kubeconfig, log, metrics_port=metrics_port):
        yield log


def _pod_reader(cluster) -> Path:
    """A kubeconfig for a ServiceAccount that may get, list and watch pods: what
    Prometheus's RBAC grants it for pod discovery."""
    cluster.apply(
        {"apiVersion": "v1", "kind": "ServiceAccount",
         "metadata": {"name": READER, "namespace": OPERATOR_NAMESPACE}},
        {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRole",
         "metadata": {"name": "torchyard-e2e-prometheus"},
         "rules": [{"apiGroups": [""], "resources": ["pods"], "verbs": ["get", "list", "watch"]}]},
        {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRoleBinding",
         "metadata": {"name": "torchyard-e2e-prometheus"},
         "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole",
                     "name": "torchyard-e2e-prometheus"},
         "subjects": [{"kind": "ServiceAccount", "name": READER,
                       "namespace": OPERATOR_NAMESPACE}]},
    )  # fmt: skip
    return cluster.cp.service_account_kubeconfig(OPERATOR_NAMESPACE, READER)


def _config(rules: Path, operator_port: int, targets: Path) -> dict[str, Any]:
    """Scrape jobs that do what the ServiceMonitor and the PodMonitor ask for, with the
    labels the Prometheus Operator adds (service; namespace and pod come from
    discovery)."""
    return {
        "global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
        "rule_files": [str(rules)],
        "scrape_configs": [
            {
                "job_name": "torchyard-operator",
                "static_configs": [
                    {
                        "targets": [f"127.0.0.1:{operator_port}"],
                        "labels": {"service": "torchyard-operator-metrics"},
                    }
                ],
            },
            {
                "job_name": "torchyard-serving",
                "file_sd_configs": [{"files": [str(targets)], "refresh_interval": "1s"}],
            },
        ],
    }


def serving_targets(pods: dict[str, Any]) -> list[dict[str, Any]]:
    """file_sd target groups for the running pods' `http` container ports."""
    groups = []
    for pod in pods["items"]:
        ip = (pod.get("status") or {}).get("podIP")
        ports = [
            port["containerPort"]
            for container in pod["spec"]["containers"]
            for port in container.get("ports") or []
            if port.get("name") == "http"
        ]
        if ip and ports and (pod.get("status") or {}).get("phase") == "Running":
            labels = {"namespace": pod["metadata"]["namespace"], "pod": pod["metadata"]["name"]}
            groups.append({"targets": [f"{ip}:{ports[0]}"], "labels": labels})
    return groups


class Discovery:
    """Lists the serving pods through the API server as `kubeconfig`'s owner and keeps
    `targets` (file_sd JSON) up to date, until stopped."""

    def __init__(self, cluster: Any, kubeconfig: Path, targets: Path) -> None:
        self.cluster, self.kubeconfig, self.targets = cluster, kubeconfig, targets
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._write([])

    def _write(self, groups: list[dict[str, Any]]) -> None:
        written = self.targets.with_suffix(".tmp")
        written.write_text(json.dumps(groups))
        written.replace(self.targets)  # whole, or Prometheus may read half a file

    def _run(self) -> None:
        shown: list[dict[str, Any]] = []
        while not self._stop.wait(0.5):
            listed = self.cluster.cp.kubectl(
                "get", "pods", "-A", "-l", f"{SERVING_LABEL}=true", "-o", "json",
                kubeconfig=self.kubeconfig, check=False,
            )  # fmt: skip
            if (
                listed.returncode == 0
                and (groups := serving_targets(json.loads(listed.stdout))) != shown
            ):
                self._write(groups)
                shown = groups

    def __enter__(self) -> Discovery:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=10)


@pytest.fixture(scope="module")
def prometheus(cluster, operator, metrics_port, tmp_path_factory) -> Iterator[str]:
    """A Prometheus server on loopback; yields its URL."""
    binary = shutil.which("prometheus")
    assert binary, "prometheus is missing: scripts/test installs it (python -m tests.promtool)"
    directory = tmp_path_factory.mktemp("prometheus")
    rules = directory / "rules.yml"
    rules.write_text(yaml.safe_dump(yaml.safe_load(RULES.read_text())["spec"]))
    targets = directory / "serving.json"
    config = directory / "prometheus.yml"
    config.write_text(yaml.safe_dump(_config(rules, metrics_port, targets)))
    discovery = Discovery(cluster, _pod_reader(cluster), targets)
    url = f"http://127.0.0.1:{free_port()}"
    log = directory / "prometheus.log"
    with log.open("wb") as out:
        server = subprocess.Popen(
            [
                binary,
                f"--config.file={config}",
                f"--storage.tsdb.path={directory / 'data'}",
                f"--web.listen-address={url.removeprefix('http://')}",
            ],
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    try:
        wait_until("Prometheus ready", lambda: _ready(url, server, log), timeout=60)
        with discovery:
            yield url
    finally:
        server.terminate()
        server.wait(timeout=30)


def _ready(url: str, server: subprocess.Popen[bytes], log: Path) -> bool:
    assert server.poll() is None, f"prometheus exited:\n{log.read_text()[-4000:]}"
    try:
        with urllib.request.urlopen(f"{url}/-/ready", timeout=2) as answer:
            return answer.status == 200
    except OSError:
        return False


def _api(url: str, path: str, **query: str) -> Any:
    with urllib.request.urlopen(
        f"{url}/api/v1/{path}?{urllib.parse.urlencode(query)}", timeout=10
    ) as answer:
        body = json.loads(answer.read())
    assert body["status"] == "success", body
    return body["data"]


def _series(url: str, query: str) -> list[dict[str, Any]]:
    return list(_api(url, "query", query=query)["result"])


def _firing(url: str, alert: str, **labels: str) -> bool:
    return "firing" in _states(url, alert, **labels)


def _states(url: str, alert: str, **labels: str) -> set[str]:
    """The states (pending, firing) of the alert's instances with these labels."""
    return {
        found["state"]
        for found in _api(url, "alerts")["alerts"]
        if found["labels"].get("alertname") == alert
        and all(found["labels"].get(k) == v for k, v in labels.items())
    }


def test_the_shipped_rules_load_and_every_alert_is_there(prometheus):
    groups = _api(prometheus, "rules")["groups"]
    loaded = {rule["name"]: rule["health"] for group in groups for rule in group["rules"]}
    shipped = [
        rule["alert"]
        for group in yaml.safe_load(RULES.read_text())["spec"]["groups"]
        for rule in group["rules"]
    ]
    assert sorted(loaded) == sorted(shipped)
    wait_until(
        "every rule evaluated without error",
        lambda: all(
            rule["health"] == "ok"
            for group in _api(prometheus, "rules")["groups"]
            for rule in group["rules"]
        ),
        timeout=30,
    )
    # The operator is scraped: TorchyardOperatorDown's `up` series is there, and 1.
    wait_until(
        "the operator scraped",
        lambda: (
            [s["value"][1] for s in _series(prometheus, 'up{service="torchyard-operator-metrics"}')]
            == ["1"]
        ),
        timeout=30,
    )


def test_a_version_that_fails_its_analysis_fires_the_alerts(
    cluster, namespace, prometheus, artifacts, root
):
    stop = _v1_serving_with_a_client(cluster, namespace, artifacts, root)
    rollout = {"steps": STEPS, "analysis": FAST_ANALYSIS}
    faulty = {"replicas": 1, "env": [{"name": "TORCHYARD_FAULT_RATE", "value": "1.0"}]}
    apply(cluster.cp, namespace, _version("2", artifacts["2"], rollout=rollout, serving=faulty))
    _wait_phase(cluster, namespace, "digits-v2", "RolledBack")

    # The serving pods were found through the API server and scraped: v2's 500s (and
    # only v2's) are in Prometheus, labelled as the rules aggregate them. Over the last
    # minutes: v2's pods may be gone already, and their series stale.
    selector = f'namespace="{namespace}",code="500"'
    errors = _series(
        prometheus,
        "sum by (namespace, model, version) "
        f"(max_over_time(torchyard_inference_errors_total{{{selector}}}[5m])) > 0",
    )
    assert [(s["metric"]["model"], s["metric"]["version"]) for s in errors] == [("digits", "2")]

    wait_until(
        "TorchyardModelVersionAnalysisFailed firing",
        lambda: _firing(
            prometheus,
            "TorchyardModelVersionAnalysisFailed",
            namespace=namespace,
            model="digits",
            version="2",
        ),
        timeout=60,
    )
    wait_until(
        "TorchyardModelVersionRolledBack firing",
        lambda: _firing(
            prometheus,
            "TorchyardModelVersionRolledBack",
            namespace=namespace,
            model="digits",
            reason="AnalysisFailed",
        ),
        timeout=60,
    )
    # v1, which never failed, fires nothing.
    assert not _firing(prometheus, "TorchyardModelVersionAnalysisFailed", version="1")
    # Every panel of the Grafana dashboard shows this model, with the variables Grafana
    # fills in (one minute: the rollback is seconds old).
    blank = [
        title
        for title, expr in dashboard_queries(namespace, "digits", "1m")
        if not _series(prometheus, expr)
    ]
    assert not blank, f"dashboard panels without data: {blank}"
    counts = _stop_client(cluster, namespace, stop)
    assert counts["2"][1] > 0 and counts["1"][1] == 0, counts


def test_a_serving_version_that_loses_every_ready_pod_sets_off_its_alert(
    cluster, namespace, prometheus, artifacts
):
    apply(cluster.cp, namespace, _version("1", artifacts["1"]))
    _wait_ready(cluster, namespace, "digits-v1")
    labels = {"namespace": namespace, "model": "digits"}
    # Not from its first seconds (traffic asked for, no pod ready yet): Prometheus has
    # seen the ready pod, and the alert of those seconds is gone.
    ready = f'torchyard_modelversion_ready_replicas{{namespace="{namespace}",version="1"}} == 1'
    wait_until("Prometheus sees v1's ready pod", lambda: _series(prometheus, ready), timeout=60)
    wait_until(
        "no NoReadyPods alert for a model with a ready pod",
        lambda: not _states(prometheus, "TorchyardModelNoReadyPods", **labels),
        timeout=60,
    )
    # A quota that admits no pod: the pods deleted (an eviction, a drained node) cannot
    # come back.
    cluster.apply(
        {
            "apiVersion": "v1",
            "kind": "ResourceQuota",
            "metadata": {"name": "no-pods", "namespace": namespace},
            "spec": {"hard": {"pods": "0"}},
        }
    )
    wait_until(
        "the quota counted",
        lambda: (
            get(cluster.cp, "resourcequota", "no-pods", "-n", namespace)
            .get("status", {})
            .get("hard")
        ),
        timeout=30,
    )
    cluster.cp.kubectl(
        "delete", "pods", "-n", namespace, "-l", f"{SERVING_LABEL}=true", "--wait=false"
    )
    # A terminating pod, even one still Ready while it drains, is no ready replica.
    wait_until(
        "v1 without a ready pod",
        lambda: _status(cluster, namespace, "digits-v1").get("readyReplicas") == 0,
        timeout=60,
    )
    wait_until(
        "TorchyardModelNoReadyPods set off for the model",
        lambda: bool(_states(prometheus, "TorchyardModelNoReadyPods", **labels)),
        timeout=60,
    )
    # The version's status says why, in the API server's words.
    status = _status(cluster, namespace, "digits-v1")
    ready = next(c for c in status["conditions"] if c["type"] == "Ready")
    assert ready["status"] == "False" and "exceeded quota" in ready["message"], ready
    assert status["phase"] == "Serving" and status["weight"] == 100, status
    # Unhealthy is for failures, not this.
    assert not _states(prometheus, "TorchyardModelVersionUnhealthy", namespace=namespace)
