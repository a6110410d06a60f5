"""A kind node image made here, without a registry (`scripts/images kind-node`).

`kind build node-image` cannot run offline: it pulls kind's base image and, inside it,
every image kubeadm needs. This builds the same thing from what is reachable:

- kind's base image recipe (images/base in the sigs.k8s.io/kind module: its entrypoint,
  systemd units and containerd config) on the Debian base made here, with Debian's
  containerd, runc and CNI plugins (images/kind-node/Containerfile);
- the kubelet, kubeadm and kubectl of the pinned release, built from controlplane/;
- the images the node runs for itself, made from binaries built from Go modules
  (images/kind-node/components.Containerfile) and preloaded into the node's containerd:
  kube-apiserver, kube-controller-manager, kube-scheduler, kube-proxy, etcd, CoreDNS,
  pause, and the local-path provisioner with its helper.

kindnetd's module is not on the Go module proxy, so pods get a CNI bridge written into
the image instead (images/kind-node/torchyard/etc/cni/net.d): clusters of one node.
The image is made again only when its inputs change (their key is its label).
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

from torchyard.imagebuild import podman, tools
from torchyard.imagebuild.build import (
    REPO,
    ImageBuildError,
    _run,
    cache_dir,
    ensure_debian_base,
)
from torchyard.imagebuild.inputs import INPUTS_LABEL
from torchyard.local.build import (
    cache_root,
    ensure_binaries,
    ensure_coredns,
    ensure_kubeadm,
    file_lock,
    kubernetes_version,
    source_dir,
)

Log = Callable[[str], None]

CONTEXT = REPO / "images" / "kind-node"
CLUSTER_CONFIG = CONTEXT / "cluster.yaml"

KIND_MODULE = "sigs.k8s.io/kind"
KIND_VERSION = "v0.31.0"
"""The kind whose base image recipe this follows; the workflow installs the same one."""
PROVISIONER_MODULE = "github.com/rancher/local-path-provisioner"
PROVISIONER_VERSION = "v0.0.30"

REPOSITORY = "localhost/torchyard/kind"
"""Where the node's own images are named, except those kubeadm looks for upstream."""
PROVISIONER_IMAGE = f"{REPOSITORY}/local-path-provisioner:{PROVISIONER_VERSION}"
HELPER_IMAGE = f"{REPOSITORY}/local-path-helper:bookworm"
PAUSE_IMAGE = "registry.k8s.io/pause:3.10.1"
"""kubeadm's pause for 1.35, built from the module's pause.c (its TAG is 3.10.1)."""

ENTRYPOINT = '["/usr/local/bin/entrypoint", "/sbin/init"]'


def node_image(version: str) -> str:
    return f"localhost/torchyard/kind-node:{version}"


@dataclass(frozen=True)
class Versions:
    """What the pinned modules build: the images are named by these."""

    kubernetes: str
    etcd: str
    coredns: str


def required_version(go_mod: str, module: str) -> str:
    """The version go.mod requires of a module."""
    match = re.search(rf"^\s*(?:require\s+)?{re.escape(module)}\s+(v\S+)", go_mod, re.M)
    if match is None:
        raise ImageBuildError(f"go.mod does not require {module}")
    return match.group(1)


def pinned_versions(src: Path) -> Versions:
    return Versions(
        kubernetes=kubernetes_version(src),
        etcd=required_version((src / "go.mod").read_text(), "go.etcd.io/etcd/server/v3"),
        coredns=required_version(
            (src / "coredns" / "go.mod").read_text(), "github.com/coredns/coredns"
        ),
    )


def control_plane_tags(versions: Versions) -> list[str]:
    """The names the control-plane image goes by: kubeadm's own for the Kubernetes
    components (the same release), the node's repository for etcd."""
    upstream = ("kube-apiserver", "kube-controller-manager", "kube-scheduler", "kube-proxy")
    return [f"registry.k8s.io/{name}:{versions.kubernetes}" for name in upstream] + [
        f"{REPOSITORY}/etcd:{versions.etcd}"
    ]


def coredns_tag(versions: Versions) -> str:
    return f"{REPOSITORY}/coredns:{versions.coredns}"


def config_mismatches(config: str, versions: Versions) -> list[str]:
    """What images/kind-node/cluster.yaml says about etcd and CoreDNS that the pinned
    modules do not build (kubeadm would look for images the node does not have)."""
    wanted = {
        "etcd": f"imageTag: {versions.etcd}",
        "CoreDNS": f"imageTag: {versions.coredns}",
        "repository": f"imageRepository: {REPOSITORY}",
    }
    return [f"{what}: no `{line}`" for what, line in wanted.items() if line not in config]


