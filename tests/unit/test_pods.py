"""The pod builder produces pods that meet the restricted Pod Security Standard."""

from __future__ import annotations

from torchyard.api.base import ResourceRequirements
from torchyard.images import WORKER_IMAGE
from torchyard.resources.pods import owner_labels, worker_pod


def _pod():
    return worker_pod(
        name="digits-ddp-0",
        namespace="team-a",
        labels=owner_labels("TrainingJob", "digits-ddp"),
        args=["workload", "train"],
        env={"TORCHYARD_SPEC": "{}"},
        resources=ResourceRequirements(requests={"cpu": "1", "memory": "1Gi"}),
    )


def test_labels_name_the_owner_and_the_manager():
    labels = _pod()["metadata"]["labels"]
    assert labels == {
        "app.kubernetes.io/managed-by": "torchyard",
        "torchyard.io/trainingjob": "digits-ddp",
    }


def test_restricted_profile_settings():
    pod = _pod()
    spec = pod["spec"]
    assert spec["securityContext"]["runAsNonRoot"] is True
    assert spec["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
    (container,) = spec["containers"]
    context = container["securityContext"]
    assert context["allowPrivilegeEscalation"] is False
    assert context["capabilities"] == {"drop": ["ALL"]}
    assert "hostNetwork" not in spec and "hostPID" not in spec
    assert all("hostPath" not in volume for volume in spec["volumes"])


def test_container_runs_the_workload_in_the_worker_image():
    (container,) = _pod()["spec"]["containers"]
    assert container["image"] == WORKER_IMAGE
    assert container["command"] == ["torchyard"]
    assert container["args"] == ["workload", "train"]
    assert container["resources"] == {"requests": {"cpu": "1", "memory": "1Gi"}}
    assert container["terminationMessagePolicy"] == "FallbackToLogsOnError"
    assert {"name": "TORCHYARD_SPEC", "value": "{}"} in container["env"]
