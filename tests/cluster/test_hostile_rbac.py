"""Hostile tenants and RBAC: the namespaced install (manifests/overlays/namespaced).

The operator runs as its ServiceAccount under exactly the overlay's Roles and the flags
of the overlay's Deployment, on a control plane of its own (the session's may hold the
base install's ClusterRoleBinding for the same ServiceAccount). The API server runs
OwnerReferencesPermissionEnforcement, as OpenShift does.

Expectations, as a tenant sees them:
- an object in a served namespace is Accepted and gets its children within 60 s;
- an object in any other namespace is never touched (no status, no children), and the
  operator's log shows neither a traceback nor a refusal for it;
- the operator's identity can read or change nothing outside its namespaces, nor any
  Secret inside them;
- a child that blocks its owner's deletion needs update on the owner's finalizers.

Hostile inputs here: 1 object in a namespace the operator does not serve, 6 requests
outside the operator's grants, 1 child created without the finalizers permission.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from tests.cluster.torchyard import (
    OPERATOR_ACCOUNT,
    OPERATOR_NAMESPACE,
    apply,
    free_port,
    get,
    install,
    operator_process,
    wait_until,
)
from tests.objects import REPO, sample
from torchyard.local.controlplane import ControlPlane

OVERLAY = "manifests/overlays/namespaced"
TENANTS = ("tenant-a", "tenant-b")
OUTSIDER = "tenant-c"
OPERATOR = f"system:serviceaccount:{OPERATOR_NAMESPACE}:{OPERATOR_ACCOUNT}"


@pytest.fixture(scope="module")
def plane() -> Iterator[ControlPlane]:
    with ControlPlane(controllers=True) as cp:
        yield cp


def _overlay_flags(cp: ControlPlane) -> list[str]:
    """The --namespace flags of the overlay's operator Deployment, as kustomize builds it."""
    built = yaml.safe_load_all(cp.kubectl("kustomize", str(REPO / OVERLAY)).stdout)
    (deployment,) = [d for d in built if d and d["kind"] == "Deployment"]
    args = deployment["spec"]["template"]["spec"]["containers"][0]["args"]
    return [arg for arg in args if arg.startswith("--namespace")]


