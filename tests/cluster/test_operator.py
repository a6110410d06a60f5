"""The operator, running as its own ServiceAccount under the RBAC in manifests/, sets status."""

from __future__ import annotations

import json
import time
import urllib.request

import pytest

from tests.cluster.torchyard import (
    OPERATOR_ACCOUNT,
    OPERATOR_NAMESPACE,
    apply,
    free_port,
    get,
    install,
    running_operator,
    wait_until,
)
from tests.objects import sample

KINDS = ("CompressionJob", "TrainingJob", "ModelVersion")


@pytest.fixture(scope="module")
def operator(control_plane, tmp_path_factory):
    install(control_plane)
    kubeconfig = control_plane.service_account_kubeconfig(OPERATOR_NAMESPACE, OPERATOR_ACCOUNT)
    log = tmp_path_factory.mktemp("operator") / "operator.log"
    metrics = free_port()
    with running_operator(control_plane, kubeconfig, log, metrics_port=metrics) as liveness:
        yield liveness, metrics


def _accepted(control_plane, namespace, kind, name, timeout="60s"):
    control_plane.kubectl(
        "wait",
        f"{kind.lower()}/{name}",
        "-n",
        namespace,
        "--for=condition=Accepted",
        f"--timeout={timeout}",
    )
    return get(control_plane, kind.lower(), name, "-n", namespace)


@pytest.mark.parametrize("kind", KINDS)
def test_operator_accepts_each_kind_and_reports_status(control_plane, namespace, operator, kind):
    obj = sample(kind)
    name = obj["metadata"]["name"]
    apply(control_plane, namespace, obj)
    current = _accepted(control_plane, namespace, kind, name)
    status = current["status"]
    # No node runs pods here: jobs wait, a first ModelVersion is deploying.
    assert status["phase"] in ("Pending", "Progressing")
    assert status["observedGeneration"] == current["metadata"]["generation"]
    (accepted,) = [c for c in status["conditions"] if c["type"] == "Accepted"]
    assert accepted["reason"] == "SpecValid"
    assert accepted["observedGeneration"] == current["metadata"]["generation"]

    def accepted_event():
        events = get(
            control_plane,
            "events",
            "-n",
            namespace,
            f"--field-selector=involvedObject.name={name},reason=Accepted",
        )["items"]
        return events

    (event,) = wait_until(f"an Accepted event for {kind}/{name}", accepted_event)
    assert event["type"] == "Normal"
    assert event["involvedObject"]["kind"] == kind


def test_spec_change_updates_observed_generation(control_plane, namespace, operator):
    job = sample("TrainingJob")
    apply(control_plane, namespace, job)
    _accepted(control_plane, namespace, "TrainingJob", "digits-train")
    job["spec"]["hyperparameters"]["epochs"] = 7
    apply(control_plane, namespace, job)

    def observed_two():
        current = get(control_plane, "tjob", "digits-train", "-n", namespace)
        generation = current["metadata"]["generation"]
        return generation == 2 and current["status"].get("observedGeneration") == 2

    wait_until("observedGeneration 2", observed_two)


def test_operator_never_writes_spec_and_reapply_changes_nothing(control_plane, namespace, operator):
    version = sample("ModelVersion")
    apply(control_plane, namespace, version)
    _accepted(control_plane, namespace, "ModelVersion", "minilm-v1")
    before = _settled(control_plane, namespace)
    managers = {entry["manager"] for entry in before["metadata"]["managedFields"]}
    assert len(managers) >= 2, managers  # kubectl for spec, the operator for status
    for entry in before["metadata"]["managedFields"]:
        if "f:spec" in json.dumps(entry.get("fieldsV1", {})):
            assert entry["manager"].startswith("kubectl"), entry
    again = apply(control_plane, namespace, version)
    assert "unchanged" in again.stdout
    after = get(control_plane, "mv", "minilm-v1", "-n", namespace)
    assert after["metadata"]["resourceVersion"] == before["metadata"]["resourceVersion"]


def _settled(control_plane, namespace):
    """The ModelVersion once the operator has stopped changing its status."""
    previous = None
    for _ in range(60):
        current = get(control_plane, "mv", "minilm-v1", "-n", namespace, "--show-managed-fields")
        if previous and current["metadata"]["resourceVersion"] == previous:
            return current
        previous = current["metadata"]["resourceVersion"]
        time.sleep(3)
    raise AssertionError("the operator kept changing the ModelVersion's status")


def test_liveness_endpoint_answers(operator):
    liveness, _ = operator
    with urllib.request.urlopen(liveness, timeout=5) as response:
        assert response.status == 200


def test_metrics_count_reconciles_per_kind(control_plane, namespace, operator):
    _, port = operator
    apply(control_plane, namespace, sample("CompressionJob"))
    _accepted(control_plane, namespace, "CompressionJob", "minilm-int8")

    def scraped():
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as response:
            text = response.read().decode()
        return 'torchyard_reconcile_total{kind="CompressionJob",outcome="success"}' in text and text

    text = wait_until("a counted CompressionJob reconcile", scraped)
    assert "torchyard_reconcile_duration_seconds_bucket" in text
