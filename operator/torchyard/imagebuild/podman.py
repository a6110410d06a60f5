"""podman command lines, built purely, and the few calls that run them.

Every podman call goes through `podman()`: the OCI runtime is runc (crun refuses a
hybrid cgroup layout, which CI machines and dev containers have), and every build step
and container gets the caller's own rlimits (podman's defaults are higher than a
process without CAP_SYS_RESOURCE may set, and runc then fails with "error setting
rlimit").
"""

from __future__ import annotations

import json
import resource
import subprocess
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

RUNTIME = "runc"

NPROC_CEILING = 32768
"""podman starts conmon with at most this many processes (pid_max's default), and runc
cannot raise the limit above it for the container."""

Limits = Mapping[str, tuple[int, int]]


@dataclass(frozen=True)
class Mount:
    """A host path bind-mounted into a build step or a container."""

    source: Path
    target: str
    read_only: bool = False

    def flag(self) -> str:
        return f"--volume={self.source}:{self.target}" + (":ro" if self.read_only else "")


def own_limits() -> dict[str, tuple[int, int]]:
    """This process's (soft, hard) limits of open files and processes."""
    return {
        "nofile": resource.getrlimit(resource.RLIMIT_NOFILE),
        "nproc": resource.getrlimit(resource.RLIMIT_NPROC),
    }


def ulimit_flags(limits: Limits) -> list[str]:
    """--ulimit flags that keep the given limits (never above what podman can grant)."""
    flags = []
    for name, (soft, hard) in sorted(limits.items()):
        ceiling = NPROC_CEILING if name == "nproc" else None
        if hard == resource.RLIM_INFINITY or hard < 0:
            hard = ceiling or 1048576
        if ceiling is not None:
            hard = min(hard, ceiling)
        soft = hard if soft == resource.RLIM_INFINITY or soft < 0 else min(soft, hard)
        flags.append(f"--ulimit={name}={soft}:{hard}")
    return flags


def podman(*args: str) -> list[str]:
    return ["podman", f"--runtime={RUNTIME}", *args]


def build_command(
    *,
    tag: str,
    dockerfile: Path,
    context: Path,
    build_args: Mapping[str, str],
    labels: Mapping[str, str],
    mounts: Sequence[Mount],
    limits: Limits,
) -> list[str]:
    """`podman build` of one image: layers cached (a changed source file reruns only the
    steps from its COPY on), the given build arguments and labels, host paths mounted
    into every RUN step (pip's cache, a CA bundle)."""
    return podman(
        "build",
        "--layers",
        f"--file={dockerfile}",
        f"--tag={tag}",
        *(f"--build-arg={name}={value}" for name, value in sorted(build_args.items())),
        *(f"--label={name}={value}" for name, value in sorted(labels.items())),
        *(mount.flag() for mount in mounts),
        *ulimit_flags(limits),
        str(context),
    )


def run_command(
    image: str,
    args: Sequence[str],
    *,
    limits: Limits,
    mounts: Sequence[Mount] = (),
    env: Mapping[str, str] | None = None,
    entrypoint: str | None = None,
) -> list[str]:
    """`podman run --rm` of an image as its own user, without network, and as the
    restricted Pod Security Standard has pods run (torchyard's pods also keep the root
    file system read-only, with /tmp writable)."""
    return podman(
        "run",
        "--rm",
        "--network=none",
        "--read-only",
        "--cap-drop=all",
        "--security-opt=no-new-privileges",
        *ulimit_flags(limits),
        *(mount.flag() for mount in mounts),
        *(f"--env={name}={value}" for name, value in sorted((env or {}).items())),
        *([f"--entrypoint={entrypoint}"] if entrypoint else []),
        image,
        *args,
    )


def save_command(tag: str, output: Path | None) -> list[str]:
    """`podman save` of an image as an OCI archive (to stdout without `output`):
    containerd's `ctr images import` and `kind load image-archive` both read it, under
    the image's name."""
    where = [f"--output={output}"] if output is not None else []
    return podman("save", "--format=oci-archive", *where, tag)


def inspect(reference: str) -> dict[str, Any] | None:
    """`podman image inspect`, or None when there is no such image here."""
    done = subprocess.run(
        podman("image", "inspect", reference), capture_output=True, text=True, check=False
    )
    if done.returncode != 0:
        return None
    found: list[dict[str, Any]] = json.loads(done.stdout)
    return found[0] if found else None


def label(image: Mapping[str, Any], name: str) -> str | None:
    """A label of an inspected image."""
    labels = (image.get("Config") or {}).get("Labels") or image.get("Labels") or {}
    value = labels.get(name)
    return str(value) if value is not None else None
