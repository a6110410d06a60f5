"""s3:// through fsspec and s3fs: the client the pod's environment configures, atomic
publishing of a directory, and downloads that trust only a complete artifact.

Configuration comes from the environment the operator gives the pods
(spec.storage.s3): TORCHYARD_S3_ENDPOINT for an S3-compatible store, AWS_REGION or
AWS_DEFAULT_REGION, and credentials the way every AWS SDK finds them
(AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY/AWS_SESSION_TOKEN from a Secret, IRSA's
AWS_ROLE_ARN + AWS_WEB_IDENTITY_TOKEN_FILE, instance metadata). Nothing here logs or
reports a credential.

Publishing (see `publish`): S3 has no rename, but it writes each object whole. An
artifact is complete when its DIGEST object exists and the digest of the other objects
under its prefix equals it; DIGEST is written last and removed first.

This module imports s3fs only when it talks to S3: the operator image has no s3fs and
imports the names above.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import uuid
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

ENDPOINT_ENV = "TORCHYARD_S3_ENDPOINT"
REGION_ENVS = ("AWS_REGION", "AWS_DEFAULT_REGION")
ACCESS_KEY_ENV = "AWS_ACCESS_KEY_ID"
SECRET_KEY_ENV = "AWS_SECRET_ACCESS_KEY"
SESSION_TOKEN_ENV = "AWS_SESSION_TOKEN"


class S3Error(RuntimeError):
    """Raised by this module; storage turns it into a StorageError naming the URI."""


def key_path(uri: str) -> str:
    """s3://bucket/a/b/ -> bucket/a/b (the path s3fs takes)."""
    parsed = urlparse(uri)
    if parsed.scheme != "s3" or not parsed.netloc:
        raise S3Error(f"{uri}: s3 URIs are s3://bucket/key")
    return f"{parsed.netloc}/{parsed.path.strip('/')}".rstrip("/")


def options(env: dict[str, str] | None = None) -> dict[str, Any]:
    """s3fs options from the environment: endpoint and region. Credentials are left to
    botocore's own chain, so that a Secret's keys, IRSA and instance roles all work."""
    env = dict(os.environ if env is None else env)
    client: dict[str, str] = {}
    if env.get(ENDPOINT_ENV):
        client["endpoint_url"] = env[ENDPOINT_ENV]
    region = next((env[name] for name in REGION_ENVS if env.get(name)), None)
    if region:
        client["region_name"] = region
    # Listings are never cached: a reader must see a replacement as soon as it happens.
    return {"client_kwargs": client, "use_listings_cache": False}


def filesystem() -> Any:
    try:
        import s3fs
    except ImportError as error:  # pragma: no cover - depends on the image
        raise S3Error("s3:// needs s3fs: install torchyard[worker]") from error
    return s3fs.S3FileSystem(**options())


def call(uri: str, action: Callable[[Any], Any]) -> Any:
    """Run `action(fs)`; an error of the store or of the way to it (no bucket, access
    denied, no credentials, unreachable endpoint) becomes an S3Error naming the URI and
    the endpoint. Other exceptions are bugs and pass through."""
    try:
        return action(filesystem())
    except S3Error:
        raise
    except Exception as error:
        if not _from_the_store(error):
            raise
        where = os.environ.get(ENDPOINT_ENV) or "AWS S3"
        raise S3Error(f"{uri}: {type(error).__name__}: {error} (endpoint: {where})") from None


def _from_the_store(error: Exception) -> bool:
    # s3fs turns S3's answers into OSErrors (FileNotFoundError, PermissionError);
    # botocore raises its own for credentials and endpoints.
    package = type(error).__module__.split(".")[0]
    return isinstance(error, OSError | ValueError) or package in ("botocore", "aiobotocore")


# -- listing -------------------------------------------------------------------------


def objects(fs: Any, prefix: str) -> dict[str, int]:
    """Relative key -> size of every object under `prefix`/ (not `prefix` itself)."""
    found = fs.find(prefix + "/", detail=True)
    return {
        name[len(prefix) + 1 :]: int(info.get("size") or 0)
        for name, info in found.items()
        if name.startswith(prefix + "/") and info.get("type") != "directory"
    }


def read_text(fs: Any, path: str) -> str | None:
    try:
        return str(fs.cat_file(path).decode()).strip()
    except FileNotFoundError:
        return None


def remove(fs: Any, paths: Iterable[str]) -> None:
    paths = list(paths)
    if paths:
        fs.rm(paths)


def remove_prefix(fs: Any, prefix: str) -> None:
    remove(fs, [f"{prefix}/{name}" for name in objects(fs, prefix)])


# -- publishing ----------------------------------------------------------------------


def staging_prefix(target: str) -> str:
    """A sibling of the target, so that nothing under the target's prefix is ever a
    stranger's: bucket/models/.int8.<random>.staging for bucket/models/int8."""
    parent, _, name = target.rpartition("/")
    return f"{parent}/.{name}.{uuid.uuid4().hex}.staging"


