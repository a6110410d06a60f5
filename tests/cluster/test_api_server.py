"""The generated CRDs, the samples and the manifests against a real API server."""

from __future__ import annotations

import json

import pytest
import yaml

from tests.cluster.torchyard import get, install
from tests.objects import INVALID, REPO, Invalid, contains, sample

KINDS = ("CompressionJob", "TrainingJob", "ModelVersion")


@pytest.fixture(scope="module", autouse=True)
def installed(control_plane):
    install(control_plane)


@pytest.mark.parametrize("kind", KINDS)
def test_each_sample_applies_dry_run_and_for_real(control_plane, namespace, kind):
    manifest = yaml.safe_dump(sample(kind))
    for extra in (["--dry-run=server"], []):
        control_plane.kubectl("apply", "-n", namespace, "-f", "-", *extra, input=manifest)
    obj = get(control_plane, kind.lower(), sample(kind)["metadata"]["name"], "-n", namespace)
    assert contains(obj["spec"], sample(kind)["spec"])


def test_samples_kustomization_applies(control_plane):
    control_plane.kubectl("apply", "--server-side", "-k", str(REPO / "manifests/samples"))
    listed = get(control_plane, "torchyard", "-n", "torchyard-demo")
    names = sorted(f"{item['kind']}/{item['metadata']['name']}" for item in listed["items"])
    # The digits ModelVersions are registered by the jobs when they succeed.
    assert names == [
        "CompressionJob/digits-pruned",
        "CompressionJob/minilm-int8",
        "ModelVersion/minilm-v1",
        "TrainingJob/digits-train",
    ]
    claim = get(control_plane, "pvc", "models", "-n", "torchyard-demo")
    assert claim["spec"]["resources"]["requests"]["storage"] == "2Gi"


def test_defaults_are_filled_in_by_the_api_server(control_plane, namespace):
    job = sample("CompressionJob")
    del job["spec"]["backoffLimit"]
    job["spec"]["quantize"] = {"mode": "dynamic"}
    control_plane.kubectl("apply", "-n", namespace, "-f", "-", input=yaml.safe_dump(job))
    spec = get(control_plane, "cjob", job["metadata"]["name"], "-n", namespace)["spec"]
    assert spec["backoffLimit"] == 3
    assert spec["quantize"]["granularity"] == "per_channel"


@pytest.mark.parametrize("case", INVALID, ids=lambda c: c.id)
def test_invalid_object_is_rejected_naming_the_field(control_plane, namespace, case: Invalid):
    result = control_plane.kubectl(
        "apply", "-n", namespace, "-f", "-", input=yaml.safe_dump(case.build()), check=False
    )
    assert result.returncode != 0, f"{case.id} was accepted"
    assert case.field in result.stderr, result.stderr
    listed = get(control_plane, case.kind.lower(), "-n", namespace)
    assert listed["items"] == []


def test_training_job_recovery_cannot_change(control_plane, namespace):
    """Running pods met at the rendezvous the job's recovery chose: switching it would
    start a replacement that can never join them."""
    job = sample("TrainingJob")
    control_plane.kubectl("apply", "-n", namespace, "-f", "-", input=yaml.safe_dump(job))
    job["spec"]["recovery"] = "inPlace"
    result = control_plane.kubectl(
        "apply", "-n", namespace, "-f", "-", input=yaml.safe_dump(job), check=False
    )
    assert result.returncode != 0
    assert "spec.recovery" in result.stderr and "cannot change" in result.stderr
    job["spec"]["recovery"] = "gang"  # the default, written out: no change
    control_plane.kubectl("apply", "-n", namespace, "-f", "-", input=yaml.safe_dump(job))


def test_model_version_identity_cannot_change(control_plane, namespace):
    version = sample("ModelVersion")
    control_plane.kubectl("apply", "-n", namespace, "-f", "-", input=yaml.safe_dump(version))
    version["spec"]["artifact"]["digest"] = "sha256:" + "0" * 64
    result = control_plane.kubectl(
        "apply", "-n", namespace, "-f", "-", input=yaml.safe_dump(version), check=False
    )
    assert result.returncode != 0
    assert "spec.artifact" in result.stderr and "immutable" in result.stderr
    # Serving and control fields stay editable.
    version = sample("ModelVersion")
    version["spec"]["paused"] = True
    version["spec"]["serving"]["replicas"] = 3
    control_plane.kubectl("apply", "-n", namespace, "-f", "-", input=yaml.safe_dump(version))


