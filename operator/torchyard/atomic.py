"""Publishing a directory on a local filesystem (file://, pvc://) atomically and durably.

- **No gap.** A new directory takes the place of an old one with one
  `renameat2(RENAME_EXCHANGE)`: at every instant the name holds the old directory or
  the new one, never nothing (two renames, old away then new in, leave it empty in
  between, and forever after a kill at the wrong moment). A directory is put where
  nothing is with `RENAME_NOREPLACE`, so two writers racing for a new name cannot
  replace each other's work unnoticed: the loser sees the winner's artifact.
- **Durable.** Every file and directory of the new one is fsynced before the swap, and
  the parent after it, so a crash never leaves a published name over data that did
  not reach the disk.
- **No litter.** A writer holds an flock on its staging directory (or file) while it
  works. The next writer in the same directory removes the staging entries that killed
  writers left behind: older than `ABANDONED_AFTER` and not locked by anyone.

Where the kernel or the filesystem has no renameat2 (not Linux, or NFS), the swap falls
back to the two renames and the no-replace check to a look before the rename; both are
logged.
"""

from __future__ import annotations

import contextlib
import ctypes
import errno
import fcntl
import logging
import os
import platform
import re
import shutil
import time
from collections.abc import Callable, Iterator
from pathlib import Path

log = logging.getLogger(__name__)

RENAME_NOREPLACE = 1
RENAME_EXCHANGE = 2
_AT_FDCWD = -100
_SYSCALL_NUMBERS = {"x86_64": 316, "aarch64": 276}  # renameat2, for a libc without it
_UNSUPPORTED = (errno.ENOSYS, errno.EINVAL, errno.EOPNOTSUPP)

ABANDONED_AFTER = 3600.0
"""Seconds after its last change that an unlocked staging entry counts as abandoned."""
ABANDONED_UNLOCKABLE_AFTER = 86400.0
"""The same where the filesystem cannot lock (then only the age tells a live writer)."""
_STAGING = re.compile(r"^\.(.+\.)?[0-9a-f]{32}\.(partial|old)$")


def staging_name(name: str, token: str) -> str:
    """`.NAME.TOKEN.partial`: hidden, next to the target, and recognisable as staging
    (TOKEN is 32 hex digits) so that the next writer may clean it up."""
    return f".{name}.{token}.partial"


def _renameat2() -> Callable[[bytes, bytes, int], int] | None:
    libc = ctypes.CDLL(None, use_errno=True)
    function = getattr(libc, "renameat2", None)  # glibc >= 2.28
    if function is not None:
        function.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p]
        function.argtypes.append(ctypes.c_uint)
        function.restype = ctypes.c_int
        return lambda old, new, flags: int(function(_AT_FDCWD, old, _AT_FDCWD, new, flags))
    number = _SYSCALL_NUMBERS.get(platform.machine())
    if number is None:
        return None
    syscall = libc.syscall
    syscall.restype = ctypes.c_long
    at, long = ctypes.c_long(_AT_FDCWD), ctypes.c_long  # variadic: pass full-width words
    return lambda old, new, flags: int(syscall(long(number), at, old, at, new, long(flags)))


_RENAME2 = _renameat2() if platform.system() == "Linux" else None


def rename2(source: Path, target: Path, flags: int) -> bool:
    """renameat2(source, target, flags): True when done, False when this kernel or
    filesystem cannot (then nothing changed). FileExistsError with RENAME_NOREPLACE when
    `target` exists; other failures raise OSError."""
    if _RENAME2 is None:
        return False
    if _RENAME2(os.fsencode(source), os.fsencode(target), flags) == 0:
        return True
    code = ctypes.get_errno()
    if code in _UNSUPPORTED:
        return False
    raise OSError(code, os.strerror(code), str(source), None, str(target))


def fsync_path(path: Path, directory: bool = False) -> None:
    flags = os.O_RDONLY | (os.O_DIRECTORY if directory else 0)
    fd = os.open(path, flags)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def fsync_tree(root: Path) -> None:
    """Flush every file, then every directory bottom-up, under `root` to disk."""
    for directory, _, files in os.walk(root, topdown=False):
        for name in files:
            fsync_path(Path(directory) / name)
        fsync_path(Path(directory), directory=True)


def install(staging: Path, target: Path, may_replace: Callable[[], None]) -> bool:
    """Put the finished directory `staging` at `target` atomically, after fsyncing it.

    Where `target` holds nothing, `staging` is renamed there (no replace). Where it
    holds something, `may_replace()` is called first (it raises to refuse) and the two
    are exchanged: `staging` then holds the old directory, which the caller removes.
    Returns True when an old directory was exchanged out."""
    fsync_tree(staging)
    try:
        placed = rename2(staging, target, RENAME_NOREPLACE)
    except FileExistsError:
        placed = False
    else:
        if not placed and not target.exists():
            log.warning("%s: no renameat2 here; publishing with a plain rename", target)
            staging.rename(target)
            placed = True
    if placed:
        fsync_path(target.parent, directory=True)
        return False
    may_replace()
    if not rename2(staging, target, RENAME_EXCHANGE):
        log.warning("%s: no RENAME_EXCHANGE here; replacing with two renames", target)
        _two_renames(staging, target)
    fsync_path(target.parent, directory=True)
    return True


def _two_renames(staging: Path, target: Path) -> None:
    """The fallback swap: the old directory away, the new one in (a moment of nothing),
    and the old one back at `staging` for the caller to remove."""
    retired = target.with_name(f".{target.name}.{os.urandom(16).hex()}.old")
    target.rename(retired)
    staging.rename(target)
    retired.rename(staging)


@contextlib.contextmanager
def held(path: Path) -> Iterator[None]:
    """Hold an exclusive flock on `path` (a staging directory or file): the next writer
    leaves it alone. Where the filesystem cannot lock, the age alone protects it."""
    flags = os.O_RDONLY | (os.O_DIRECTORY if path.is_dir() else 0)
    fd = os.open(path, flags)
    try:
        with contextlib.suppress(OSError):
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        yield
    finally:
        os.close(fd)


def clean_abandoned(directory: Path, now: float | None = None) -> list[Path]:
    """Remove the staging entries (`.*.<32 hex>.partial`, `.old`) that killed writers left
    in `directory`: those unchanged for ABANDONED_AFTER seconds that no live writer
    holds (flock). Returns what was removed; errors are ignored (another writer may be
    removing the same entry)."""
    now = time.time() if now is None else now
    removed = []
    try:
        entries = list(os.scandir(directory))
    except OSError:
        return []
    for entry in entries:
        if not _STAGING.match(entry.name):
            continue
        path = Path(entry.path)
        with contextlib.suppress(OSError):
            age = now - entry.stat(follow_symlinks=False).st_mtime
            if age >= ABANDONED_AFTER and _remove_if_unlocked(path, age):
                removed.append(path)
    if removed:
        log.info("removed %d abandoned staging entries in %s", len(removed), directory)
    return removed


def _remove_if_unlocked(path: Path, age: float) -> bool:
    directory = path.is_dir() and not path.is_symlink()
    fd = os.open(path, os.O_RDONLY | (os.O_DIRECTORY if directory else 0) | os.O_NOFOLLOW)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return False  # a live writer
        except OSError:
            if age < ABANDONED_UNLOCKABLE_AFTER:
                return False
        if directory:
            shutil.rmtree(path)
        else:
            path.unlink()
        return True
    finally:
        os.close(fd)
