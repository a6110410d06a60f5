"""The objects scripts/kind-e2e.sh applies (tests/kind/) are valid and fit together: the
API models accept them, they share one namespace and claim, the seed Job writes the model
the TrainingJob reads, the client calls the model's Service, and the script waits on the
names the objects produce. The script itself needs docker and kind (docs/kind.md)."""

from __future__ import annotations

import re
from typing import Any

import yaml

from tests.objects import REPO
from torchyard.api import KINDS_BY_NAME
from torchyard.api.modelversion import ModelVersionSpec
from torchyard.api.training import TrainingJobSpec
from torchyard.resources.registration import version_object_name
from torchyard.resources.serving import model_url
from torchyard.storage import pvc_claim
from torchyard.validation import parse_spec

KIND_DIR = REPO / "tests" / "kind"
SCRIPT = (REPO / "scripts" / "kind-e2e.sh").read_text()
PLACEHOLDER = "sha256:" + "0" * 64


def _objects() -> dict[str, dict[str, Any]]:
    found = {}
    for path in sorted(KIND_DIR.glob("*.yaml")):
        for document in yaml.safe_load_all(path.read_text()):
            if document:
                found[f"{document['kind']}/{document['metadata']['name']}"] = document
    return found


OBJECTS = _objects()
NAMESPACE = OBJECTS["Namespace/torchyard-e2e"]["metadata"]["name"]


def _spec(kind: str, name: str) -> Any:
    return parse_spec(KINDS_BY_NAME[kind].spec, OBJECTS[f"{kind}/{name}"]["spec"])


def test_every_file_is_applied_by_the_script():
    for path in KIND_DIR.glob("*.yaml"):
        assert f"tests/kind/{path.name}" in SCRIPT, path.name


def test_the_api_models_accept_the_torchyard_objects():
    kinds = [ref.split("/")[0] for ref in OBJECTS if ref.split("/")[0] in KINDS_BY_NAME]
    assert sorted(kinds) == ["CompressionJob", "ModelVersion", "TrainingJob"]
    for ref, document in OBJECTS.items():
        kind = ref.split("/")[0]
        if kind in KINDS_BY_NAME:
            assert parse_spec(KINDS_BY_NAME[kind].spec, document["spec"]).to_k8s()


def test_one_namespace_the_script_names_too():
    assert f"namespace={NAMESPACE} " in SCRIPT
    for ref, document in OBJECTS.items():
        if ref != f"Namespace/{NAMESPACE}":
            assert document["metadata"]["namespace"] == NAMESPACE, ref
    labels = OBJECTS[f"Namespace/{NAMESPACE}"]["metadata"]["labels"]
    assert labels["pod-security.kubernetes.io/enforce"] == "restricted"


def test_artifacts_live_on_the_claim_the_setup_creates():
    claims = {ref.split("/")[1] for ref in OBJECTS if ref.startswith("PersistentVolumeClaim/")}
    uris = [
        _spec("TrainingJob", "digits-train").model.uri,
        _spec("TrainingJob", "digits-train").output.uri,
        _spec("CompressionJob", "digits-prune").model.uri,
        _spec("CompressionJob", "digits-prune").output.uri,
        _spec("ModelVersion", "digits-v2").artifact.uri,
    ]
    assert {pvc_claim(uri) for uri in uris} == claims == {"models"}


def test_the_seed_job_writes_the_model_the_training_reads():
    seed = OBJECTS["Job/seed-model"]["spec"]["template"]["spec"]
    (container,) = seed["containers"]
    training: TrainingJobSpec = _spec("TrainingJob", "digits-train")
    assert f'local_path("{training.model.uri}")' in container["command"][-1]
    mounts = {mount["mountPath"] for mount in container["volumeMounts"]}
    assert "/mnt/pvc/models" in mounts


def test_the_chain_of_jobs_and_versions():
    training: TrainingJobSpec = _spec("TrainingJob", "digits-train")
    compression = _spec("CompressionJob", "digits-prune")
    version: ModelVersionSpec = _spec("ModelVersion", "digits-v2")
    assert training.register_as is not None
    first = version_object_name(training.register_as.model, training.register_as.version)
    assert f"modelversion/{first} " in SCRIPT
    assert compression.model.uri == training.output.uri
    assert version.artifact.uri == compression.output.uri
    assert version.model == training.register_as.model
    # The script fills in the CompressionJob's digest for this placeholder.
    assert version.artifact.digest == PLACEHOLDER
    assert r"s/sha256:0\{64\}/$digest/" in SCRIPT
    # Analysis at 50 %, then an open-ended pause the script ends with spec.promote.
    steps = version.rollout.steps
    assert steps[0].set_weight == 50
    assert steps[-1].pause is not None and steps[-1].pause.duration_seconds is None
    assert "jsonpath='{.status.phase}'=Paused modelversion/digits-v2" in SCRIPT
    assert '{"spec":{"promote":true}}' in SCRIPT


def test_the_client_calls_the_models_service():
    (container,) = OBJECTS["Job/client"]["spec"]["template"]["spec"]["containers"]
    model = _spec("ModelVersion", "digits-v2").model
    assert model_url(model, NAMESPACE) in container["command"]


def test_the_plain_pods_pass_the_restricted_pod_security_standard():
    for ref in ("Job/seed-model", "Job/client"):
        pod = OBJECTS[ref]["spec"]["template"]["spec"]
        assert pod["securityContext"]["runAsNonRoot"] is True
        assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
        for container in pod["containers"]:
            context = container["securityContext"]
            assert context["allowPrivilegeEscalation"] is False
            assert context["capabilities"] == {"drop": ["ALL"]}


def test_the_script_waits_on_the_conditions_the_local_e2e_tests_use():
    for kind, name in (("trainingjob", "digits-train"), ("compressionjob", "digits-prune")):
        assert re.search(rf"wait --for=condition=Succeeded {kind}/{name} ", SCRIPT)
    for name in ("digits-v1", "digits-v2"):
        assert re.search(rf"wait --for=condition=Ready modelversion/{name} ", SCRIPT)
