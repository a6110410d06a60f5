"""A small image without a registry, for trying the node and testing it: Debian's
static busybox in one layer.

`apt-get download busybox-static` fetches the package (no install), `dpkg-deb -x`
unpacks it, and torchyard's own OCI writer makes the archive that `torchyard local
load-image` imports. Cached under ~/.cache/torchyard/test-images.
"""

from __future__ import annotations

import os
import subprocess
import tempfile
from pathlib import Path

from torchyard.local.build import cache_root
from torchyard.local.node.oci import Layer, image_archive

IMAGE = "localhost/torchyard-test-busybox:1"
APPLETS = (
    "sh", "cat", "id", "dd", "echo", "grep", "head", "httpd", "nslookup", "sleep",
    "wget", "nc", "ls", "mkdir", "hostname", "seq", "env", "printf", "tr",
)  # fmt: skip


def archive() -> Path:
    cache = cache_root().parent / "test-images"
    path = cache / f"busybox-{len(APPLETS)}.oci.tar"
    if path.is_file():
        return path
    cache.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        subprocess.run(["apt-get", "download", "busybox-static"], cwd=tmp, check=True)
        (deb,) = Path(tmp).glob("busybox-static_*.deb")
        subprocess.run(["dpkg-deb", "-x", str(deb), f"{tmp}/root"], check=True)
        binary = (Path(tmp) / "root" / "bin" / "busybox").read_bytes()
    layer = Layer(
        files={"bin/busybox": (binary, 0o755)},
        dirs={"bin": 0o755, "tmp": 0o1777, "etc": 0o755, "www": 0o755},
        symlinks={f"bin/{applet}": "busybox" for applet in APPLETS},
    )
    partial = path.with_suffix(f".{os.getpid()}.partial")
    partial.write_bytes(image_archive(IMAGE, [layer], cmd=["sh"]))
    partial.replace(path)
    return path