@pytest.fixture(scope="module")
def operator_log(plane: ControlPlane, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    install(plane, OVERLAY)
    plane.kubectl("create", "namespace", OUTSIDER)
    plane.kubectl("label", "namespace", OUTSIDER, "pod-security.kubernetes.io/enforce=restricted")
    for namespace in (*TENANTS, OUTSIDER):
        wait_until(
            f"the default ServiceAccount of {namespace}",
            lambda namespace=namespace: (
                plane.kubectl("get", "sa", "default", "-n", namespace, check=False).returncode == 0
            ),
        )
    flags = _overlay_flags(plane)
    assert flags == [f"--namespace={t}" for t in TENANTS]
    kubeconfig = plane.service_account_kubeconfig(OPERATOR_NAMESPACE, OPERATOR_ACCOUNT)
    log = tmp_path_factory.mktemp("namespaced") / "operator.log"
    liveness = f"--liveness=http://127.0.0.1:{free_port()}/healthz"
    with operator_process(kubeconfig, log, liveness, *flags):
        yield log


def _children(cp: ControlPlane, namespace: str, job: str) -> list[dict]:
    found = []
    for kind in ("pods", "services"):
        items = get(cp, kind, "-n", namespace, f"-l=torchyard.io/trainingjob={job}")["items"]
        found += items
    return found


def test_the_operator_reconciles_its_namespaces_and_never_touches_another(plane, operator_log):
    job = sample("TrainingJob")
    name = job["metadata"]["name"]
    for namespace in (*TENANTS, OUTSIDER):
        apply(plane, namespace, job)
    for namespace in TENANTS:
        plane.kubectl(
            "wait", f"tjob/{name}", "-n", namespace, "--for=condition=Accepted", "--timeout=60s"
        )
        children = wait_until(
            f"the replicas and Service of {namespace}/{name}",
            lambda namespace=namespace: (
                len(_children(plane, namespace, name)) >= 2 and _children(plane, namespace, name)
            ),
        )
        for child in children:
            (owner,) = child["metadata"]["ownerReferences"]
            # blockOwnerDeletion passed OwnerReferencesPermissionEnforcement
            assert owner["kind"] == "TrainingJob" and owner["blockOwnerDeletion"] is True
    time.sleep(5)  # what the operator would do to the outsider, it has had time to do
    outsider = get(plane, "tjob", name, "-n", OUTSIDER)
    assert not outsider.get("status"), outsider["status"]
    assert _children(plane, OUTSIDER, name) == []
    log = operator_log.read_text()
    assert "Traceback" not in log, log[-3000:]
    assert "forbidden" not in log.lower() and OUTSIDER not in log, log[-3000:]


@pytest.mark.parametrize(
    ("verb", "resource", "where", "allowed"),
    [
        ("list", "trainingjobs.torchyard.io", ["-n", OUTSIDER], False),
        ("create", "pods", ["-n", OUTSIDER], False),
        ("patch", "trainingjobs.torchyard.io", ["--subresource=status", "-n", OUTSIDER], False),
        ("list", "pods", ["--all-namespaces"], False),
        ("get", "secrets", ["-n", TENANTS[0]], False),
        ("list", "configmaps", ["-n", TENANTS[0]], False),
        # the controls: what it needs, where it may
        ("create", "pods", ["-n", TENANTS[0]], True),
        (
            "update",
            "trainingjobs.torchyard.io",
            ["--subresource=finalizers", "-n", TENANTS[1]],
            True,
        ),
        ("patch", "trainingjobs.torchyard.io", ["--subresource=status", "-n", TENANTS[1]], True),
    ],
)
def test_the_operator_identity_reaches_nothing_outside_its_grants(
    plane, operator_log, verb, resource, where, allowed
):
    answer = plane.kubectl("auth", "can-i", verb, resource, *where, f"--as={OPERATOR}", check=False)
    assert answer.stdout.strip() == ("yes" if allowed else "no"), (verb, resource, where, answer)


def test_blocking_an_owners_deletion_needs_update_on_its_finalizers(plane, operator_log):
    namespace = TENANTS[0]
    job = sample("TrainingJob")
    apply(plane, namespace, job)
    owner = get(plane, "tjob", job["metadata"]["name"], "-n", namespace)
    # an identity with the tenant Role's rules, less the one on finalizers
    (role,) = [
        d
        for d in yaml.safe_load_all((REPO / OVERLAY / "rbac.yaml").read_text())
        if d["kind"] == "Role" and d["metadata"]["namespace"] == namespace
    ]
    role["metadata"]["name"] = "no-finalizers"
    role["rules"] = [r for r in role["rules"] if not r["resources"][0].endswith("/finalizers")]
    plane.kubectl("create", "serviceaccount", "no-finalizers", "-n", namespace)
    plane.kubectl("apply", "-f", "-", input=yaml.safe_dump(role))
    plane.kubectl(
        "create", "rolebinding", "no-finalizers", "-n", namespace, "--role=no-finalizers",
        f"--serviceaccount={namespace}:no-finalizers",
    )  # fmt: skip

    def service(name: str, block: bool) -> str:
        reference = {
            "apiVersion": owner["apiVersion"],
            "kind": "TrainingJob",
            "name": owner["metadata"]["name"],
            "uid": owner["metadata"]["uid"],
            "controller": True,
            "blockOwnerDeletion": block,
        }
        return json.dumps(
            {
                "apiVersion": "v1",
                "kind": "Service",
                "metadata": {"name": name, "namespace": namespace, "ownerReferences": [reference]},
                "spec": {"clusterIP": "None", "ports": [{"port": 29500}]},
            }
        )

    as_it = f"--as=system:serviceaccount:{namespace}:no-finalizers"
    refused = plane.kubectl("create", "-f", "-", as_it, input=service("blocks", True), check=False)
    assert refused.returncode != 0
    assert "cannot set blockOwnerDeletion" in refused.stderr, refused.stderr
    # the same child without blockOwnerDeletion is fine: the rule is what made the difference
    plane.kubectl("create", "-f", "-", as_it, input=service("does-not-block", False))
    # and the operator's identity, which has the rule, may
    plane.kubectl("create", "-f", "-", f"--as={OPERATOR}", input=service("operator-blocks", True))
