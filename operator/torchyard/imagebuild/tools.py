"""The host tools the image commands need, installed from the distribution when missing.

A fresh Debian or Ubuntu machine has none of them. As root, the commands install what
they need with apt-get; otherwise they stop and name the packages to install.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Callable, Sequence

PACKAGES: dict[str, tuple[str, ...]] = {
    # podman runs builds and containers with runc; the CNI plugins give build steps a
    # network (pip downloads from PyPI).
    "podman": ("podman", "containernetworking-plugins"),
    "runc": ("runc",),
    # The Python base made from Debian packages, when the default base cannot be pulled;
    # the keyring lets it check Debian's archive on Ubuntu too.
    "mmdebstrap": ("mmdebstrap", "debian-archive-keyring"),
    # Loading the images into a containerd (a kubelet's node).
    "ctr": ("containerd",),
}


class ToolError(RuntimeError):
    """A tool is missing and cannot be installed here; the message says what to do."""


def missing(tools: Sequence[str]) -> list[str]:
    return [tool for tool in tools if shutil.which(tool) is None]


def packages_for(tools: Sequence[str]) -> list[str]:
    """The apt packages that provide the tools, in order, each once."""
    return list(dict.fromkeys(package for tool in tools for package in PACKAGES[tool]))


def ensure(tools: Sequence[str], log: Callable[[str], None]) -> None:
    """Install the missing tools with apt-get (as root), or raise ToolError."""
    absent = missing(tools)
    if not absent:
        return
    packages = packages_for(absent)
    install = ["apt-get", "install", "-y", *packages]
    if os.geteuid() != 0 or shutil.which("apt-get") is None:
        raise ToolError(
            f"{', '.join(absent)} not found. Install them (Debian/Ubuntu, as root): "
            f"apt-get update && {' '.join(install)}; then run this again."
        )
    log(f"installing {', '.join(packages)} with apt-get (for {', '.join(absent)})")
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    for command in (["apt-get", "update"], install):
        done = subprocess.run(command, env=env, capture_output=True, text=True, check=False)
        if done.returncode != 0:
            raise ToolError(f"`{' '.join(command)}` failed:\n{done.stdout[-2000:]}{done.stderr}")
    if still := missing(absent):
        raise ToolError(f"{', '.join(still)} still not found after installing {packages}")