@pytest.mark.parametrize(
    ("path", "words"),
    [
        ("compressionjob.spec.prune.sparsity", "Fraction of weights"),
        ("trainingjob.spec.parallelism.mode", "DistributedDataParallel"),
        ("modelversion.spec.artifact.digest", "sha256"),
        ("modelversion.status.conditions", "Latest observations"),
        ("trainingjob.spec.storage.s3.credentialsSecret", "AWS_SECRET_ACCESS_KEY"),
        ("compressionjob.spec.serviceAccountName", "IRSA"),
    ],
)
def test_kubectl_explain_shows_field_descriptions(control_plane, path, words):
    out = control_plane.kubectl("explain", path).stdout
    assert words in out, out


def test_get_torchyard_lists_all_kinds_with_printer_columns(control_plane, namespace):
    for kind in KINDS:
        control_plane.kubectl(
            "apply", "-n", namespace, "-f", "-", input=yaml.safe_dump(sample(kind))
        )
    out = control_plane.kubectl("get", "torchyard", "-n", namespace).stdout
    for name in (
        "compressionjob.torchyard.io/minilm-int8",
        "trainingjob.torchyard.io/digits-train",
        "modelversion.torchyard.io/minilm-v1",
    ):
        assert name in out, out
    for column in (
        "METHOD",
        "RATIO",
        "MODE",
        "REPLICAS",
        "PROGRESS",
        "MODEL",
        "VERSION",
        "WEIGHT",
        "PHASE",
        "AGE",
    ):
        assert column in out, out
    wide = control_plane.kubectl("get", "tjob", "-n", namespace, "-o", "wide").stdout
    assert "RESTARTS" in wide and "data" in wide and "2" in wide


def test_every_kustomization_renders(control_plane):
    kustomizations = sorted(REPO.glob("manifests/**/kustomization.yaml"))
    assert len(kustomizations) >= 3
    for path in kustomizations:
        out = control_plane.kubectl("kustomize", str(path.parent)).stdout
        assert list(yaml.safe_load_all(out)), path


def test_base_applies_server_side_and_operator_pod_is_restricted(control_plane):
    # `installed` applied the base; the Deployment's pod template must pass the
    # restricted policy of its namespace, so the ReplicaSet can create the pod.
    namespace = get(control_plane, "namespace", "torchyard-system")
    assert namespace["metadata"]["labels"]["pod-security.kubernetes.io/enforce"] == "restricted"
    control_plane.kubectl(
        "wait",
        "--for=create",
        "--timeout=60s",
        "pod",
        "-n",
        "torchyard-system",
        "-l",
        "app.kubernetes.io/name=torchyard-operator",
    )
    replica_sets = get(control_plane, "rs", "-n", "torchyard-system")["items"]
    events = json.dumps(get(control_plane, "events", "-n", "torchyard-system"))
    assert replica_sets and "violates PodSecurity" not in events


@pytest.mark.parametrize("overlay", ["dev", "production", "local-ha"])
def test_overlay_is_valid_for_the_api_server(control_plane, overlay):
    """Every object of the overlay passes the pinned release's schemas and admission
    (PriorityClass, PodDisruptionBudget, peering CRDs, the patched Deployment)."""
    path = REPO / "manifests/overlays" / overlay
    control_plane.kubectl(
        "apply", "--server-side", "--force-conflicts", "--dry-run=server", "-k", str(path)
    )
    rendered = list(yaml.safe_load_all(control_plane.kubectl("kustomize", str(path)).stdout))
    deployments = [o for o in rendered if o["kind"] == "Deployment"]
    if overlay == "production":
        [deployment] = deployments
        assert deployment["spec"]["replicas"] == 2
        assert (
            "--peering=torchyard" in deployment["spec"]["template"]["spec"]["containers"][0]["args"]
        )
        assert {o["kind"] for o in rendered} >= {"PodDisruptionBudget", "PriorityClass"}
