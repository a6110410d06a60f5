"""Image names live in torchyard.images; the manifests, examples, kind e2e objects and the
Dockerfiles' build comments name the same images, and the operator's worker image can be
overridden by $TORCHYARD_WORKER_IMAGE."""

from __future__ import annotations

import itertools
import re
import tomllib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.objects import REPO, sample
from torchyard import __version__
from torchyard.api.compression import CompressionJobSpec
from torchyard.api.modelversion import ModelVersionSpec
from torchyard.api.training import TrainingJobSpec
from torchyard.images import (
    OPERATOR_IMAGE,
    REGISTRY,
    WORKER_IMAGE,
    WORKER_IMAGE_ENV,
    worker_image,
)
from torchyard.local.agent.config import AgentConfig
from torchyard.resources.compression import compression_job
from torchyard.resources.pods import worker_pod
from torchyard.resources.serving import serving_deployment
from torchyard.resources.training import training_pod
from torchyard.validation import parse_spec

DOCKERFILES = {
    "operator": (REPO / "images" / "operator" / "Dockerfile", {OPERATOR_IMAGE}),
    # one image for CPU and CUDA nodes: PyPI's torch, locked by hash (test_dependencies.py)
    "worker": (REPO / "images" / "worker" / "Dockerfile", {WORKER_IMAGE}),
}


def _documents(path: Path) -> list[dict[str, Any]]:
    return [doc for doc in yaml.safe_load_all(path.read_text()) if doc]


def _images(node: Any) -> Iterator[str]:
    """Every container image named anywhere in a manifest."""
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "image" and isinstance(value, str):
                yield value
            else:
                yield from _images(value)
    elif isinstance(node, list):
        for item in node:
            yield from _images(item)


def test_names_derive_from_the_registry_and_the_package_version():
    assert f"{REGISTRY}/torchyard-operator:v{__version__}" == OPERATOR_IMAGE
    assert f"{REGISTRY}/torchyard-worker:v{__version__}" == WORKER_IMAGE
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    assert project["version"] == __version__


def test_the_operator_deployment_names_both_images():
    (deployment,) = _documents(REPO / "manifests" / "base" / "deployment.yaml")
    (container,) = deployment["spec"]["template"]["spec"]["containers"]
    assert container["image"] == OPERATOR_IMAGE
    env = {var["name"]: var.get("value") for var in container.get("env", [])}
    assert env.get(WORKER_IMAGE_ENV) == WORKER_IMAGE


@pytest.mark.parametrize(
    "path",
    sorted((REPO / "manifests" / "examples").rglob("*.yaml"))
    + sorted((REPO / "tests" / "kind").glob("*.yaml")),
    ids=lambda path: str(path.relative_to(REPO)),
)
def test_examples_and_kind_objects_name_torchyards_images(path):
    for document in _documents(path):
        for image in _images(document):
            assert image in (OPERATOR_IMAGE, WORKER_IMAGE), f"{path.name}: {image}"


def test_the_examples_run_the_worker_image():
    found = {
        image
        for path in (REPO / "manifests" / "examples").rglob("*.yaml")
        for document in _documents(path)
        for image in _images(document)
    }
    assert found == {WORKER_IMAGE}


@pytest.mark.parametrize("name", sorted(DOCKERFILES))
def test_dockerfile_build_comments_tag_the_images_torchyard_uses(name):
    path, expected = DOCKERFILES[name]
    text = path.read_text()
    header = "\n".join(itertools.takewhile(lambda line: line.startswith("#"), text.splitlines()))
    tags = set(re.findall(r"(?:-t|--tag)\s+(\S+)", header))
    assert tags == expected, f"{path.relative_to(REPO)} header tags {tags}, not {expected}"
    assert f"ARG VERSION={__version__}\n" in text
    final_stage = text.rsplit("\nFROM ", 1)[1]
    title = re.search(r'org\.opencontainers\.image\.title="([^"]+)"', final_stage)
    assert title is not None and title.group(1) == f"torchyard-{name}"
    # Non-root, by number (the restricted Pod Security Standard checks runAsNonRoot).
    user = re.findall(r"^USER (\d+):(\d+)$", final_stage, re.MULTILINE)
    assert user and int(user[-1][0]) != 0 and int(user[-1][1]) != 0


def test_the_kind_e2e_script_reads_the_names_from_torchyard_images():
    script = (REPO / "scripts" / "kind-e2e.sh").read_text()
    assert "from torchyard.images import OPERATOR_IMAGE, WORKER_IMAGE" in script
    assert REGISTRY not in script


def test_worker_image_defaults_and_follows_the_environment():
    assert worker_image({}) == WORKER_IMAGE
    assert worker_image({WORKER_IMAGE_ENV: ""}) == WORKER_IMAGE
    assert worker_image({WORKER_IMAGE_ENV: "  "}) == WORKER_IMAGE
    mirror = "registry.example.com/ml/torchyard-worker:v0.1.0-cuda"
    assert worker_image({WORKER_IMAGE_ENV: mirror}) == mirror


def _pod(**options: Any) -> dict[str, Any]:
    return worker_pod(name="p", namespace="n", labels={}, args=["workload", "train"], **options)


def test_pods_use_the_default_worker_image_without_the_variable(monkeypatch):
    monkeypatch.delenv(WORKER_IMAGE_ENV, raising=False)
    assert _pod()["spec"]["containers"][0]["image"] == WORKER_IMAGE


def test_every_workload_pod_takes_the_overridden_image_at_build_time(monkeypatch):
    mirror = "registry.example.com/ml/torchyard-worker@sha256:" + "a" * 64
    monkeypatch.setenv(WORKER_IMAGE_ENV, mirror)
    compression = compression_job(
        "c", "n", parse_spec(CompressionJobSpec, sample("CompressionJob")["spec"])
    )
    training = training_pod(
        "t", "n", parse_spec(TrainingJobSpec, sample("TrainingJob")["spec"]), 0, 0
    )
    serving = serving_deployment(
        "m-v2", "n", parse_spec(ModelVersionSpec, sample("ModelVersion")["spec"]), 1
    )
    for built in (compression, training, serving, _pod()):
        assert list(_images(built)) == [mirror]
    # An explicit image still wins.
    assert _pod(image="other:1")["spec"]["containers"][0]["image"] == "other:1"


def test_the_local_node_agent_accepts_the_default_worker_image(monkeypatch, tmp_path):
    monkeypatch.setenv(WORKER_IMAGE_ENV, "registry.example.com/ml/torchyard-worker:v9")
    config = AgentConfig(kubeconfig=tmp_path / "k", infra_kubeconfig=tmp_path / "i")
    assert config.images == (WORKER_IMAGE,)
