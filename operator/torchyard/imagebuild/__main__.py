"""scripts/images: build torchyard's images with podman and hand them to a cluster.

build [NAME...]        build the operator and worker images (each only when its inputs
                       changed), print their sizes
base                   make the Python base from Debian packages (build does it when
                       the default base cannot be pulled)
list                   the images here: tag, ID, size, input key
save DIR [NAME...]     write each image as an OCI archive, DIR/torchyard-NAME.tar
load-containerd        import the images into a containerd (a kubelet's node)
load-local             import them into `torchyard local up --node=containers`' node
load-kind              load the images into a kind cluster
kind-node              make a kind node image without a registry (images/kind-node)
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

from torchyard.imagebuild import podman, tools
from torchyard.imagebuild.build import (
    IMAGES,
    ImageBuildError,
    Options,
    build,
    cache_dir,
    ensure_debian_base,
)
from torchyard.imagebuild.inputs import INPUTS_LABEL
from torchyard.imagebuild.report import format_size, summary
from torchyard.local.node.layout import CONTAINERD_NAMESPACE


def log(message: str) -> None:
    print(f"images: {message}", flush=True)


def _host_pip_cache() -> Path:
    """The host's pip cache directory (pip's own rule), created if missing."""
    configured = os.environ.get("PIP_CACHE_DIR")
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    path = Path(configured) if configured else Path(base) / "pip"
    path.mkdir(parents=True, exist_ok=True)
    return path


def _host_ca_bundle() -> Path | None:
    """The CA bundle the host's pip trusts, when it names one (a TLS proxy's CA, say)."""
    for variable in ("PIP_CERT", "REQUESTS_CA_BUNDLE", "SSL_CERT_FILE"):
        value = os.environ.get(variable)
        if value and Path(value).is_file():
            return Path(value)
    return None


def _names(given: Sequence[str]) -> list[str]:
    unknown = sorted(set(given) - set(IMAGES))
    if unknown:
        raise ImageBuildError(
            f"no image named {', '.join(unknown)} (there are: {', '.join(IMAGES)})"
        )
    return list(given) or list(IMAGES)


def _build(args: argparse.Namespace) -> int:
    options = Options(
        python_image=args.python_image,
        debian_base=args.debian_base,
        torch_index_url=args.torch_index_url,
        worker_lock=args.worker_lock,
        force=args.force,
        pip_cache=None if args.no_pip_cache else _host_pip_cache(),
        ca_bundle=Path(args.ca_bundle) if args.ca_bundle else _host_ca_bundle(),
    )
    for line in summary(build(_names(args.images), options, log)):
        log(line)
    return 0


def _base(args: argparse.Namespace) -> int:
    tools.ensure(["podman", "runc"], log)
    image = ensure_debian_base(log)
    found = podman.inspect(image)
    assert found is not None
    log(f"{image}  {str(found['Id'])[:12]}  {format_size(int(found['Size']))}")
    return 0


def _list(args: argparse.Namespace) -> int:
    tools.ensure(["podman", "runc"], log)
    for name in _names(args.images):
        image = IMAGES[name]
        found = podman.inspect(image.tag)
        if found is None:
            print(f"{image.tag}  not built (scripts/images build {name})")
            continue
        key = podman.label(found, INPUTS_LABEL) or "-"
        print(
            f"{image.tag}  {str(found['Id'])[:12]}  {format_size(int(found['Size']))}  "
            f"inputs {key[:12]}"
        )
    return 0


def _require_built(names: Sequence[str]) -> None:
    absent = [IMAGES[name].tag for name in names if podman.inspect(IMAGES[name].tag) is None]
    if absent:
        raise ImageBuildError(f"not built: {', '.join(absent)}; run scripts/images build first")


def archive_path(directory: Path, name: str) -> Path:
    return directory / f"torchyard-{name}.tar"


def _save(args: argparse.Namespace) -> int:
    tools.ensure(["podman", "runc"], log)
    names = _names(args.images)
    _require_built(names)
    directory = Path(args.dir)
    directory.mkdir(parents=True, exist_ok=True)
    for name in names:
        path = archive_path(directory, name)
        path.unlink(missing_ok=True)
        subprocess.run(
            podman.save_command(IMAGES[name].tag, path), check=True, stdout=subprocess.DEVNULL
        )
        log(f"{IMAGES[name].tag} -> {path} ({format_size(path.stat().st_size)})")
    return 0


LOADED_LABEL = "io.torchyard.image-id"
"""Set on each image imported into containerd: the podman image it came from."""


def loaded(listing: str, tag: str, image_id: str) -> bool:
    """Whether `ctr images ls` lists `tag` imported from this very image (by its label)."""
    for line in listing.splitlines()[1:]:
        fields = line.split()
        if fields[:1] == [tag] and f"{LOADED_LABEL}={image_id}" in fields[-1].split(","):
            return True
    return False


IMPORT_ATTEMPTS = 3
"""containerd 1.6 can lose a layer's snapshot to its garbage collector while an import
unpacks the next one ("parent snapshot ... does not exist", containerd #3787): the
content is there, and an import again unpacks what is missing."""


def lost_snapshot(stderr: str) -> bool:
    """Whether an import failed for containerd's lost-snapshot race, worth another try."""
    return "failed to prepare extraction snapshot" in stderr and "does not exist" in stderr


def _import(ctr: Sequence[str], tag: str) -> tuple[bool, subprocess.CompletedProcess[str]]:
    """`podman save | ctr images import -`: whether the save went well, and the import."""
    # Streamed: the worker's archive is gigabytes.
    save = subprocess.Popen(podman.save_command(tag, None), stdout=subprocess.PIPE)
    imported = subprocess.run(
        [*ctr, "images", "import", "-"], stdin=save.stdout, capture_output=True, text=True
    )
    assert save.stdout is not None
    save.stdout.close()
    return save.wait() == 0, imported


def load_into_containerd(address: str, namespace: str, names: Sequence[str]) -> None:
    """Import each image unless containerd has it already: the worker's is gigabytes."""
    tools.ensure(["podman", "runc", "ctr"], log)
    _require_built(names)
    ctr = ["ctr", f"--address={address}", f"--namespace={namespace}"]
    for name in names:
        tag = IMAGES[name].tag
        found = podman.inspect(tag)
        assert found is not None
        image_id = str(found["Id"])
        listing = subprocess.run([*ctr, "images", "ls"], capture_output=True, text=True)
        if listing.returncode != 0:
            raise ImageBuildError(
                f"cannot list containerd's images at {address}:\n{listing.stderr}"
            )
        if loaded(listing.stdout, tag, image_id):
            log(f"{tag} ({image_id[:12]}) is in containerd already ({address})")
            continue
        began = time.monotonic()
        for attempt in range(1, IMPORT_ATTEMPTS + 1):
            saved, imported = _import(ctr, tag)
            if saved and imported.returncode == 0:
                break
            if not saved or not lost_snapshot(imported.stderr) or attempt == IMPORT_ATTEMPTS:
                raise ImageBuildError(f"importing {tag} into containerd failed:\n{imported.stderr}")
            log(f"importing {tag}: containerd lost a snapshot while unpacking; again")
        subprocess.run(
            [*ctr, "images", "label", tag, f"{LOADED_LABEL}={image_id}"],
            check=True,
            stdout=subprocess.DEVNULL,
        )
        log(
            f"{tag} imported into containerd ({address}, namespace {namespace}) "
            f"in {time.monotonic() - began:.0f} s"
        )


def _load_containerd(args: argparse.Namespace) -> int:
    load_into_containerd(args.address, args.namespace, _names(args.images))
    return 0


def _load_local(args: argparse.Namespace) -> int:
    from torchyard.local.controlplane import state_dir
    from torchyard.local.node.layout import layout_for

    # The layout alone: scripts/images runs on the system's Python, without the
    # project's dependencies that the rest of torchyard.local.node imports.
    socket = layout_for(state_dir()).containerd_socket
    if not socket.is_socket():
        raise ImageBuildError(
            "the local container node is not running (no containerd at "
            f"{socket}): `torchyard local up --node=containers` first"
        )
    load_into_containerd(str(socket), CONTAINERD_NAMESPACE, _names(args.images))
    return 0


def _load_kind(args: argparse.Namespace) -> int:
    tools.ensure(["podman", "runc"], log)
    if shutil.which("kind") is None:
        raise ImageBuildError("kind is not installed: go install sigs.k8s.io/kind@latest")
    names = _names(args.images)
    _require_built(names)
    cache_dir().mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=cache_dir(), prefix="kind-") as scratch:
        for name in names:
            path = archive_path(Path(scratch), name)
            subprocess.run(podman.save_command(IMAGES[name].tag, path), check=True)
            subprocess.run(
                ["kind", "load", "image-archive", f"--name={args.name}", str(path)], check=True
            )
            log(f"{IMAGES[name].tag} loaded into kind cluster {args.name}")
    return 0


