"""The host tools the image commands need, installed from the distribution when missing.

A fresh Debian or Ubuntu machine has none of them. As root, the commands install what
they need with apt-get; otherwise they stop and name the packages to install.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable, Sequence

from torchyard import hostpackages

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
    try:
        hostpackages.install(packages, log, needed_by=", ".join(absent))
    except hostpackages.PackagesMissing as error:
        raise ToolError(str(error)) from None
    if still := missing(absent):
        raise ToolError(f"{', '.join(still)} still not found after installing {packages}")
