"""The container shim: turns itself into one container's process, then execs its command.

The agent runs this file directly (`python -I -S shim.py CONFIG`), so it imports only
the standard library and never the torchyard package: it starts in a few milliseconds
and sees no site-packages. In order, it

1. joins the pod's network and IPC namespaces and takes a mount and UTS namespace of
   its own (the agent started it in the pod's PID namespace: see sandbox.py);
2. builds the container's view of the file system: the host's mounts, read-only and
   nosuid, a fresh /dev (nodev: only the standard device nodes, bound from the host,
   can be opened), a private /tmp and /run, the pod's volumes, the managed /etc/hosts,
   the termination-message file, and a /proc of the pod's PID namespace with /proc/sys
   read-only;
3. drops to the container's user, groups and capabilities; sets no_new_privs;
4. writes "exec" to the status pipe and execs the command. The pipe is close-on-exec:
   the agent reads "exec" then end-of-file on success, or an error message.

A privileged container (only where the agent allows them) keeps /sys, /proc/sys and
setuid binaries as the host has them.

`shim.py --pause NETNS IPC STATUS_FD` is the pod's pause process instead: pid 1 of the
pod's PID namespace, holder of its IPC namespace, reaper of orphans (see sandbox.py).

The config (JSON) is written by torchyard.local.agent.runtime; `Config` below names
its keys.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import json
import os
import signal
import socket
import sys
from typing import Any, TypedDict

CLONE_NEWNS = 0x00020000
CLONE_NEWUTS = 0x04000000
CLONE_NEWIPC = 0x08000000
CLONE_NEWPID = 0x20000000
CLONE_NEWNET = 0x40000000

MS_RDONLY = 0x1
MS_NOSUID = 0x2
MS_NODEV = 0x4
MS_NOEXEC = 0x8
MS_REMOUNT = 0x20
MS_NOATIME = 0x400
MS_NODIRATIME = 0x800
MS_BIND = 0x1000
MS_REC = 0x4000
MS_PRIVATE = 1 << 18
MS_RELATIME = 1 << 21
MNT_DETACH = 0x2

PR_CAPBSET_DROP = 24
PR_SET_NO_NEW_PRIVS = 38
PR_CAP_AMBIENT = 47
PR_CAP_AMBIENT_CLEAR_ALL = 4

# statvfs flags -> mount flags, to keep them when a mount is remounted read-only.
_KEEP_FLAGS = (
    (os.ST_NOSUID, MS_NOSUID),
    (os.ST_NODEV, MS_NODEV),
    (os.ST_NOEXEC, MS_NOEXEC),
    (os.ST_NOATIME, MS_NOATIME),
    (os.ST_NODIRATIME, MS_NODIRATIME),
    (os.ST_RELATIME, MS_RELATIME),
)

# Device nodes every container runtime provides. They are bound from the host's /dev
# onto a nodev tmpfs: those binds are the only device nodes a container can open, even
# one that may mknod.
DEVICES = ("null", "zero", "full", "random", "urandom", "tty")
# Mounts that the container's view replaces (kernel interfaces), and /sys, which a
# privileged container keeps writable.
KERNEL_MOUNTS = ("/proc", "/dev")
PRIVILEGED_MOUNTS = ("/sys",)
# What a container that is not privileged may read but never write, and kernel files
# it may not read at all (masked), as Docker and containerd do.
READONLY_PROC = ("/proc/sys", "/proc/sysrq-trigger", "/proc/bus", "/proc/fs", "/proc/irq")
MASKED_PROC = ("/proc/kcore", "/proc/keys", "/proc/timer_list", "/proc/sched_debug")
# The host's sockets and runtime state (a Docker socket, a database's, the agent's own)
# are no container's business: /run is a private tmpfs.
PRIVATE_RUN = "/run"

_libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)


class Mount(TypedDict):
    source: str
    target: str
    readonly: bool
    # "bind" (source is a host path) or "tmpfs" (source is ignored)
    kind: str


class Config(TypedDict):
    argv: list[str]
    env: dict[str, str]
    cwd: str
    uid: int
    gid: int
    groups: list[int]
    netns: str | None
    # A descriptor (passed to the shim) of the pod's IPC namespace; None shares the host's.
    ipcns_fd: int | None
    # The agent started the shim in the pod's own PID namespace: mount its /proc.
    pid_namespace: bool
    # Keeps /sys, /proc/sys and setuid binaries as the host has them.
    privileged: bool
    hostname: str
    readonly_root: bool
    private_tmp: bool
    # Paths of the Python environment under /tmp or /var/tmp (a checkout in /tmp): bound
    # back, read-only, into the private tmpfs that would otherwise hide them.
    keep_in_tmp: list[str]
    # Directories the user cannot traverse, shadowed by an empty tmpfs, and the paths
    # under them that stay visible (the Python environment, e.g. under /root).
    shadow: list[dict[str, Any]]
    mounts: list[Mount]
    # Bounding-set capabilities to keep (numbers); None keeps all (root only).
    capabilities: list[int] | None
    no_new_privs: bool
    status_fd: int


class ShimError(Exception):
    pass


def _check(result: int, what: str) -> None:
    if result != 0:
        err = ctypes.get_errno()
        raise ShimError(f"{what}: {os.strerror(err)} (errno {err})")


def mount(source: str | None, target: str, fstype: str | None, flags: int, data: str = "") -> None:
    _check(
        _libc.mount(
            source.encode() if source else None,
            target.encode(),
            fstype.encode() if fstype else None,
            ctypes.c_ulong(flags),
            data.encode() if data else None,
        ),
        f"mount {source or fstype} on {target}",
    )


def umount(target: str, detach: bool = True) -> None:
    _check(_libc.umount2(target.encode(), MNT_DETACH if detach else 0), f"umount {target}")


def setns(path: str, nstype: int) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    try:
        setns_fd(fd, nstype, path)
    finally:
        os.close(fd)


def setns_fd(fd: int, nstype: int, what: str = "") -> None:
    _check(_libc.setns(fd, nstype), f"setns {what or fd}")


def unshare(flags: int) -> None:
    _check(_libc.unshare(flags), "unshare")


def _prctl(option: int, arg: int = 0, arg3: int = 0) -> None:
    _check(_libc.prctl(option, ctypes.c_ulong(arg), ctypes.c_ulong(arg3), 0, 0), "prctl")


def _mount_flags(path: str) -> int:
    flags = os.statvfs(path).f_flag
    return sum(mflag for sflag, mflag in _KEEP_FLAGS if flags & sflag)


def remount(target: str, readonly: bool, nosuid: bool = False) -> None:
    """Make one mount read-only or writable in this namespace, keeping its other flags."""
    flags = MS_REMOUNT | MS_BIND | _mount_flags(target) | (MS_RDONLY if readonly else 0)
    mount(None, target, None, flags | (MS_NOSUID if nosuid else 0))


def make_proc(new: bool, privileged: bool) -> None:
    """/proc of the pod's PID namespace (`new`), or the host's; /proc/sys and the other
    kernel knobs read-only and a few kernel files masked, unless privileged."""
    if new:
        mount("proc", "/proc", "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC)
    if privileged:
        return
    for path in READONLY_PROC:
        if os.path.exists(path):
            mount(path, path, None, MS_BIND | MS_REC)
            remount(path, readonly=True, nosuid=True)
    for path in MASKED_PROC:
        if os.path.isfile(path):
            mount("/dev/null", path, None, MS_BIND)


def mount_points() -> list[str]:
    """Every mount point of this mount namespace, parents before children."""
    points = []
    with open("/proc/self/mountinfo") as f:
        for line in f:
            point = line.split()[4].encode().decode("unicode_escape")
            points.append(point)
    return sorted(set(points), key=lambda p: (p.count("/"), p))


def _under(path: str, roots: tuple[str, ...]) -> bool:
    return any(path == root or path.startswith(root + "/") for root in roots)


def make_root_readonly(privileged: bool) -> None:
    """Every mount of the host read-only; nosuid too unless privileged, so that no
    setuid binary of the node raises a container's privileges."""
    skip = KERNEL_MOUNTS + (PRIVILEGED_MOUNTS if privileged else ())
    for point in mount_points():
        if _under(point, skip):
            continue
        try:
            remount(point, readonly=True, nosuid=not privileged)
        except (ShimError, OSError):
            # Mounts that vanish or refuse a remount (e.g. already read-only in a way
            # that cannot change) keep their flags.
            continue


