"""Images in the node's containerd: the pause image (built once from the pinned
module's pause.c) and any OCI archive a user loads (`torchyard local load-image`)."""

from __future__ import annotations

import hashlib
import os
import subprocess
import tempfile
from pathlib import Path

from torchyard.local.build import cache_root, kubernetes_version, source_dir
from torchyard.local.node.errors import NodeError
from torchyard.local.node.layout import CONTAINERD_NAMESPACE, PAUSE_IMAGE
from torchyard.local.node.oci import Layer, image_archive


def _run(cmd: list[str], what: str, cwd: Path | None = None) -> str:
    result = subprocess.run(cmd, capture_output=True, text=True, cwd=cwd)
    if result.returncode != 0:
        raise NodeError(f"{what} failed: `{' '.join(cmd)}`:\n{result.stderr.strip()[-2000:]}")
    return result.stdout


def pause_source() -> Path:
    """pause.c of the pinned k8s.io/kubernetes (downloaded into Go's module cache)."""
    src = source_dir()
    module = f"k8s.io/kubernetes@{kubernetes_version(src)}"
    directory = _run(["go", "mod", "download", "-json", module], "finding pause.c", cwd=src)
    for line in directory.splitlines():
        if line.strip().startswith('"Dir"'):
            return Path(line.split('"')[3]) / "build" / "pause" / "linux" / "pause.c"
    raise NodeError(f"`go mod download {module}` did not say where the module is")


def pause_archive(name: str = PAUSE_IMAGE) -> Path:
    """The pause image under `name` as an OCI archive, compiled with `gcc -Os -static`
    once per source and name."""
    source = pause_source()
    digest = hashlib.sha256(source.read_bytes() + name.encode()).hexdigest()[:12]
    archive = cache_root() / f"pause-{digest}.oci.tar"
    if archive.is_file():
        return archive
    with tempfile.TemporaryDirectory() as tmp:
        binary = Path(tmp) / "pause"
        version = name.rpartition(":")[2]
        _run(
            ["gcc", "-Os", "-static", f"-DVERSION=v{version}", "-o", str(binary), str(source)],
            "compiling the pause image",
        )
        _run(["strip", str(binary)], "stripping pause")
        layer = Layer(files={"pause": (binary.read_bytes(), 0o755)})
        data = image_archive(name, [layer], entrypoint=["/pause"], user="65535:65535")
    archive.parent.mkdir(parents=True, exist_ok=True)
    partial = archive.with_suffix(f".{os.getpid()}.partial")
    partial.write_bytes(data)
    partial.replace(archive)
    return archive


def ctr(socket: Path, *args: str) -> list[str]:
    return ["ctr", f"--address={socket}", f"--namespace={CONTAINERD_NAMESPACE}", *args]


def has_image(socket: Path, name: str) -> bool:
    listing = _run(ctr(socket, "images", "list", "--quiet"), "listing images")
    return name in listing.split()


def load(socket: Path, archive: Path) -> list[str]:
    """Import an OCI (or docker) archive into the node's containerd; return the names."""
    if not archive.is_file():
        raise NodeError(f"{archive} is not a file")
    out = _run(
        ctr(socket, "images", "import", "--snapshotter=overlayfs", str(archive)),
        f"importing {archive}",
    )
    # ctr prints "unpacking NAME (sha256:...)...done" per image.
    return [line.split()[1] for line in out.splitlines() if line.startswith("unpacking ")]
