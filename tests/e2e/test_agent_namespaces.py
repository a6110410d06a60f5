"""Cleaning up after one container never signals the next one.

The kernel gives a freed namespace's inode number to the next namespace created, so a
container's processes are found through its namespace held open, never a bare number.
Needs root (unshare), as the agent does; no cluster.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import time

import pytest

from torchyard.local.agent import procs

pytestmark = pytest.mark.e2e


def _in_own_mount_namespace(argv: list[str]) -> subprocess.Popen[bytes]:
    ours = procs.namespace_inode(os.getpid(), "mnt")
    child = subprocess.Popen(["unshare", "--mount", *argv])
    deadline = time.monotonic() + 10
    while procs.namespace_inode(child.pid, "mnt") in (ours, None):
        assert time.monotonic() < deadline, "unshare did not enter a new mount namespace"
        time.sleep(0.01)
    return child


def test_a_released_container_namespace_cannot_reach_the_next_container():
    first = _in_own_mount_namespace(["sleep", "60"])
    pinned = procs.PinnedNamespace.of(first.pid, "mnt")
    assert pinned is not None
    assert pinned.pids() == [first.pid]
    first.kill()
    first.wait()
    # The first container is gone; the next one starts before its cleanup runs.
    second = _in_own_mount_namespace(["sleep", "60"])
    try:
        assert procs.namespace_inode(second.pid, "mnt") != pinned.inode
        survivors = asyncio.run(procs.kill_all(pinned.pids, timeout=2))
        assert survivors == []
        assert second.poll() is None, "the first container's cleanup killed the second"
    finally:
        pinned.release()
        second.kill()
        second.wait()


def test_a_pinned_namespace_finds_forked_processes_and_nothing_once_released():
    child = _in_own_mount_namespace(["sh", "-c", "sleep 60 & sleep 60"])
    pinned = procs.PinnedNamespace.of(child.pid, "mnt")
    assert pinned is not None
    try:
        deadline = time.monotonic() + 10
        while len(pinned.pids()) < 2:
            assert time.monotonic() < deadline, pinned.pids()
            time.sleep(0.01)
        assert asyncio.run(procs.kill_all(pinned.pids, timeout=5)) == []
        assert child.wait(timeout=5) != 0
    finally:
        pinned.release()
    assert not pinned.held
    assert pinned.pids() == []
