"""Start, watch and stop one container instance as a local process (through shim.py).

A container's main process is the shim, which becomes the command by exec: its pid is
the container's pid, its exit status the container's. Exit is noticed through a pidfd
on the event loop (no thread, no SIGCHLD handler), and stopping signals every process
in the container's mount namespace, not just the main one (see procs.py).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from torchyard.local.agent import procs, shim
from torchyard.local.agent.podspec import Identity
from torchyard.local.agent.sandbox import PodSandbox, children_in, read_pipe

SHIM = shim.__file__


class StartError(Exception):
    """The container could not start (the runtime's StartError, exit code 128)."""


@dataclass
class Launch:
    """Everything the shim needs for one container instance."""

    argv: list[str]
    env: dict[str, str]
    cwd: str
    identity: Identity
    netns: str | None
    # The pod's PID and IPC namespaces; None shares the node's (hostPID and hostIPC).
    sandbox: PodSandbox | None
    hostname: str
    mounts: list[shim.Mount]
    shadow: list[dict[str, Any]]
    private_tmp: bool
    keep_in_tmp: list[str]
    log_path: Path
    config_path: Path

    def shim_config(self, status_fd: int) -> dict[str, Any]:
        ident = self.identity
        return {
            "argv": self.argv,
            "env": self.env,
            "cwd": self.cwd,
            "uid": ident.uid,
            "gid": ident.gid,
            "groups": list(ident.groups),
            "netns": self.netns,
            "ipcns_fd": self.sandbox.ipc_ns_fd if self.sandbox is not None else None,
            "pid_namespace": self.sandbox is not None and self.sandbox.pid_ns is not None,
            "privileged": ident.capabilities is None,
            "hostname": self.hostname,
            # The node's file system is the container's "image": never the
            # container's to change, whatever readOnlyRootFilesystem says. A container
            # that may write its root gets a private /tmp and /var/tmp instead.
            "readonly_root": True,
            "private_tmp": self.private_tmp,
            "keep_in_tmp": self.keep_in_tmp,
            "shadow": self.shadow,
            "mounts": self.mounts,
            "capabilities": list(ident.capabilities) if ident.capabilities is not None else None,
            "no_new_privs": ident.no_new_privs,
            "status_fd": status_fd,
        }


class ContainerProcess:
    """One running container instance."""

    def __init__(self, popen: subprocess.Popen[bytes], mnt: procs.PinnedNamespace | None) -> None:
        self.popen = popen
        self.pid = popen.pid
        # Held until the container's last process is gone (see procs.py).
        self.mnt = mnt
        self._killing: asyncio.Task[None] | None = None
        self.id = uuid.uuid4().hex
        self.started = time.time()
        self._exited: asyncio.Future[int] = asyncio.get_running_loop().create_future()
        self._watch()

    @classmethod
    async def start(cls, launch: Launch) -> ContainerProcess:
        """Run the shim; return once the command was exec'd, or raise StartError."""
        read_end, write_end = os.pipe2(os.O_CLOEXEC)
        launch.config_path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(launch.config_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as f:
            json.dump(launch.shim_config(write_end), f)
        launch.log_path.parent.mkdir(parents=True, exist_ok=True)
        sandbox = launch.sandbox
        passed = [write_end]
        if sandbox is not None and sandbox.ipc_ns_fd is not None:
            passed.append(sandbox.ipc_ns_fd)
        try:
            with (
                launch.log_path.open("ab") as log,
                children_in(sandbox.pid_ns_fd if sandbox is not None else None),
            ):
                popen = subprocess.Popen(
                    [sys.executable, "-I", "-S", SHIM, str(launch.config_path)],
                    stdin=subprocess.DEVNULL,
                    stdout=log,
                    stderr=log,
                    pass_fds=tuple(passed),
                    start_new_session=True,
                    env={},
                )
        except OSError as error:
            # ENOMEM: the pod's PID namespace has no pid 1 any more (its pause died).
            raise StartError(f"cannot start a process in the pod: {error.strerror}") from error
        finally:
            os.close(write_end)
        lines = (await read_pipe(read_end)).decode(errors="replace").splitlines()
        if lines != ["exec"]:
            await asyncio.get_running_loop().run_in_executor(None, popen.wait)
            errors = [line.removeprefix("error ") for line in lines if line.startswith("error ")]
            raise StartError(
                errors[-1] if errors else f"shim exited with status {popen.returncode}"
            )
        return cls(popen, procs.PinnedNamespace.of(popen.pid, "mnt"))

    def _watch(self) -> None:
        loop = asyncio.get_running_loop()
        try:
            pidfd = os.pidfd_open(self.pid)
        except ProcessLookupError:
            self._reap()
            return

        def ready() -> None:
            loop.remove_reader(pidfd)
            os.close(pidfd)
            self._reap()

        loop.add_reader(pidfd, ready)

    def _reap(self) -> None:
        code = self.popen.wait()
        if not self._exited.done():
            self._exited.set_result(code)

    @property
    def returncode(self) -> int | None:
        return self._exited.result() if self._exited.done() else None

    async def wait(self) -> int:
        return await asyncio.shield(self._exited)

    def signal(self, sig: signal.Signals) -> None:
        """Signal the main process's group and every process of the container."""
        with contextlib.suppress(ProcessLookupError, PermissionError):
            if self.returncode is None:
                os.killpg(self.pid, sig)
        if self.mnt is not None:
            procs.signal_all(self.mnt.pids(), sig)

    async def stop(self, grace: Callable[[], float] | float) -> int:
        """SIGTERM, wait out the grace period, SIGKILL; return the exit status.

        `grace` may be a callable, re-read while waiting, so that a shorter grace period
        given later (kubectl delete --grace-period=0 after a first delete) applies.
        """
        if self.returncode is None:
            self.signal(signal.SIGTERM)
            began = time.monotonic()
            while self.returncode is None:
                limit = grace() if callable(grace) else grace
                left = limit - (time.monotonic() - began)
                if left <= 0:
                    break
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self.wait(), timeout=min(left, 0.2))
        await self.kill()
        return await self.wait()

    async def kill(self) -> None:
        """SIGKILL the container and anything left in it; wait until all are gone."""
        # One kill at a time: the namespace is released at the end of the first.
        if self._killing is None:
            self._killing = asyncio.ensure_future(self._kill())
        await asyncio.shield(self._killing)

    async def _kill(self) -> None:
        if self.returncode is None:
            self.signal(signal.SIGKILL)
            await self.wait()
        if self.mnt is not None:
            try:
                await procs.kill_all(self.mnt.pids)
            finally:
                self.mnt.release()
