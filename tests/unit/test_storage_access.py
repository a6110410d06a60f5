"""Pods of an object with spec.storage.s3 reach the store: endpoint and region as values,
credentials only as secretKeyRefs, the ServiceAccount the spec names."""

from __future__ import annotations

from typing import Any

import pytest

from tests.objects import sample
from torchyard.api.compression import CompressionJobSpec
from torchyard.api.modelversion import ModelVersionSpec, RegisterAs
from torchyard.api.training import TrainingJobSpec
from torchyard.resources.compression import compression_job
from torchyard.resources.registration import model_version
from torchyard.resources.serving import serving_deployment
from torchyard.resources.training import training_pod
from torchyard.validation import parse_spec

STORAGE = {
    "s3": {
        "endpoint": "http://minio.storage:9000",
        "region": "eu-central-1",
        "credentialsSecret": "s3-credentials",
    }
}
ACCOUNT = "model-reader"


def _pod_specs(extra: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """The pod spec each kind's builder makes for its sample plus `extra`."""
    compression = parse_spec(CompressionJobSpec, sample("CompressionJob")["spec"] | extra)
    training = parse_spec(TrainingJobSpec, sample("TrainingJob")["spec"] | extra)
    serving = parse_spec(ModelVersionSpec, sample("ModelVersion")["spec"] | extra)
    return {
        "CompressionJob": compression_job("c", "ns", compression)["spec"]["template"]["spec"],
        "TrainingJob": training_pod("t", "ns", training, replica=0, attempt=0)["spec"],
        "ModelVersion": serving_deployment("m", "ns", serving, 1)["spec"]["template"]["spec"],
    }


def _env(pod_spec: dict[str, Any]) -> dict[str, dict[str, Any]]:
    (container,) = pod_spec["containers"]
    return {entry["name"]: entry for entry in container["env"]}


@pytest.mark.parametrize("kind", ["CompressionJob", "TrainingJob", "ModelVersion"])
def test_s3_settings_and_identity_reach_every_kind_of_pod(kind):
    pod_spec = _pod_specs({"storage": STORAGE, "serviceAccountName": ACCOUNT})[kind]
    env = _env(pod_spec)
    assert env["TORCHYARD_S3_ENDPOINT"]["value"] == "http://minio.storage:9000"
    assert env["AWS_REGION"]["value"] == env["AWS_DEFAULT_REGION"]["value"] == "eu-central-1"
    for key in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
        assert env[key] == {
            "name": key,
            "valueFrom": {"secretKeyRef": {"name": "s3-credentials", "key": key}},
        }
    assert env["AWS_SESSION_TOKEN"]["valueFrom"]["secretKeyRef"] == {
        "name": "s3-credentials",
        "key": "AWS_SESSION_TOKEN",
        "optional": True,
    }
    assert pod_spec["serviceAccountName"] == ACCOUNT
    # The token stays unmounted: IRSA and workload identity bring their own.
    assert pod_spec["automountServiceAccountToken"] is False


@pytest.mark.parametrize("kind", ["CompressionJob", "TrainingJob", "ModelVersion"])
def test_without_storage_pods_get_no_aws_settings_and_the_default_account(kind):
    pod_spec = _pod_specs({})[kind]
    assert not {name for name in _env(pod_spec) if name.startswith(("AWS_", "TORCHYARD_S3"))}
    assert "serviceAccountName" not in pod_spec


def test_identity_without_secret_sets_no_credentials():
    """IRSA: the ServiceAccount's role, no Secret; only endpoint-less settings are set."""
    storage = {"s3": {"region": "us-west-2"}}
    env = _env(_pod_specs({"storage": storage, "serviceAccountName": "irsa"})["TrainingJob"])
    assert "AWS_ACCESS_KEY_ID" not in env and "TORCHYARD_S3_ENDPOINT" not in env
    assert env["AWS_REGION"]["value"] == "us-west-2"


def test_storage_wins_over_a_user_variable_of_the_same_name():
    user = [{"name": "AWS_REGION", "value": "us-east-1"}, {"name": "OMP_NUM_THREADS"}]
    spec = sample("TrainingJob")["spec"] | {"storage": STORAGE, "env": user}
    pod_spec = training_pod("t", "ns", parse_spec(TrainingJobSpec, spec), 0, 0)["spec"]
    (container,) = pod_spec["containers"]
    names = [entry["name"] for entry in container["env"]]
    assert names.count("AWS_REGION") == 1
    assert _env(pod_spec)["AWS_REGION"]["value"] == "eu-central-1"
    assert "OMP_NUM_THREADS" in names


def test_a_registered_version_reads_its_artifact_as_the_job_wrote_it():
    spec = parse_spec(CompressionJobSpec, sample("CompressionJob")["spec"] | {"storage": STORAGE})
    artifact = {"uri": "s3://models/digits/int8", "digest": "sha256:" + "a" * 64}
    version = model_version(
        RegisterAs(model="digits", version="2"),
        artifact,
        "ns",
        "compressionjob.c",
        storage=spec.storage,
        service_account_name=ACCOUNT,
    )
    assert version["spec"]["storage"] == STORAGE
    assert version["spec"]["serviceAccountName"] == ACCOUNT
    parse_spec(ModelVersionSpec, version["spec"])  # what the API server will accept
