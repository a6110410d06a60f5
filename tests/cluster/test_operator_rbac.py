"""RBAC is enforced: the operator without one of its permissions cannot do its job.

This is the control for test_operator.py: the same operator under a ClusterRole that
lacks the status permission never manages to report status.
"""

from __future__ import annotations

import copy

import pytest
import yaml

from tests.cluster.torchyard import OPERATOR_NAMESPACE, get, install, running_operator, wait_until
from tests.objects import REPO, sample

LIMITED = "torchyard-operator-limited"


def _limited_rbac() -> str:
    documents = list(yaml.safe_load_all((REPO / "manifests/base/rbac.yaml").read_text()))
    limited = []
    for document in documents:
        document = copy.deepcopy(document)
        document["metadata"]["name"] = LIMITED
        if document["kind"] == "ClusterRole":
            document["rules"] = [
                rule
                for rule in document["rules"]
                if not any(resource.endswith("/status") for resource in rule["resources"])
            ]
        if document["kind"] == "ClusterRoleBinding":
            document["roleRef"]["name"] = LIMITED
            document["subjects"][0]["name"] = LIMITED
        limited.append(document)
    return yaml.safe_dump_all(limited)


@pytest.fixture(scope="module")
def limited_operator(control_plane, tmp_path_factory):
    install(control_plane)
    control_plane.kubectl("apply", "-f", "-", input=_limited_rbac())
    kubeconfig = control_plane.service_account_kubeconfig(OPERATOR_NAMESPACE, LIMITED)
    log = tmp_path_factory.mktemp("limited") / "operator.log"
    with running_operator(control_plane, kubeconfig, log):
        yield log


def test_without_status_permission_no_status_is_written(control_plane, namespace, limited_operator):
    job = sample("CompressionJob")
    control_plane.kubectl("apply", "-n", namespace, "-f", "-", input=yaml.safe_dump(job))
    # The operator sees the object and tries to write status; the API server refuses.
    wait_until(
        "the operator to be refused",
        lambda: (
            "403" in limited_operator.read_text() or "forbidden" in limited_operator.read_text()
        ),
        timeout=60,
    )
    current = get(control_plane, "cjob", job["metadata"]["name"], "-n", namespace)
    assert "status" not in current or not current["status"].get("conditions")