def _go_module_dir(module: str, version: str) -> Path:
    """The module's source in Go's module cache (downloaded through the proxy)."""
    done = subprocess.run(
        ["go", "mod", "download", "-json", f"{module}@{version}"],
        capture_output=True,
        text=True,
        cwd=source_dir(),
    )
    if done.returncode != 0:
        raise ImageBuildError(f"go mod download {module}@{version} failed:\n{done.stderr}")
    return Path(json.loads(done.stdout)["Dir"])


def ensure_kind(log: Log) -> Path:
    """The kind command of KIND_VERSION, installed once from the Go module proxy."""
    return _go_install(KIND_MODULE, KIND_VERSION, "kind", log)


def ensure_provisioner(log: Log) -> Path:
    """rancher's local-path-provisioner, built once per version."""
    return _go_install(PROVISIONER_MODULE, PROVISIONER_VERSION, "local-path-provisioner", log)


def _go_install(module: str, version: str, name: str, log: Log) -> Path:
    """`go install module@version` into a cache directory of its own (static: no cgo)."""
    target = cache_root() / f"{name}-{version}"
    binary = target / name
    if binary.is_file():
        return binary
    with file_lock(target / ".lock"):
        if binary.is_file():
            return binary
        log(f"installing {module}@{version} from the Go module proxy: first use only")
        staging = Path(tempfile.mkdtemp(prefix=".build-", dir=target))
        try:
            done = subprocess.run(
                ["go", "install", "-trimpath", "-ldflags=-s -w", f"{module}@{version}"],
                env={**os.environ, "GOBIN": str(staging), "CGO_ENABLED": "0"},
                capture_output=True,
                text=True,
            )
            if done.returncode != 0:
                raise ImageBuildError(f"go install {module}@{version} failed:\n{done.stderr}")
            (staging / name).rename(binary)
        finally:
            shutil.rmtree(staging, ignore_errors=True)
    return binary


def _copy(source: Path, target: Path) -> None:
    target.parent.mkdir(parents=True, exist_ok=True)
    shutil.copy2(source, target)


def tree_key(root: Path, *extra: str) -> str:
    """sha256 over every file under root (path and content) and the extra strings."""
    digest = hashlib.sha256()
    for path in sorted(p for p in root.rglob("*") if p.is_file()):
        digest.update(path.relative_to(root).as_posix().encode() + b"\0")
        with path.open("rb") as stream:
            for chunk in iter(lambda: stream.read(1 << 20), b""):
                digest.update(chunk)
        digest.update(b"\0")
    for text in extra:
        digest.update(text.encode() + b"\0")
    return digest.hexdigest()


def _build_target(
    context: Path, target: str, tags: Iterable[str], base_image: str, log_name: str
) -> None:
    tags = list(tags)
    command = podman.podman(
        "build",
        "--layers",
        f"--file={CONTEXT / 'components.Containerfile'}",
        f"--target={target}",
        f"--build-arg=BASE_IMAGE={base_image}",
        *(f"--tag={tag}" for tag in tags),
        *podman.ulimit_flags(podman.own_limits()),
        str(context),
    )
    _run(command, cache_dir() / f"kind-{log_name}.log", f"building {tags[0]}")


def _components(context: Path, base_image: str, versions: Versions, log: Log) -> list[str]:
    """Build the node's own images; return every name to preload."""
    binaries = ensure_binaries(log)
    for binary in (
        binaries.kube_apiserver,
        binaries.kube_controller_manager,
        binaries.kube_scheduler,
        binaries.kube_proxy,
        binaries.etcd,
    ):
        _copy(binary, context / "control-plane" / binary.name)
    _copy(ensure_coredns(log), context / "coredns" / "coredns")
    _copy(ensure_provisioner(log), context / "local-path-provisioner" / "local-path-provisioner")
    _build_target(context, "control-plane", control_plane_tags(versions), base_image, "cp")
    _build_target(context, "coredns", [coredns_tag(versions)], base_image, "coredns")
    _build_target(context, "local-path-provisioner", [PROVISIONER_IMAGE], base_image, "lpp")
    # The helper only runs `sh -c 'mkdir …'` and `rm -rf …`: the Debian base has both.
    subprocess.run(podman.podman("tag", base_image, HELPER_IMAGE), check=True)
    return [*control_plane_tags(versions), coredns_tag(versions), PROVISIONER_IMAGE, HELPER_IMAGE]


def _node_context(context: Path, log: Log) -> None:
    kind_files = _go_module_dir(KIND_MODULE, KIND_VERSION) / "images" / "base" / "files"
    shutil.copytree(kind_files, context / "kind", ignore=shutil.ignore_patterns("LICENSES"))
    shutil.copytree(CONTEXT / "torchyard", context / "torchyard")
    binaries = ensure_binaries(log)
    for binary in (binaries.kubelet, binaries.kubectl, ensure_kubeadm(log)):
        _copy(binary, context / "bin" / binary.name)