def make_dev(devices: dict[str, str]) -> None:
    """A fresh /dev (nosuid, nodev, noexec) with the standard nodes bound from the
    host's: `devices` maps each name to a handle opened before /dev was covered."""
    mount("tmpfs", "/dev", "tmpfs", MS_NOSUID | MS_NODEV | MS_NOEXEC, "mode=755,size=65536k")
    for name, handle in devices.items():
        target = f"/dev/{name}"
        os.close(os.open(target, os.O_WRONLY | os.O_CREAT, 0o666))
        mount(handle, target, None, MS_BIND)
        # The bind keeps the host's device mount's flags (device files may be opened);
        # it gets nosuid and noexec, as the rest of /dev.
        mount(None, target, None, MS_REMOUNT | MS_BIND | MS_NOSUID | MS_NOEXEC)
    for name, target in (
        ("fd", "/proc/self/fd"),
        ("stdin", "/proc/self/fd/0"),
        ("stdout", "/proc/self/fd/1"),
        ("stderr", "/proc/self/fd/2"),
        ("core", "/proc/kcore"),
    ):
        os.symlink(target, f"/dev/{name}")
    os.mkdir("/dev/shm", 0o1777)
    # torch's DataLoader workers and shared tensors live in /dev/shm.
    mount("shm", "/dev/shm", "tmpfs", MS_NOSUID | MS_NODEV, "mode=1777")
    os.mkdir("/dev/pts", 0o755)
    os.mkdir("/dev/mqueue", 0o755)


