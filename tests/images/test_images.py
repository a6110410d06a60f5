"""The two images as a user gets them from `scripts/images build`: each runs, as the
non-root uid the manifests give it; the worker compresses a model offline as its pod
would; an unchanged checkout builds nothing; the images travel to containerd."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import tarfile
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.images.conftest import images_command
from tests.objects import REPO
from torchyard import __version__
from torchyard.imagebuild import podman, tools
from torchyard.images import OPERATOR_IMAGE, WORKER_IMAGE
from torchyard.resources.pods import WORKER_UID
from torchyard.storage import compute_digest

pytestmark = pytest.mark.images

SIZE = r"\d+(?:\.\d+)? (?:MB|GB)"


def _run(image: str, *args: str, **options: Any) -> subprocess.CompletedProcess[str]:
    command = podman.run_command(image, list(args), limits=podman.own_limits(), **options)
    return subprocess.run(command, capture_output=True, text=True, timeout=900)


def _inspect(image: str) -> dict[str, Any]:
    found = podman.inspect(image)
    assert found is not None, f"{image} is not in podman's storage"
    return found


def test_the_build_reports_each_image_with_its_size(built):
    for image in (OPERATOR_IMAGE, WORKER_IMAGE):
        assert re.search(rf"{re.escape(image)}  [0-9a-f]{{12}}  {SIZE}  ", built), built


def test_the_operator_answers_its_version(built):
    done = _run(OPERATOR_IMAGE, "--version")
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == f"torchyard {__version__}"


def _deployment_user() -> tuple[int, int]:
    deployment = yaml.safe_load((REPO / "manifests" / "base" / "deployment.yaml").read_text())
    context = deployment["spec"]["template"]["spec"]["securityContext"]
    return context["runAsUser"], context["runAsGroup"]


@pytest.mark.parametrize("image", [OPERATOR_IMAGE, WORKER_IMAGE])
def test_each_image_runs_as_the_uid_the_manifests_use(built, image):
    uid, gid = _deployment_user()
    assert uid == WORKER_UID
    # By number: runAsNonRoot (the restricted Pod Security Standard) checks it.
    assert _inspect(image)["Config"]["User"] == f"{uid}:{gid}"
    # Named too: kopf (its peering identity) and getpass look the user up by uid.
    script = "import getpass, os; print(os.getuid(), os.getgid(), getpass.getuser())"
    done = _run(image, "-c", script, entrypoint="python")
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == [str(uid), str(gid), "nonroot"]


@pytest.fixture
def shared_dir() -> Iterator[Path]:
    """A directory the container's user may write, mounted at /out."""
    path = Path(tempfile.mkdtemp(prefix="torchyard-image-test-"))
    os.chown(path, WORKER_UID, WORKER_UID)
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


def test_the_worker_quantizes_the_minilm_it_ships_offline_as_its_pod_would(built, shared_dir):
    # The samples' CompressionJob (int8 MiniLM behind a cosine gate), written to /out.
    (sample,) = yaml.safe_load_all(
        (REPO / "manifests" / "samples" / "minilm-int8.yaml").read_text()
    )
    spec = {**sample["spec"], "output": {"uri": "file:///out/minilm-int8"}}
    env = {
        "TORCHYARD_SPEC": json.dumps(spec),
        "TORCHYARD_TERMINATION_LOG": "/out/termination-log",
        "OMP_NUM_THREADS": "2",
    }
    mount = podman.Mount(shared_dir, "/out")
    done = _run(WORKER_IMAGE, "workload", "compress", env=env, mounts=[mount])

    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    result = json.loads((shared_dir / "termination-log").read_text())
    artifact = shared_dir / "minilm-int8"
    assert result["artifact"]["uri"] == "file:///out/minilm-int8"
    assert result["artifact"]["digest"] == compute_digest(artifact)
    assert result["compressionRatio"] > 3
    assert result["metricDrop"] <= spec["evaluation"]["maxDrop"]


def test_a_second_build_with_unchanged_inputs_builds_nothing(built):
    ids = {image: _inspect(image)["Id"] for image in (OPERATOR_IMAGE, WORKER_IMAGE)}
    again = images_command("build", timeout=300).stdout
    for image in (OPERATOR_IMAGE, WORKER_IMAGE):
        assert re.search(rf"{re.escape(image)}  .*up to date", again), again
        assert _inspect(image)["Id"] == ids[image]


def test_saved_archives_carry_the_images_names(built, tmp_path):
    images_command("save", str(tmp_path), "operator", timeout=600)
    archive = tmp_path / "torchyard-operator.tar"
    with tarfile.open(archive) as tar:
        member = tar.extractfile("index.json")
        assert member is not None
        index = json.load(member)
    (manifest,) = index["manifests"]
    assert manifest["annotations"]["org.opencontainers.image.ref.name"] == OPERATOR_IMAGE


@pytest.fixture
def containerd(tmp_path: Path) -> Iterator[Path]:
    """A containerd of this test's own (no CRI), listening on a socket under tmp_path."""
    tools.ensure(["ctr"], print)
    config = tmp_path / "config.toml"
    socket = tmp_path / "containerd.sock"
    config.write_text(
        "version = 2\n"
        f'root = "{tmp_path / "root"}"\nstate = "{tmp_path / "state"}"\n'
        'disabled_plugins = ["io.containerd.grpc.v1.cri"]\n'
        f'[grpc]\n  address = "{socket}"\n[ttrpc]\n  address = "{socket}.ttrpc"\n'
    )
    log = (tmp_path / "containerd.log").open("w")
    process = subprocess.Popen(
        ["containerd", f"--config={config}"], stdout=log, stderr=subprocess.STDOUT
    )
    try:
        deadline = time.monotonic() + 30
        while not socket.exists():
            assert process.poll() is None, (tmp_path / "containerd.log").read_text()
            assert time.monotonic() < deadline, "containerd did not listen within 30 s"
            time.sleep(0.1)
        yield socket
    finally:
        process.terminate()
        process.wait(timeout=30)
        log.close()


def test_the_operator_image_loads_into_containerd_under_its_name(built, containerd):
    images_command("load-containerd", f"--address={containerd}", "operator", timeout=600)
    listed = subprocess.run(
        ["ctr", f"--address={containerd}", "--namespace=k8s.io", "images", "ls", "-q"],
        capture_output=True,
        text=True,
        check=True,
    )
    assert OPERATOR_IMAGE in listed.stdout.split()
