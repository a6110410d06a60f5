"""Where checkpoint files live: a directory every replica mounts, or an S3 prefix.

Both offer the same few operations, each of which leaves a file whole or absent: a
local file is written under a temporary name and renamed, an S3 object is uploaded in
one request and appears complete. checkpoint.py builds its commit protocol on them.
"""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path
from typing import Any, Protocol

import torch

from torchyard.storage import (
    StorageError,
    atomic_file,
    is_remote,
    local_path,
    s3_call,
    sha256_file,
    write_file_atomic,
)

State = dict[str, Any]


class CheckpointStorage(Protocol):
    uri: str

    def steps(self) -> list[str]:
        """Names of the step directories (committed or not), any order."""
        ...

    def read(self, step: str, name: str) -> bytes | None:
        """A small file's content, None if it is not there."""
        ...

    def clear(self, step: str) -> None:
        """Remove what an earlier attempt left of `step` and make room for it."""
        ...

    def save(self, step: str, name: str, state: State) -> str:
        """torch.save `state` as `name`; return its sha256:<hex>."""
        ...

    def write(self, step: str, name: str, data: bytes) -> None: ...

    def local_copy(self, step: str, name: str) -> Path | None:
        """A local path with the file's content to load, None if it is not there."""
        ...

    def done_with(self, path: Path) -> None:
        """`path` from local_copy is loaded and no longer needed."""
        ...

    def remove(self, step: str) -> None: ...


class DirectoryStorage:
    """file:// or pvc://: a directory every replica mounts (a ReadWriteMany claim)."""

    def __init__(self, uri: str) -> None:
        self.uri = uri
        self.root = local_path(uri)

    def steps(self) -> list[str]:
        return [path.name for path in self.root.glob("step-*") if path.is_dir()]

    def read(self, step: str, name: str) -> bytes | None:
        try:
            return (self.root / step / name).read_bytes()
        except OSError:
            return None

    def clear(self, step: str) -> None:
        shutil.rmtree(self.root / step, ignore_errors=True)
        (self.root / step).mkdir(parents=True)

    def save(self, step: str, name: str, state: State) -> str:
        path = self.root / step / name
        with atomic_file(path) as partial:
            torch.save(state, partial)
        return f"sha256:{sha256_file(path)}"

    def write(self, step: str, name: str, data: bytes) -> None:
        write_file_atomic(self.root / step / name, data)

    def local_copy(self, step: str, name: str) -> Path | None:
        path = self.root / step / name
        return path if path.is_file() else None

    def done_with(self, path: Path) -> None:
        pass  # the checkpoint's own file

    def remove(self, step: str) -> None:
        shutil.rmtree(self.root / step, ignore_errors=True)


class S3Storage:
    """s3://bucket/prefix: every replica reaches the bucket; nothing needs mounting.
    Files pass through a local scratch directory (torch.save and torch.load want files)."""

    def __init__(self, uri: str) -> None:
        from torchyard import s3

        self.uri = uri
        self.prefix = s3.key_path(uri)
        self.scratch = Path(tempfile.mkdtemp(prefix="torchyard-checkpoint-"))

    def steps(self) -> list[str]:
        from torchyard import s3

        keys = s3_call(self.uri, lambda fs: s3.objects(fs, self.prefix))
        return sorted({key.split("/", 1)[0] for key in keys if key.startswith("step-")})

    def read(self, step: str, name: str) -> bytes | None:
        def get(fs: Any) -> bytes | None:
            try:
                return bytes(fs.cat_file(f"{self.prefix}/{step}/{name}"))
            except FileNotFoundError:
                return None

        result: bytes | None = s3_call(self.uri, get)
        return result

    def clear(self, step: str) -> None:
        self.remove(step)

    def save(self, step: str, name: str, state: State) -> str:
        local = self.scratch / f"{step}-{name}"
        try:
            torch.save(state, local)
            digest = f"sha256:{sha256_file(local)}"
            key = f"{self.prefix}/{step}/{name}"
            s3_call(self.uri, lambda fs: fs.put_file(str(local), key))
        finally:
            local.unlink(missing_ok=True)
        return digest

    def write(self, step: str, name: str, data: bytes) -> None:
        key = f"{self.prefix}/{step}/{name}"
        s3_call(self.uri, lambda fs: fs.pipe_file(key, data))

    def local_copy(self, step: str, name: str) -> Path | None:
        local = self.scratch / f"{step}-{name}"
        key = f"{self.prefix}/{step}/{name}"

        def get(fs: Any) -> bool:
            try:
                fs.get_file(key, str(local))
            except FileNotFoundError:
                return False
            return True

        return local if s3_call(self.uri, get) else None

    def done_with(self, path: Path) -> None:
        path.unlink(missing_ok=True)

    def remove(self, step: str) -> None:
        from torchyard import s3

        s3_call(self.uri, lambda fs: s3.remove_prefix(fs, f"{self.prefix}/{step}"))


def open_storage(uri: str) -> CheckpointStorage:
    if is_remote(uri):
        return S3Storage(uri)
    try:
        return DirectoryStorage(uri)
    except StorageError as error:
        raise StorageError(f"checkpoint.uri: {error}") from None