def ensure_target(target: str, is_file: bool) -> None:
    """Create a mount point that is missing, where creating it is ours to do (tmpfs)."""
    if os.path.lexists(target):
        return
    os.makedirs(os.path.dirname(target) or "/", exist_ok=True)
    if is_file:
        os.close(os.open(target, os.O_WRONLY | os.O_CREAT, 0o644))
    else:
        os.mkdir(target, 0o755)


def open_path(path: str) -> str:
    """A handle on `path` that stays valid when something is mounted over it.

    Sources are opened before any mount: a volume at /tmp would otherwise hide a source
    that lives under /tmp. The descriptor is close-on-exec.
    """
    fd = os.open(path, os.O_PATH | os.O_CLOEXEC)
    return f"/proc/self/fd/{fd}"


def apply_mount(m: Mount, source: str) -> None:
    target = m["target"]
    if m["kind"] == "tmpfs":
        ensure_target(target, is_file=False)
        mount("tmpfs", target, "tmpfs", MS_NOSUID | MS_NODEV, "mode=1777")
        return
    ensure_target(target, is_file=not os.path.isdir(source))
    mount(source, target, None, MS_BIND | MS_REC)
    remount(target, readonly=m["readonly"])


def apply_shadow(path: str, keep: list[tuple[str, str]]) -> None:
    """Hide a directory the user cannot enter, keeping the paths under it it must use."""
    mount("tmpfs", path, "tmpfs", MS_NOSUID | MS_NODEV, "mode=755")
    for kept, handle in keep:
        ensure_target(kept, is_file=not os.path.isdir(handle))
        mount(handle, kept, None, MS_BIND | MS_REC)


def drop_capabilities(keep: list[int]) -> None:
    with open("/proc/sys/kernel/cap_last_cap") as f:
        last = int(f.read())
    for cap in range(last + 1):
        if cap not in keep:
            _prctl(PR_CAPBSET_DROP, cap)
    _prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL)


