"""The host software the container node needs, and installing it when it is missing.

A fresh CI machine has none of it. As root on Debian or Ubuntu, `ensure()` runs
`apt-get update && apt-get install -y` for what is missing; elsewhere it fails with
the exact command to run.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from torchyard import hostpackages
from torchyard.local.node.errors import NodeError
from torchyard.local.node.layout import CNI_BIN_DIR

Log = Callable[[str], None]


@dataclass(frozen=True)
class Requirement:
    """A file the node needs (a program name looked up on PATH, or an absolute path),
    and the Debian package that provides it."""

    file: str
    package: str


REQUIREMENTS: tuple[Requirement, ...] = (
    Requirement("containerd", "containerd"),
    Requirement("ctr", "containerd"),
    Requirement("runc", "runc"),
    Requirement("iptables", "iptables"),
    Requirement(str(CNI_BIN_DIR / "bridge"), "containernetworking-plugins"),
    Requirement(str(CNI_BIN_DIR / "host-local"), "containernetworking-plugins"),
    Requirement(str(CNI_BIN_DIR / "portmap"), "containernetworking-plugins"),
    Requirement(str(CNI_BIN_DIR / "loopback"), "containernetworking-plugins"),
    # The pause image is compiled once from the pinned module's pause.c.
    Requirement("gcc", "gcc"),
    Requirement("/usr/lib/x86_64-linux-gnu/libc.a", "libc6-dev"),
)
SBIN = ("/usr/local/sbin", "/usr/sbin", "/sbin")


def locate(file: str) -> Path | None:
    """Where a required file is: absolute paths as they are, programs on PATH or in sbin."""
    if file.startswith("/"):
        return Path(file) if Path(file).exists() else None
    path = os.pathsep.join([os.environ.get("PATH", ""), *SBIN])
    found = shutil.which(file, path=path)
    return Path(found) if found else None


def missing_packages(
    requirements: Iterable[Requirement], exists: Callable[[str], bool]
) -> list[str]:
    """The packages to install, each once, in the order first needed."""
    return list(dict.fromkeys(r.package for r in requirements if not exists(r.file)))


def install_command(packages: Sequence[str]) -> str:
    return hostpackages.install_command(packages, recommends=False)


def ensure(log: Log, requirements: Sequence[Requirement] = REQUIREMENTS) -> None:
    """Install what is missing (as root, with apt-get), or say exactly what to install."""
    requirements = [r for r in requirements if _applies(r)]
    packages = missing_packages(requirements, lambda f: locate(f) is not None)
    if not packages:
        return
    try:
        hostpackages.install(packages, log, needed_by="the container node", recommends=False)
    except hostpackages.PackagesMissing as error:
        raise NodeError(str(error)) from None
    if still := missing_packages(requirements, lambda f: locate(f) is not None):
        raise NodeError(f"installed, but still missing: {', '.join(still)}")


def _applies(requirement: Requirement) -> bool:
    # libc.a's path names the architecture; on other machines gcc's own check suffices.
    return "x86_64" not in requirement.file or os.uname().machine == "x86_64"