def _kind_node(args: argparse.Namespace) -> int:
    from torchyard.imagebuild.kindnode import CLUSTER_CONFIG, build_node_image

    tag = build_node_image(log, force=args.force)
    log(
        f"use it with: KIND_EXPERIMENTAL_PROVIDER=podman kind create cluster --image {tag} "
        f"--config {CLUSTER_CONFIG}"
    )
    print(tag)  # last, alone on its line: scripts/kind-e2e.sh reads it
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="scripts/images",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    commands = parser.add_subparsers(dest="command", required=True)
    names = {"nargs": "*", "metavar": "NAME", "help": "operator, worker (default: both)"}

    build_cmd = commands.add_parser(
        "build", help="build the images (only those whose inputs changed)"
    )
    build_cmd.add_argument("images", **names)
    source = build_cmd.add_mutually_exclusive_group()
    source.add_argument(
        "--python-image",
        help="base image (default: the Dockerfiles' PYTHON_IMAGE, or one made from Debian "
        "packages when it cannot be pulled)",
    )
    source.add_argument(
        "--debian-base",
        action="store_true",
        help="build on the Python base made here from Debian packages",
    )
    build_cmd.add_argument(
        "--torch-index-url",
        default="",
        help="an index to take torch from besides PyPI, e.g. "
        "https://download.pytorch.org/whl/cpu (with --worker-lock: a lock made against it)",
    )
    build_cmd.add_argument(
        "--worker-lock",
        default="requirements.lock",
        help="the worker's lock file in images/worker/ (default: requirements.lock, PyPI's torch)",
    )
    build_cmd.add_argument(
        "--force", action="store_true", help="build even when the inputs are unchanged"
    )
    build_cmd.add_argument(
        "--no-pip-cache",
        action="store_true",
        help="do not mount the host's pip cache into the build",
    )
    build_cmd.add_argument(
        "--ca-bundle",
        help="CA bundle for pip inside the build (default: $PIP_CERT, $REQUESTS_CA_BUNDLE or "
        "$SSL_CERT_FILE when set)",
    )
    build_cmd.set_defaults(func=_build)

    base_cmd = commands.add_parser("base", help="make the Python base from Debian packages")
    base_cmd.set_defaults(func=_base)

    list_cmd = commands.add_parser("list", help="the images here, with sizes")
    list_cmd.add_argument("images", **names)
    list_cmd.set_defaults(func=_list)

    save_cmd = commands.add_parser("save", help="write OCI archives, DIR/torchyard-NAME.tar")
    save_cmd.add_argument("dir")
    save_cmd.add_argument("images", **names)
    save_cmd.set_defaults(func=_save)

    containerd = commands.add_parser("load-containerd", help="import the images into containerd")
    containerd.add_argument("images", **names)
    containerd.add_argument(
        "--address", default="/run/containerd/containerd.sock", help="containerd's socket"
    )
    containerd.add_argument(
        "--namespace", default="k8s.io", help="containerd namespace (the kubelet's: k8s.io)"
    )
    containerd.set_defaults(func=_load_containerd)

    local = commands.add_parser(
        "load-local", help="import the images into the local container node's containerd"
    )
    local.add_argument("images", **names)
    local.set_defaults(func=_load_local)

    kind = commands.add_parser("load-kind", help="load the images into a kind cluster")
    kind.add_argument("images", **names)
    kind.add_argument("--name", default="kind", help="the kind cluster (default: kind)")
    kind.set_defaults(func=_load_kind)

    node = commands.add_parser(
        "kind-node", help="make a kind node image here, without a registry (images/kind-node)"
    )
    node.add_argument("--force", action="store_true", help="make it even if up to date")
    node.set_defaults(func=_kind_node)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return int(args.func(args))
    except (ImageBuildError, tools.ToolError) as error:
        print(f"images: {error}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
