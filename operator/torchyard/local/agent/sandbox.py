"""A pod's PID and IPC namespaces, held by its pause process.

Each pod gets a PID namespace of its own, shared by its containers (Kubernetes'
`shareProcessNamespace: true`): a pod sees only its own processes in /proc, so it can
neither signal another pod's processes nor reach their files through /proc/PID/root.
Its first process, the pause (`shim.py --pause`), is pid 1: it reaps orphans, and when
it dies the kernel kills every process left in the namespace. It also makes the pod's
IPC namespace, which each container's shim joins, and sits in the pod's network
namespace, so that tearing the network down (or the cleanup after a crashed agent)
ends the pod's processes with it.

The agent never enters these namespaces itself. A PID namespace applies to the children
a process forks next, so the agent points its own "PID namespace for children" at the
pod's (setns) just around starting a container's shim, and back at once: the shim is
the agent's own child (exit status and pidfd as before) with a pid inside the pod.
`hostPID` and `hostIPC` pods (only where the agent allows them) share the node's.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

from torchyard.local.agent import procs, shim


class SandboxError(Exception):
    """The pod's namespaces could not be made."""


# The agent's own PID namespace, to point back at after starting a container in a pod.
_HOST_PID_NS: int | None = None


def _host_pid_ns() -> int:
    global _HOST_PID_NS
    if _HOST_PID_NS is None:
        _HOST_PID_NS = os.open("/proc/self/ns/pid", os.O_RDONLY | os.O_CLOEXEC)
    return _HOST_PID_NS


@contextlib.contextmanager
def children_in(pid_ns_fd: int | None) -> Iterator[None]:
    """Processes this thread forks inside the block start in the PID namespace
    `pid_ns_fd` (None: the agent's own)."""
    if pid_ns_fd is None:
        yield
        return
    host = _host_pid_ns()
    shim.setns_fd(pid_ns_fd, shim.CLONE_NEWPID, "of the pod's PID namespace")
    try:
        yield
    finally:
        shim.setns_fd(host, shim.CLONE_NEWPID, "back to the agent's PID namespace")


@contextlib.contextmanager
def _new_pid_namespace() -> Iterator[None]:
    """The next process this thread forks is pid 1 of a new PID namespace."""
    _host_pid_ns()
    shim.unshare(shim.CLONE_NEWPID)
    try:
        yield
    finally:
        shim.setns_fd(_host_pid_ns(), shim.CLONE_NEWPID, "back to the agent's PID namespace")


class PodSandbox:
    """The pause process of one pod and the namespaces it holds."""

    def __init__(
        self,
        popen: subprocess.Popen[bytes],
        pid_ns: procs.PinnedNamespace | None,
        ipc_ns: procs.PinnedNamespace | None,
    ) -> None:
        self.popen = popen
        self.pid_ns = pid_ns
        self.ipc_ns = ipc_ns

    @classmethod
    async def start(
        cls, netns: str | None, new_pid: bool, new_ipc: bool, log: Path
    ) -> PodSandbox | None:
        """Start the pause; None when the pod shares both namespaces with the node."""
        if not new_pid and not new_ipc:
            return None
        read_end, write_end = os.pipe2(os.O_CLOEXEC)
        argv = [sys.executable, "-I", "-S", shim.__file__, "--pause"]
        argv += [netns or "-", "1" if new_ipc else "0", str(write_end)]
        log.parent.mkdir(parents=True, exist_ok=True)
        try:
            with (
                log.open("ab") as out,
                _new_pid_namespace() if new_pid else contextlib.nullcontext(),
            ):
                popen = subprocess.Popen(
                    argv,
                    stdin=subprocess.DEVNULL,
                    stdout=out,
                    stderr=out,
                    pass_fds=(write_end,),
                    start_new_session=True,
                    env={},
                )
        finally:
            os.close(write_end)
        lines = (await read_pipe(read_end)).decode(errors="replace").splitlines()
        if "ready" not in lines:
            popen.kill()
            await asyncio.get_running_loop().run_in_executor(None, popen.wait)
            errors = [line.removeprefix("error ") for line in lines if line.startswith("error ")]
            raise SandboxError(
                "the pod's pause process failed: "
                + (errors[-1] if errors else f"exit status {popen.returncode}")
            )
        pid_ns = procs.PinnedNamespace.of(popen.pid, "pid") if new_pid else None
        ipc_ns = procs.PinnedNamespace.of(popen.pid, "ipc") if new_ipc else None
        return cls(popen, pid_ns, ipc_ns)

    @property
    def pid_ns_fd(self) -> int | None:
        return self.pid_ns.fd if self.pid_ns is not None else None

    @property
    def ipc_ns_fd(self) -> int | None:
        return self.ipc_ns.fd if self.ipc_ns is not None else None

    async def stop(self) -> list[int]:
        """Kill the pause, and with it every process of the pod; return survivors."""
        with contextlib.suppress(ProcessLookupError):
            self.popen.send_signal(signal.SIGKILL)
        await asyncio.get_running_loop().run_in_executor(None, self.popen.wait)
        survivors: list[int] = []
        if self.pid_ns is not None:
            # The kernel has killed them already; this waits until /proc agrees.
            survivors = await procs.kill_all(self.pid_ns.pids)
            self.pid_ns.release()
        if self.ipc_ns is not None:
            self.ipc_ns.release()
        return survivors


async def read_pipe(fd: int) -> bytes:
    """Read a pipe to its end without blocking the event loop."""
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader()
    transport, _ = await loop.connect_read_pipe(
        lambda: asyncio.StreamReaderProtocol(reader), os.fdopen(fd, "rb", buffering=0)
    )
    try:
        return await reader.read()
    finally:
        transport.close()
