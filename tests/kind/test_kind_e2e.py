"""scripts/kind-e2e.sh as docs/kind.md runs it where there is no Docker and no registry:
kind's podman provider, the node image made here (KIND_NODE_IMAGE=local), both images
loaded with scripts/images, manifests/base installed, the samples and this directory's
objects run in real pods. Needs root (podman), like the image and node tiers; kind is
installed once from the Go module proxy."""

from __future__ import annotations

import os
import secrets
import subprocess
from datetime import UTC, datetime

import pytest

from tests.objects import REPO
from torchyard.imagebuild import kindnode
from torchyard.local.build import ensure_binaries

pytestmark = pytest.mark.kind

PREFIX = "torchyard-ci-"
# A name of its own: two runs on one machine (a CI run and a developer's) never share one.
CLUSTER = PREFIX + secrets.token_hex(3)
LIMIT_SECONDS = 2400
"""The script's time limit here: a cluster of this test's older than that is a killed
run's, never a live one's."""


def _kind_clusters(env: dict[str, str]) -> list[str]:
    done = subprocess.run(
        ["kind", "get", "clusters"], env=env, capture_output=True, text=True, check=False
    )
    return done.stdout.split()


def _age_seconds(container: str) -> float | None:
    done = subprocess.run(
        ["podman", "inspect", "--format", "{{.Created.Unix}}", container],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    if done.returncode != 0 or not done.stdout.strip().isdigit():
        return None
    return datetime.now(UTC).timestamp() - int(done.stdout.strip())


def _remove_killed_runs(env: dict[str, str]) -> None:
    """Delete the clusters that runs of this test killed before their cleanup left."""
    for name in _kind_clusters(env):
        age = _age_seconds(f"{name}-control-plane")
        if name.startswith(PREFIX) and (age is None or age > LIMIT_SECONDS + 300):
            print(f"deleting kind cluster {name}, left by a killed run")
            subprocess.run(["kind", "delete", "cluster", "--name", name], env=env, check=False)


@pytest.fixture(scope="module")
def kind_env() -> dict[str, str]:
    kind = kindnode.ensure_kind(print)
    kubectl = ensure_binaries(print).kubectl
    path = os.pathsep.join([str(kind.parent), str(kubectl.parent), os.environ["PATH"]])
    env = {**os.environ, "PATH": path, "KIND_EXPERIMENTAL_PROVIDER": "podman"}
    env.pop("CONTAINERS_CONF", None)  # the script writes the one podman needs here
    _remove_killed_runs(env)
    return env


def test_the_kind_e2e_passes_on_a_node_image_made_here(kind_env):
    done = subprocess.run(
        [str(REPO / "scripts" / "kind-e2e.sh")],
        env={**kind_env, "KIND_NODE_IMAGE": "local", "KIND_CLUSTER_NAME": CLUSTER},
        capture_output=True,
        text=True,
        timeout=LIMIT_SECONDS,
        check=False,
    )
    output = done.stdout + done.stderr
    assert done.returncode == 0, output[-8000:]
    summary = output[output.index("== passed") :]
    # What the script's last `kubectl get torchyard -A` shows a person.
    assert "digits-train" in summary and "Succeeded" in summary
    assert "digits-v2" in summary and "Serving" in summary
    assert "digits-v1" in summary and "Superseded" in summary
    # It cleans up after itself: no cluster, no node container.
    assert CLUSTER not in _kind_clusters(kind_env)
    containers = subprocess.run(
        ["podman", "ps", "--all", "--format={{.Names}}"],
        capture_output=True, text=True, check=True,
    ).stdout.split()  # fmt: skip
    assert f"{CLUSTER}-control-plane" not in containers
