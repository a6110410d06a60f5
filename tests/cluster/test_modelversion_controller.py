"""The ModelVersion controller against a real API server: Deployments, the model's
Service, status, the hand-over finalizer, and no API writes once a model is settled.

No node runs the serving pods here: the Deployment controller creates them, and the
tests set their status through the API as a kubelet would. The e2e tests serve for
real.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.builders import model_version
from tests.cluster.torchyard import (
    OPERATOR_ACCOUNT,
    OPERATOR_NAMESPACE,
    Session,
    install,
    running_operator,
)
from torchyard.controllers.modelversion import FINALIZER

DIGEST = "sha256:" + "b" * 64


@pytest.fixture(scope="module")
def operator(control_plane, tmp_path_factory) -> Iterator[Path]:
    install(control_plane)
    kubeconfig = control_plane.service_account_kubeconfig(OPERATOR_NAMESPACE, OPERATOR_ACCOUNT)
    log = tmp_path_factory.mktemp("operator") / "operator.log"
    with running_operator(control_plane, kubeconfig, log):
        yield log


def _version(version: str, **spec: Any) -> dict[str, Any]:
    artifact = {"uri": f"pvc://models/digits-{version}", "digest": DIGEST}
    return (
        model_version("digits", version)
        .spec(artifact=artifact, serving={"replicas": 1}, **spec)
        .obj()
    )


def _make_ready(session: Session, name: str) -> str:
    """Mark the version's pod Running and Ready, as the kubelet would once the model is
    loaded; returns the pod's name."""
    pod = session.wait(
        f"a pod of {name}", lambda: session.pods(f"torchyard.io/modelversion={name}")
    )[0]
    status = {
        "phase": "Running",
        "podIP": "10.244.0.9",
        "podIPs": [{"ip": "10.244.0.9"}],
        "conditions": [{"type": "Ready", "status": "True"}],
    }
    session.patch_status("pod", pod["metadata"]["name"], status)
    return str(pod["metadata"]["name"])


def _phase(session: Session, name: str, phase: str) -> dict[str, Any]:
    return session.wait(
        f"{name} {phase}",
        lambda: (mv := session.get("mv", name)).get("status", {}).get("phase") == phase and mv,
    )


def test_a_version_gets_its_deployment_service_and_finalizer_and_serves(session, operator):
    session.apply(_version("1"))
    deployment = session.wait(
        "the serving Deployment",
        lambda: next(
            (
                d
                for d in session.objects("deployments")
                if d["metadata"]["name"].endswith("-serving")
            ),
            None,
        ),
    )
    assert deployment["metadata"]["name"] == "digits-v1-serving"
    assert deployment["spec"]["replicas"] == 1
    assert deployment["metadata"]["ownerReferences"][0]["kind"] == "ModelVersion"
    service = session.get("service", "digits-model")
    assert [ref["name"] for ref in service["metadata"]["ownerReferences"]] == ["digits-v1"]
    assert service["spec"]["selector"] == {
        "torchyard.io/model": "digits",
        "torchyard.io/serving": "true",
    }
    # The same reconcile writes status and the finalizer just after the Deployment.
    mv = session.wait(
        "v1's status and finalizer",
        lambda: (v := session.get("mv", "digits-v1"))["metadata"].get("finalizers") and v,
    )
    assert mv["metadata"]["finalizers"] == [FINALIZER]
    assert mv["status"]["phase"] == "Progressing"

    _make_ready(session, "digits-v1")
    mv = _phase(session, "digits-v1", "Serving")
    ready = next(c for c in mv["status"]["conditions"] if c["type"] == "Ready")
    assert ready["status"] == "True" and mv["status"]["readyReplicas"] == 1
    assert session.events("digits-v1", "Serving")


def test_a_settled_model_costs_the_api_server_nothing(session, operator):
    session.apply(_version("1"))
    _make_ready(session, "digits-v1")
    _phase(session, "digits-v1", "Serving")
    session.wait(
        "v1 recorded as the stable version",
        lambda: session.get("mv", "digits-v1")["status"].get("stableVersion"),
    )
    time.sleep(3)  # the last write's echoes

    def versions() -> tuple[str, int, str]:
        """What any write by the operator would change: the version's resourceVersion
        (status, finalizers), its Deployment's generation (replicas, template), the
        model Service's resourceVersion (owners)."""
        mv = session.get("mv", "digits-v1")
        deployment = session.get("deployment", "digits-v1-serving")
        service = session.get("service", "digits-model")
        return (
            mv["metadata"]["resourceVersion"],
            deployment["metadata"]["generation"],
            service["metadata"]["resourceVersion"],
        )

    before = versions()
    time.sleep(15)
    assert versions() == before


def test_deleting_the_serving_version_restores_the_previous_one_without_a_gap(session, operator):
    session.apply(_version("1"))
    _make_ready(session, "digits-v1")
    _phase(session, "digits-v1", "Serving")
    session.apply(_version("2", promote=True))
    v2_pod = _make_ready(session, "digits-v2")
    _phase(session, "digits-v2", "Serving")
    _phase(session, "digits-v1", "Superseded")
    session.wait("v1's pods gone", lambda: not session.pods("torchyard.io/modelversion=digits-v1"))

    session.kubectl("delete", "mv", "digits-v2", "--wait=false")
    session.wait(
        "v1 scaled up again",
        lambda: session.get("deployment", "digits-v1-serving")["spec"]["replicas"] == 1,
    )
    time.sleep(3)
    # v1 has no ready pod yet: the leaving version keeps its own and stays.
    assert session.get("mv", "digits-v2")["metadata"]["deletionTimestamp"]
    assert [p["metadata"]["name"] for p in session.pods("torchyard.io/modelversion=digits-v2")] == [
        v2_pod
    ]

    _make_ready(session, "digits-v1")
    session.wait(
        "v2 gone once v1 is ready",
        lambda: not session.objects("mv", "--field-selector=metadata.name=digits-v2"),
    )
    assert _phase(session, "digits-v1", "Serving")["status"]["weight"] == 100


def test_a_version_the_operator_cannot_serve_says_why_in_ready(session, operator):
    # A Service of the model's name that is someone else's: the model cannot be served
    # under it, and the operator never takes it over.
    session.kubectl("create", "service", "clusterip", "digits-model", "--tcp=80:80")
    session.apply(_version("1"))
    ready = session.wait(
        "Ready=False with the conflict",
        lambda: next(
            (
                c
                for c in session.get("mv", "digits-v1").get("status", {}).get("conditions", [])
                if c["type"] == "Ready" and c["reason"] == "Conflict"
            ),
            None,
        ),
    )
    assert "digits-model" in ready["message"]
    assert session.events("digits-v1", "Conflict")