def setup(config: Config) -> None:
    if config["netns"]:
        setns(config["netns"], CLONE_NEWNET)
    if config["ipcns_fd"] is not None:
        setns_fd(config["ipcns_fd"], CLONE_NEWIPC, "of the pod's IPC namespace")
    unshare(CLONE_NEWNS | CLONE_NEWUTS)
    # Nothing mounted from now on may propagate back to the host.
    mount(None, "/", None, MS_REC | MS_PRIVATE)
    if config["hostname"]:
        socket.sethostname(config["hostname"])
    sources = [open_path(m["source"]) if m["kind"] == "bind" else "" for m in config["mounts"]]
    shadows = [
        (entry["path"], [(kept, open_path(kept)) for kept in entry["keep"]])
        for entry in config["shadow"]
    ]
    kept_in_tmp = [(kept, open_path(kept)) for kept in config.get("keep_in_tmp", [])]
    devices = {name: open_path(f"/dev/{name}") for name in DEVICES}
    privileged = config["privileged"]
    if config["readonly_root"]:
        make_root_readonly(privileged)
    make_dev(devices)
    targets = {m["target"] for m in config["mounts"]}
    if PRIVATE_RUN not in targets and os.path.isdir(PRIVATE_RUN):
        mount("tmpfs", PRIVATE_RUN, "tmpfs", MS_NOSUID | MS_NODEV, "mode=755")
    if config["private_tmp"]:
        for tmp in ("/tmp", "/var/tmp"):
            if tmp not in targets and os.path.isdir(tmp):
                mount("tmpfs", tmp, "tmpfs", MS_NOSUID | MS_NODEV, "mode=1777")
                for kept, handle in kept_in_tmp:
                    if kept.startswith(tmp + "/"):
                        ensure_target(kept, is_file=not os.path.isdir(handle))
                        mount(handle, kept, None, MS_BIND | MS_REC)
                        remount(kept, readonly=True)
    for path, keep in shadows:
        apply_shadow(path, keep)
    for m, source in zip(config["mounts"], sources, strict=True):
        apply_mount(m, source)
    # Last: the mounts above name their sources through /proc/self/fd.
    make_proc(config["pid_namespace"], privileged)


def drop_privileges(config: Config) -> None:
    if config["capabilities"] is not None:
        drop_capabilities(config["capabilities"])
    os.setgroups(config["groups"])
    os.setresgid(config["gid"], config["gid"], config["gid"])
    os.setresuid(config["uid"], config["uid"], config["uid"])
    if config["no_new_privs"]:
        _prctl(PR_SET_NO_NEW_PRIVS, 1)


# What the pause becomes once the namespaces are made: pid 1 of the pod, reaping orphans
# and ignoring signals, in a Python that has not loaded ctypes (half the memory).
REAPER = """
import os, signal
def reap(*_):
    while True:
        try:
            pid, _status = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if pid == 0:
            return
signal.signal(signal.SIGCHLD, reap)
reap()
while True:
    signal.pause()
"""
PAUSE_NAME = "torchyard-pause"


def pause(netns: str | None, new_ipc: bool, status: int) -> None:
    """The pod's pause process: joins the pod's network namespace (so that tearing the
    network down ends it), makes the pod's IPC namespace, then execs the reaper: pid 1
    of the pod's PID namespace until it is killed, which ends every process of the pod."""
    if netns:
        setns(netns, CLONE_NEWNET)
    if new_ipc:
        unshare(CLONE_NEWIPC)
    os.chdir("/")
    for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        signal.signal(sig, signal.SIG_IGN)  # kept across exec
    os.write(status, b"ready\n")
    os.close(status)
    os.execv(sys.executable, [sys.executable, "-I", "-S", "-c", REAPER, PAUSE_NAME])


def main(argv: list[str]) -> int:
    if argv[1] == "--pause":
        status = int(argv[4])
        try:
            pause(None if argv[2] == "-" else argv[2], argv[3] == "1", status)
        except (ShimError, OSError) as error:
            os.write(status, f"error {error}\n".encode())
            return 128
        return 0
    with open(argv[1]) as f:
        config: Config = json.load(f)
    status = config["status_fd"]
    # Inherited for us; the command must not inherit it, or the agent would never see
    # the end of the pipe that says the exec happened.
    os.set_inheritable(status, False)
    try:
        setup(config)
        drop_privileges(config)
        try:
            os.chdir(config["cwd"])
        except OSError as error:
            raise ShimError(f"chdir to {config['cwd']}: {error.strerror}") from error
        os.write(status, b"exec\n")
        try:
            os.execvpe(config["argv"][0], config["argv"], config["env"])
        except OSError as error:
            path = config["env"].get("PATH", "")
            raise ShimError(
                f'exec: "{config["argv"][0]}": {error.strerror} (PATH={path})'
            ) from error
    except (ShimError, OSError) as error:
        message = str(error)
        os.write(status, f"error {message}\n".encode())
        print(f"torchyard-agent: cannot start the container: {message}", file=sys.stderr)
        return 128
    return 0  # not reached: execvpe replaced this process


if __name__ == "__main__":
    sys.exit(main(sys.argv))
