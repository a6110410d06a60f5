"""ModelVersions served by real server pods on the local cluster: first version, a digest
mismatch that is never served, promotion and manual rollback."""

from __future__ import annotations

import os
import secrets
import shutil
from pathlib import Path

import pytest
import yaml

from tests.cluster.torchyard import (
    OPERATOR_ACCOUNT,
    OPERATOR_NAMESPACE,
    get,
    install,
    running_operator,
    wait_until,
)
from torchyard.workloads.artifacts import save_artifact
from torchyard.workloads.models import mlp

FACTORY = "torchyard.workloads.models:mlp"


@pytest.fixture(scope="module")
def operator(cluster, tmp_path_factory):
    install(cluster.cp)
    kubeconfig = cluster.cp.service_account_kubeconfig(OPERATOR_NAMESPACE, OPERATOR_ACCOUNT)
    log = tmp_path_factory.mktemp("operator") / "operator.log"
    with running_operator(cluster.cp, kubeconfig, log):
        yield log


@pytest.fixture(scope="module")
def artifacts():
    """Two small torchyard artifacts where pods can read them (not /tmp: their emptyDir)."""
    root = Path("/opt") / f"torchyard-e2e-{secrets.token_hex(4)}"
    root.mkdir(parents=True)
    found = {}
    for version in ("1", "2"):
        artifact = save_artifact(
            f"file://{root}/v{version}", mlp(), base={"factory": FACTORY, "kwargs": {}}
        )
        found[version] = artifact
    for path in [root, *root.rglob("*")]:
        os.chmod(path, 0o755 if path.is_dir() else 0o644)
    yield found
    shutil.rmtree(root, ignore_errors=True)


def _version(version, artifact, digest=None, **spec):
    return {
        "apiVersion": "torchyard.io/v1alpha1",
        "kind": "ModelVersion",
        "metadata": {"name": f"digits-v{version}", "labels": {"torchyard.io/model": "digits"}},
        "spec": {
            "model": "digits",
            "version": version,
            "artifact": {"uri": artifact.uri, "digest": digest or artifact.digest},
            "serving": {"replicas": 1},
            "rollout": {"steps": [{"setWeight": 50}, {"pause": {}}]},
            **spec,
        },
    }


def _apply(cluster, namespace, obj):
    cluster.cp.kubectl("apply", "-n", namespace, "-f", "-", input=yaml.safe_dump(obj))


def _status(cluster, namespace, name):
    return get(cluster.cp, "mv", name, "-n", namespace).get("status", {})


def test_first_version_serves_and_is_ready(cluster, namespace, operator, artifacts):
    _apply(cluster, namespace, _version("1", artifacts["1"]))
    cluster.cp.kubectl(
        "wait", "mv/digits-v1", "-n", namespace, "--for=condition=Ready", "--timeout=240s"
    )
    status = _status(cluster, namespace, "digits-v1")
    assert status["phase"] == "Serving"
    assert status["weight"] == 100
    assert status["readyReplicas"] == 1
    assert status["url"].endswith("/v2/models/digits")


def test_digest_mismatch_is_never_served_and_v1_keeps_serving(
    cluster, namespace, operator, artifacts
):
    _apply(cluster, namespace, _version("1", artifacts["1"]))
    cluster.cp.kubectl(
        "wait", "mv/digits-v1", "-n", namespace, "--for=condition=Ready", "--timeout=240s"
    )
    _apply(cluster, namespace, _version("2", artifacts["2"], digest="sha256:" + "0" * 64))
    wait_until(
        "v2 Failed",
        lambda: _status(cluster, namespace, "digits-v2").get("phase") == "Failed",
        timeout=240,
    )
    status = _status(cluster, namespace, "digits-v2")
    verified = next(c for c in status["conditions"] if c["type"] == "ArtifactVerified")
    assert verified["status"] == "False" and verified["reason"] == "DigestMismatch"
    assert status.get("readyReplicas", 0) == 0
    assert _status(cluster, namespace, "digits-v1")["phase"] == "Serving"


def test_promote_then_manual_rollback(cluster, namespace, operator, artifacts):
    _apply(cluster, namespace, _version("1", artifacts["1"]))
    cluster.cp.kubectl(
        "wait", "mv/digits-v1", "-n", namespace, "--for=condition=Ready", "--timeout=240s"
    )
    _apply(cluster, namespace, _version("2", artifacts["2"]))
    wait_until(
        "v2 at its first step",
        lambda: _status(cluster, namespace, "digits-v2").get("phase") in ("Progressing", "Paused"),
        timeout=120,
    )
    _apply(cluster, namespace, _version("2", artifacts["2"], promote=True))
    cluster.cp.kubectl(
        "wait", "mv/digits-v2", "-n", namespace, "--for=condition=Ready", "--timeout=240s"
    )
    wait_until(
        "v1 superseded",
        lambda: _status(cluster, namespace, "digits-v1").get("phase") == "Superseded",
        timeout=60,
    )
    events = get(
        cluster.cp,
        "events",
        "-n",
        namespace,
        "--field-selector=involvedObject.name=digits-v2,reason=Promoted",
    )["items"]
    assert events