def publish(
    staging: Path,
    files: list[Path],
    uri: str,
    digest_name: str,
    digest: str,
    first: str | None = None,
    may_replace: Callable[[], None] | None = None,
) -> None:
    """Publish the local directory `staging` (its `files`) at `uri` atomically.

    1. Upload every file under a staging prefix. A failure here leaves the published
       artifact as it was.
    2. Call `may_replace()`, which raises to refuse replacing what the target holds
       (torchyard.storage: published artifacts are immutable); the staging prefix goes.
    3. Remove the target's DIGEST: from now on readers refuse the target as incomplete.
    4. Remove the keys of an earlier artifact that the new one does not have.
    5. Copy the staged objects into place, server-side, the one named `first` (the
       manifest, which names the job that publishes) before the others: a retry of the
       same job recognises its own half-published artifact.
    6. Write DIGEST, last: the artifact is complete again, with the new content.
    7. Delete the staging prefix (also after a failure).

    A crash between 3 and 6 leaves a target without DIGEST, which readers refuse, never
    a mix of two artifacts; the next publish replaces it.
    """
    target = key_path(uri)
    stage = staging_prefix(target)
    names = [file.relative_to(staging).as_posix() for file in files]
    lead = [name for name in names if name == first]
    groups = [group for group in (lead, [n for n in names if n != first]) if group]

    def run(fs: Any) -> None:
        clean_abandoned_stages(fs, target)
        try:
            fs.put([str(file) for file in files], [f"{stage}/{name}" for name in names])
        except Exception as error:
            with contextlib.suppress(Exception):
                remove_prefix(fs, stage)
            raise S3Error(
                f"{uri}: uploading failed ({type(error).__name__}: {error}); the published "
                "artifact, if any, is unchanged"
            ) from None
        try:
            if may_replace is not None:
                may_replace()
        except Exception:
            with contextlib.suppress(Exception):
                remove_prefix(fs, stage)
            raise
        try:
            remove(fs, [f"{target}/{digest_name}"] if fs.exists(f"{target}/{digest_name}") else [])
            stale = set(objects(fs, target)) - set(names) - {digest_name}
            remove(fs, [f"{target}/{name}" for name in sorted(stale)])
            for group in groups:
                fs.copy([f"{stage}/{n}" for n in group], [f"{target}/{n}" for n in group])
            fs.pipe_file(f"{target}/{digest_name}", (digest + "\n").encode())
        except Exception as error:
            raise S3Error(
                f"{uri}: replacing the artifact failed half way ({type(error).__name__}: "
                f"{error}); it has no {digest_name} now, so readers refuse it until a "
                "publish completes"
            ) from None
        finally:
            # A leftover staging prefix harms no reader; it is only space.
            with contextlib.suppress(Exception):
                remove_prefix(fs, stage)

    call(uri, run)


ABANDONED_STAGE_AFTER = 86400.0
"""Seconds after its newest object that another writer's staging prefix counts as
abandoned (S3 has no locks: only the age tells a live upload from a killed one)."""


def clean_abandoned_stages(fs: Any, target: str, now: float | None = None) -> None:
    """Remove the staging prefixes of this target that killed writers left (a day old)."""
    import time

    parent, _, name = target.rpartition("/")
    now = time.time() if now is None else now
    with contextlib.suppress(Exception):
        for stage in fs.glob(f"{parent}/.{name}.*.staging"):
            found = fs.find(stage + "/", detail=True)
            newest = max((_modified(info) for info in found.values()), default=0.0)
            if found and now - newest >= ABANDONED_STAGE_AFTER:
                remove(fs, list(found))


def _modified(info: dict[str, Any]) -> float:
    moment = info.get("LastModified")
    # Without a time the object might be fresh: never old enough to remove.
    return float(moment.timestamp()) if hasattr(moment, "timestamp") else float("inf")


# -- reading -------------------------------------------------------------------------


def cache_dir(cache: Path, uri: str, version: str) -> Path:
    """Where a download of `uri` at `version` (its digest, or an object's ETag) lives:
    a replaced artifact gets a new directory, never the old one's files."""
    return cache / hashlib.sha256(f"{uri}\0{version}".encode()).hexdigest()[:32]


def download(fs: Any, prefix: str, names: Iterable[str], into: Path) -> None:
    names = list(names)
    for name in names:
        (into / name).parent.mkdir(parents=True, exist_ok=True)
    fs.get([f"{prefix}/{name}" for name in names], [str(into / name) for name in names])


def settle(staging: Path, target: Path) -> Path:
    """Move a finished download into the cache; another process may have won the race
    (ranks of one pod fetch the same model), then its copy serves."""
    try:
        staging.rename(target)
    except OSError:
        if not target.exists():
            raise
        import shutil

        shutil.rmtree(staging, ignore_errors=True)
    return target
