"""OCI image archives made in Python: a root file system layer, a config, a manifest.

Enough for the images the node needs without a registry or podman (the pause image, a
test image from a static binary), in the layout that `ctr images import` reads.
"""

from __future__ import annotations

import hashlib
import io
import json
import platform
import tarfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

_ARCH = {"x86_64": "amd64", "aarch64": "arm64"}


@dataclass(frozen=True)
class Layer:
    """Files (path -> (content, mode)), directories (path -> mode) and symlinks
    (path -> target) of one layer; everything owned by root."""

    files: Mapping[str, tuple[bytes, int]] = field(default_factory=dict)
    dirs: Mapping[str, int] = field(default_factory=dict)
    symlinks: Mapping[str, str] = field(default_factory=dict)

    def tar(self) -> bytes:
        buffer = io.BytesIO()
        with tarfile.open(fileobj=buffer, mode="w", format=tarfile.PAX_FORMAT) as tar:
            for path, mode in sorted(self.dirs.items()):
                info = tarfile.TarInfo(path.strip("/"))
                info.type, info.mode = tarfile.DIRTYPE, mode
                tar.addfile(info)
            for path, (content, mode) in sorted(self.files.items()):
                info = tarfile.TarInfo(path.strip("/"))
                info.size, info.mode = len(content), mode
                tar.addfile(info, io.BytesIO(content))
            for path, target in sorted(self.symlinks.items()):
                info = tarfile.TarInfo(path.strip("/"))
                info.type, info.linkname, info.mode = tarfile.SYMTYPE, target, 0o777
                tar.addfile(info)
        return buffer.getvalue()


def architecture() -> str:
    machine = platform.machine()
    return _ARCH.get(machine, machine)


def _blob(data: bytes) -> tuple[str, bytes]:
    return f"sha256:{hashlib.sha256(data).hexdigest()}", data


def image_archive(
    name: str,
    layers: Sequence[Layer],
    entrypoint: Sequence[str] = (),
    cmd: Sequence[str] = (),
    user: str = "",
    env: Sequence[str] = ("PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",),
) -> bytes:
    """An OCI image layout as a tar, named `name` (e.g. localhost/pause:3.10)."""
    layer_blobs = [_blob(layer.tar()) for layer in layers]
    image_config: dict[str, Any] = {"Env": list(env)}
    if entrypoint:
        image_config["Entrypoint"] = list(entrypoint)
    if cmd:
        image_config["Cmd"] = list(cmd)
    if user:
        image_config["User"] = user
    config = {
        "architecture": architecture(),
        "os": "linux",
        "config": image_config,
        "rootfs": {"type": "layers", "diff_ids": [digest for digest, _ in layer_blobs]},
    }
    config_digest, config_bytes = _blob(json.dumps(config, sort_keys=True).encode())
    manifest = {
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {
            "mediaType": "application/vnd.oci.image.config.v1+json",
            "digest": config_digest,
            "size": len(config_bytes),
        },
        "layers": [
            {
                "mediaType": "application/vnd.oci.image.layer.v1.tar",
                "digest": digest,
                "size": len(data),
            }
            for digest, data in layer_blobs
        ],
    }
    manifest_digest, manifest_bytes = _blob(json.dumps(manifest, sort_keys=True).encode())
    tag = name.rpartition(":")[2] if ":" in name.rpartition("/")[2] else "latest"
    index = {
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.index.v1+json",
        "manifests": [
            {
                "mediaType": manifest["mediaType"],
                "digest": manifest_digest,
                "size": len(manifest_bytes),
                "platform": {"architecture": architecture(), "os": "linux"},
                "annotations": {
                    "io.containerd.image.name": name,
                    "org.opencontainers.image.ref.name": tag,
                },
            }
        ],
    }
    blobs = [*layer_blobs, (config_digest, config_bytes), (manifest_digest, manifest_bytes)]
    entries = {
        "oci-layout": json.dumps({"imageLayoutVersion": "1.0.0"}).encode(),
        "index.json": json.dumps(index).encode(),
        **{f"blobs/sha256/{digest.split(':')[1]}": data for digest, data in blobs},
    }
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        for directory in ("blobs", "blobs/sha256"):
            info = tarfile.TarInfo(directory)
            info.type, info.mode = tarfile.DIRTYPE, 0o755
            tar.addfile(info)
        for path, data in entries.items():
            info = tarfile.TarInfo(path)
            info.size, info.mode = len(data), 0o644
            tar.addfile(info, io.BytesIO(data))
    return buffer.getvalue()
