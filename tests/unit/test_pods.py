"""The pod builder produces pods that meet the restricted Pod Security Standard."""

from __future__ import annotations

import json

from tests.objects import sample
from torchyard.api.base import ResourceRequirements
from torchyard.api.compression import CompressionJobSpec
from torchyard.api.modelversion import ModelVersionSpec
from torchyard.api.training import TrainingJobSpec
from torchyard.images import WORKER_IMAGE
from torchyard.resources.compression import compression_job
from torchyard.resources.pods import POD_ONLY_FIELDS, owner_labels, worker_pod
from torchyard.resources.serving import serving_deployment
from torchyard.resources.training import training_pod
from torchyard.validation import parse_spec


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


PLACEMENT = {
    "nodeSelector": {"nvidia.com/gpu.present": "true"},
    "tolerations": [{"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}],
    "affinity": {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {}}},
    "priorityClassName": "training-high",
}


def test_every_kind_places_its_pods_where_the_spec_says():
    """TrainingJob replicas, the CompressionJob's Job and a version's serving pods all
    carry the spec's placement unchanged (a tainted GPU pool is reachable from each)."""
    training = parse_spec(TrainingJobSpec, {**sample("TrainingJob")["spec"], **PLACEMENT})
    compression = parse_spec(CompressionJobSpec, {**sample("CompressionJob")["spec"], **PLACEMENT})
    version = sample("ModelVersion")["spec"]
    serving = parse_spec(
        ModelVersionSpec, {**version, "serving": {**version["serving"], **PLACEMENT}}
    )
    pods = [
        training_pod("t", "ns", training, 0, 0)["spec"],
        compression_job("c", "ns", compression)["spec"]["template"]["spec"],
        serving_deployment("m-v1", "ns", serving, 1)["spec"]["template"]["spec"],
    ]
    for pod in pods:
        assert {key: pod[key] for key in PLACEMENT} == PLACEMENT


def test_without_placement_the_scheduler_is_free():
    pod = training_pod("t", "ns", parse_spec(TrainingJobSpec, sample("TrainingJob")["spec"]), 0, 0)
    assert not {"nodeSelector", "tolerations", "affinity", "priorityClassName"} & set(pod["spec"])


def test_training_replicas_get_a_memory_backed_dev_shm_sized_from_the_spec():
    spec = parse_spec(TrainingJobSpec, sample("TrainingJob")["spec"])
    assert spec.shm_size == "1Gi"
    pod = training_pod("t", "ns", spec.model_copy(update={"shm_size": "8Gi"}), 0, 0)["spec"]
    assert {"name": "shm", "emptyDir": {"medium": "Memory", "sizeLimit": "8Gi"}} in pod["volumes"]
    mounts = pod["containers"][0]["volumeMounts"]
    assert {"name": "shm", "mountPath": "/dev/shm"} in mounts


def test_the_workload_gets_its_spec_without_the_fields_that_only_shape_the_pod():
    """An older worker image refuses unknown spec fields: what it never reads stays out."""
    spec = parse_spec(TrainingJobSpec, {**sample("TrainingJob")["spec"], **PLACEMENT})
    env = training_pod("t", "ns", spec, 0, 0)["spec"]["containers"][0]["env"]
    given = json.loads(next(e["value"] for e in env if e["name"] == "TORCHYARD_SPEC"))
    assert not set(POD_ONLY_FIELDS) & set(given)
    assert parse_spec(TrainingJobSpec, given).hyperparameters == spec.hyperparameters
    version = sample("ModelVersion")["spec"]
    serving = parse_spec(
        ModelVersionSpec, {**version, "serving": {**version["serving"], **PLACEMENT}}
    )
    env = serving_deployment("m-v1", "ns", serving, 1)["spec"]["template"]["spec"]
    given = json.loads(
        next(e["value"] for e in env["containers"][0]["env"] if e["name"] == "TORCHYARD_SPEC")
    )
    assert not set(POD_ONLY_FIELDS) & set(given["serving"])