def _preload(bare: str, archives: list[Path], tag: str, key: str, log: Log) -> None:
    """Import the archives into the containerd of a container of `bare`, then commit it
    as `tag`: kind's node containers start with these images in place."""
    name = f"torchyard-kind-node-preload-{int(time.time())}"
    limits = podman.ulimit_flags(podman.own_limits())
    subprocess.run(
        podman.podman("run", "--detach", f"--name={name}", "--privileged", *limits,
                      "--entrypoint=/usr/bin/containerd", bare),
        check=True, stdout=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        for _ in range(60):
            if (
                subprocess.run(
                    podman.podman("exec", name, "ctr", "version"), capture_output=True
                ).returncode
                == 0
            ):
                break
            time.sleep(1)
        for archive in archives:
            with archive.open("rb") as stream:
                done = subprocess.run(
                    podman.podman("exec", "--interactive", name, "ctr", "--namespace=k8s.io",
                                  "images", "import", "--all-platforms", "--no-unpack", "-"),
                    stdin=stream, capture_output=True, text=True,
                )  # fmt: skip
            if done.returncode != 0:
                raise ImageBuildError(f"preloading {archive.name} failed:\n{done.stderr}")
            log(f"preloaded {archive.name}: {done.stdout.strip()}")
        # containerd is PID 1 here and ignores the image's stop signal (systemd's).
        subprocess.run(
            podman.podman("kill", "--signal=TERM", name), check=True, stdout=subprocess.DEVNULL
        )
        subprocess.run(podman.podman("wait", name), check=True, stdout=subprocess.DEVNULL)
        subprocess.run(
            podman.podman("commit", f"--change=ENTRYPOINT {ENTRYPOINT}", "--change=CMD []",
                          f"--change=LABEL {INPUTS_LABEL}={key}", name, tag),
            check=True, stdout=subprocess.DEVNULL,
        )  # fmt: skip
    finally:
        subprocess.run(podman.podman("rm", "--force", name), capture_output=True)


def build_node_image(log: Log, force: bool = False) -> str:
    """Make the node image (only when its inputs changed); return its name."""
    from torchyard.local.node.images import pause_archive

    tools.ensure(["podman", "runc"], log)
    src = source_dir()
    versions = pinned_versions(src)
    if problems := config_mismatches(CLUSTER_CONFIG.read_text(), versions):
        raise ImageBuildError(f"{CLUSTER_CONFIG} is out of date: {'; '.join(problems)}")
    tag = node_image(versions.kubernetes)
    cache_dir().mkdir(parents=True, exist_ok=True)
    with file_lock(cache_dir() / ".lock"):
        base_image = ensure_debian_base(log)
        base_found = podman.inspect(base_image)
        assert base_found is not None
        with tempfile.TemporaryDirectory(dir=cache_dir(), prefix="kind-node-") as scratch:
            context = Path(scratch) / "context"
            components = Path(scratch) / "components"
            preload = _components(components, base_image, versions, log)
            _node_context(context, log)
            ids = [str((podman.inspect(name) or {})["Id"]) for name in preload]
            pause = pause_archive(PAUSE_IMAGE)
            key = tree_key(
                context,
                (CONTEXT / "Containerfile").read_text(),
                str(base_found["Id"]),
                *ids,
                hashlib.sha256(pause.read_bytes()).hexdigest(),
            )
            current = podman.inspect(tag)
            if not force and current is not None and podman.label(current, INPUTS_LABEL) == key:
                log(f"{tag} is up to date (inputs {key[:12]})")
                return tag
            began = time.monotonic()
            bare = f"{tag}-bare"
            _run(
                podman.podman(
                    "build",
                    "--layers",
                    f"--file={CONTEXT / 'Containerfile'}",
                    f"--tag={bare}",
                    f"--build-arg=BASE_IMAGE={base_image}",
                    f"--build-arg=KUBERNETES_VERSION={versions.kubernetes}",
                    *podman.ulimit_flags(podman.own_limits()),
                    str(context),
                ),
                cache_dir() / "kind-node.log",
                "building the kind node image",
            )
            archive = Path(scratch) / "components.tar"
            subprocess.run(
                podman.podman("save", "--multi-image-archive", "--format=docker-archive",
                              f"--output={archive}", *preload),
                check=True, stdout=subprocess.DEVNULL,
            )  # fmt: skip
            _preload(bare, [archive, pause], tag, key, log)
            subprocess.run(podman.podman("rmi", bare), capture_output=True)
        found = podman.inspect(tag)
        assert found is not None
        log(f"made {tag} in {time.monotonic() - began:.0f} s ({int(found['Size']) >> 20} MiB)")
        return tag
