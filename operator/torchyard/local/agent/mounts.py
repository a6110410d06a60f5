"""What is mounted where in a container, and the mount points that must exist first.

A container sees the node's file system (read-only where the spec says so) with its
volumes bound over it in a mount namespace of its own (see shim.py). A mount point
that the node lacks (say /mnt/pvc/models) has to be created on the node before the
bind; the agent creates such points, counts their users, and removes them when the
last container using them is gone, so that the node keeps no trace. Mount points
under /dev or a private /tmp, or inside another volume, never touch the node.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any

from torchyard.local.agent.podspec import expand
from torchyard.local.agent.shim import Mount
from torchyard.local.agent.volumes import Volume, VolumeError

DEFAULT_TERMINATION_PATH = "/dev/termination-log"
# Private in every container (tmpfs): mount points there are the shim's to create.
SHIM_CREATED = ("/dev", "/run", "/var/run")
PRIVATE_TMP = ("/tmp", "/var/tmp")


def _under(path: str, root: str) -> bool:
    return path == root or path.startswith(root.rstrip("/") + "/")


def _clean(path: str) -> str:
    return (
        str(PurePosixPath("/") / PurePosixPath(path).relative_to("/"))
        if path.startswith("/")
        else path
    )


def container_mounts(
    container: Mapping[str, Any],
    volumes: Mapping[str, Volume],
    env: Mapping[str, str],
    etc_files: Mapping[str, str],
    termination_file: str | None,
    keep_visible: Sequence[str] = (),
) -> list[Mount]:
    """Bind mounts for one container, parents before children.

    `etc_files` maps a target (/etc/hosts...) to the pod's file; a volume mounted at the
    same target wins. `termination_file` is the container's file on the node.
    `keep_visible` are paths a mount must not hide (the Python environment): a
    container's "image" is the node's file system, so a volume at /work would hide a
    Python under /work, which no image would notice; refuse it with a clear message.
    """
    mounts: list[Mount] = []
    for vm in container.get("volumeMounts") or []:
        target = _clean(vm["mountPath"])
        hidden = [p for p in keep_visible if _under(p, target)]
        if hidden:
            raise VolumeError(
                f"volumeMount {vm['name']!r} at {target} would hide {hidden[0]}, where this "
                "node's Python environment lives (the node agent runs containers on the "
                "node's file system); mount it elsewhere"
            )
        volume = volumes.get(vm["name"])
        if volume is None:
            raise VolumeError(f"volumeMount {vm['name']!r} names no volume of the pod")
        source = volume.path
        sub = vm.get("subPath") or (expand(vm["subPathExpr"], env) if vm.get("subPathExpr") else "")
        if sub:
            if sub.startswith("/") or ".." in PurePosixPath(sub).parts:
                raise VolumeError(f"subPath {sub!r} must be a relative path inside the volume")
            source = str(Path(source) / sub)
        mounts.append(
            Mount(
                source=source,
                target=target,
                readonly=bool(vm.get("readOnly")) or volume.readonly,
                kind="bind",
            )
        )
    targets = {m["target"] for m in mounts}
    for target, source in etc_files.items():
        if target not in targets:
            mounts.append(Mount(source=source, target=target, readonly=True, kind="bind"))
    if termination_file is not None:
        path = container.get("terminationMessagePath") or DEFAULT_TERMINATION_PATH
        if path not in targets:
            mounts.append(Mount(source=termination_file, target=path, readonly=False, kind="bind"))
    # Parents first: a volume at /data must be mounted before one at /data/cache.
    return sorted(mounts, key=lambda m: len(PurePosixPath(m["target"]).parts))


@dataclass(frozen=True)
class PointPlan:
    """Where a mount point must be created: on the node, or inside another volume."""

    path: str
    is_file: bool
    on_node: bool


def _point(mounts: Sequence[Mount], i: int, private_tmp: bool) -> PointPlan | None:
    m = mounts[i]
    target = m["target"]
    is_file = m["kind"] == "bind" and not os.path.isdir(m["source"])
    if any(_under(target, root) for root in SHIM_CREATED):
        return None
    if private_tmp and any(_under(target, root) for root in PRIVATE_TMP):
        return None
    parent = None
    for earlier in mounts[:i]:
        if _under(target, earlier["target"]) and target != earlier["target"]:
            parent = earlier
    if parent is None:
        return PointPlan(target, is_file, on_node=True)
    if parent["kind"] != "bind":
        return None  # inside a tmpfs the shim mounted: the shim creates it
    rel = PurePosixPath(target).relative_to(parent["target"])
    return PointPlan(str(Path(parent["source"]) / rel), is_file, on_node=False)


def kept_in_private_tmp(python_paths: Sequence[str]) -> list[str]:
    """The Python environment's paths a private /tmp or /var/tmp would hide."""
    return [p for p in python_paths if any(_under(p, tmp) and p != tmp for tmp in PRIVATE_TMP)]


def mount_point_plan(mounts: Sequence[Mount], private_tmp: bool) -> list[PointPlan]:
    """The mount points the agent creates before the container starts."""
    plans = (_point(mounts, i, private_tmp) for i in range(len(mounts)))
    return [p for p in plans if p is not None]


def workdir_plan(cwd: str, mounts: Sequence[Mount], private_tmp: bool) -> PointPlan | None:
    """Where a missing workingDir gets created (runtimes create it), by the same rules."""
    if cwd == "/":
        return None
    probe = Mount(source="", target=cwd, readonly=False, kind="tmpfs")
    return _point([*mounts, probe], len(mounts), private_tmp)


