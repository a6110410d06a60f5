"""Finding and signalling every process of a container or pod, without cgroups.

Each container has a mount namespace of its own and each pod a network namespace, and
every process a container forks inherits them, even one that calls setsid() or whose
parent died. So "all processes of this container" is "all processes whose
/proc/PID/ns/mnt is this one": the agent signals those, not a process group only.

A namespace's inode number is only its name while the namespace exists: the kernel
hands a freed number to the next namespace created, at once. A container's namespace is
therefore held open (PinnedNamespace) until its last process is gone, so that cleaning up
after one container can never signal the next one.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import time
from collections.abc import Callable


def namespace_inode(pid: int | str, kind: str) -> int | None:
    """The inode of a process's namespace of `kind` ("mnt", "net", "pid"), or None if gone."""
    try:
        return os.stat(f"/proc/{pid}/ns/{kind}").st_ino
    except (FileNotFoundError, ProcessLookupError, PermissionError):
        return None


class PinnedNamespace:
    """A process's namespace, held open so that its inode keeps naming it alone."""

    def __init__(self, fd: int, kind: str) -> None:
        self._fd: int | None = fd
        self.kind = kind
        self.inode = os.fstat(fd).st_ino

    @classmethod
    def of(cls, pid: int, kind: str) -> PinnedNamespace | None:
        """Pin the namespace of `kind` of a live process; None if it has exited."""
        try:
            fd = os.open(f"/proc/{pid}/ns/{kind}", os.O_RDONLY | os.O_CLOEXEC)
        except (FileNotFoundError, ProcessLookupError, PermissionError):
            return None
        return cls(fd, kind)

    @property
    def held(self) -> bool:
        return self._fd is not None

    @property
    def fd(self) -> int:
        """The open namespace file (for setns), while held."""
        if self._fd is None:
            raise ValueError(f"the {self.kind} namespace {self.inode} was released")
        return self._fd

    def pids(self) -> list[int]:
        """Every process in the namespace; none once it is released."""
        return pids_in(self.kind, self.inode) if self.held else []

    def release(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None

    def __del__(self) -> None:
        self.release()


def file_inode(path: str) -> int | None:
    """The namespace inode of a bind-mounted namespace file such as /run/netns/NAME."""
    try:
        return os.stat(path).st_ino
    except FileNotFoundError:
        return None


def pids_in(kind: str, inode: int) -> list[int]:
    """Every process whose namespace of `kind` is `inode`."""
    me = os.getpid()
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit() or int(entry) == me:
            continue
        if namespace_inode(entry, kind) == inode:
            found.append(int(entry))
    return found


def signal_all(pids: list[int], sig: signal.Signals) -> None:
    for pid in pids:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.kill(pid, sig)


def alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            state = f.read().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, ProcessLookupError, IndexError):
        return False
    return state != "Z"


async def kill_namespace(kind: str, inode: int, timeout: float = 10.0) -> list[int]:
    """SIGKILL every process in a namespace until none is left; return survivors.

    Only for a namespace something else holds (a /run/netns bind mount): see
    PinnedNamespace.
    """
    return await kill_all(lambda: pids_in(kind, inode), timeout)


async def kill_all(find: Callable[[], list[int]], timeout: float = 10.0) -> list[int]:
    """SIGKILL what `find` returns until it returns no live process; return survivors."""
    deadline = time.monotonic() + timeout
    while True:
        pids = [p for p in find() if alive(p)]
        if not pids or time.monotonic() > deadline:
            return pids
        signal_all(pids, signal.SIGKILL)
        await asyncio.sleep(0.05)