# Shared by every agent on the machine (tests and benchmarks run several side by side):
# one agent must not remove a mount point that another agent's container still uses.
REGISTRY = Path("/run/torchyard-agent/mount-points.json")
Registry = dict[str, dict[str, int]]  # node path -> {owner: number of holds}


class MountPoints:
    """Mount points created on the node, counted per user in a registry that all agents
    on the machine share (under a file lock), so that a mount point goes with its last
    user, whichever agent that is, and one an agent left behind by crashing is removed
    by the next agent that looks."""

    def __init__(self, registry: Path = REGISTRY, owner: str | None = None) -> None:
        self._path = registry
        self.owner = owner or str(os.getpid())

    @contextlib.contextmanager
    def _registry(self) -> Iterator[Registry]:
        self._path.parent.mkdir(parents=True, exist_ok=True)
        with open(self._path.with_suffix(".lock"), "a") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            try:
                registry: Registry = json.loads(self._path.read_text())
            except (FileNotFoundError, ValueError):
                registry = {}
            yield registry
            tmp = self._path.with_suffix(f".{os.getpid()}.tmp")
            tmp.write_text(json.dumps(registry, sort_keys=True))
            tmp.replace(self._path)

    def acquire(self, plans: Sequence[PointPlan]) -> list[str]:
        """Create what is missing; return the node paths this caller now holds."""
        held: list[str] = []
        with self._registry() as registry:
            for plan in plans:
                if not plan.on_node:
                    _create(Path(plan.path), plan.is_file)
                    continue
                for created in _create(Path(plan.path), plan.is_file):
                    registry.setdefault(created, {})
                # Hold every recorded component of the path, so that a shared parent
                # (/mnt/pvc) goes only with its last user.
                for part in [*reversed(Path(plan.path).parents), Path(plan.path)]:
                    users = registry.get(str(part))
                    if users is not None:
                        users[self.owner] = users.get(self.owner, 0) + 1
                        held.append(str(part))
        return held

    def release(self, held: Sequence[str]) -> None:
        with self._registry() as registry:
            for key in held:
                users = registry.get(key)
                if users and self.owner in users:
                    users[self.owner] -= 1
                    if users[self.owner] <= 0:
                        del users[self.owner]
            _remove_unused(registry)

    def cleanup_recorded(self) -> None:
        """Forget this agent's holds and those of agents that are gone; remove the
        mount points nobody holds any more (deepest first)."""
        with self._registry() as registry:
            for users in registry.values():
                for owner in list(users):
                    if owner == self.owner or not _owner_alive(owner):
                        del users[owner]
            _remove_unused(registry)


def _remove_unused(registry: Registry) -> None:
    for key in sorted(registry, key=len, reverse=True):
        if not registry[key]:
            _remove(Path(key))
            del registry[key]


def _owner_alive(owner: str) -> bool:
    return owner.isdigit() and Path(f"/proc/{owner}").exists()


def _create(path: Path, is_file: bool) -> list[str]:
    """Create `path` and its missing parents; return what was created, parents first."""
    missing = []
    probe = path
    while not os.path.lexists(probe):
        missing.append(probe)
        probe = probe.parent
    created = []
    for p in reversed(missing):
        if p == path and is_file:
            p.touch(mode=0o644)
        else:
            p.mkdir(mode=0o755)
        created.append(str(p))
    return created


def _remove(path: Path) -> None:
    with contextlib.suppress(OSError):
        if path.is_dir() and not path.is_symlink():
            path.rmdir()
        elif path.is_file() and path.stat().st_size == 0:
            path.unlink()


# -- the Python environment under a directory the container's user cannot enter ------


def python_paths() -> list[str]:
    """Directories a container needs to run the local Python environment."""
    import sys

    import torchyard

    paths = {sys.prefix, sys.base_prefix, sys.exec_prefix, sys.base_exec_prefix}
    # An editable install imports torchyard from its source tree.
    paths.add(str(Path(torchyard.__file__).resolve().parents[1]))
    return sorted({os.path.realpath(p) for p in paths})


def can_enter(path: str, uid: int, groups: Sequence[int]) -> bool:
    """Whether `uid` (with `groups`) may traverse the directory `path`."""
    if uid == 0:
        return True
    try:
        st = os.stat(path)
    except OSError:
        return False
    if st.st_uid == uid:
        return bool(st.st_mode & 0o100)
    if st.st_gid in groups:
        return bool(st.st_mode & 0o010)
    return bool(st.st_mode & 0o001)


def shadow_plan(
    needed: Sequence[str],
    uid: int,
    groups: Sequence[int],
    enter: Any = can_enter,
) -> list[dict[str, Any]]:
    """For each needed path behind a directory the user cannot enter (a Python under
    /root, mode 0700): that directory, to be covered by an empty tmpfs, and the needed
    paths to bind back inside it. The node's permissions stay untouched."""
    shadows: dict[str, list[str]] = {}
    for path in needed:
        parts = PurePosixPath(path).parts
        for depth in range(2, len(parts)):
            ancestor = str(PurePosixPath(*parts[:depth]))
            if not enter(ancestor, uid, groups):
                shadows.setdefault(ancestor, []).append(path)
                break
    return [{"path": path, "keep": sorted(keep)} for path, keep in sorted(shadows.items())]
