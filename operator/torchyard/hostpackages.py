"""Installing the Debian packages that torchyard's host commands need (the image
builder, the container node), when they are missing.

A fresh CI machine has none of them. As root on Debian or Ubuntu, `install()` runs
`apt-get update` and `apt-get install -y`; anywhere else it fails with the exact command.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Callable, Sequence


class PackagesMissing(RuntimeError):
    """Packages are missing and cannot be installed here; the message says what to run."""


def install_command(packages: Sequence[str], recommends: bool = True) -> str:
    """The shell command that installs `packages`, as a person would type it."""
    options = "-y" if recommends else "-y --no-install-recommends"
    return f"apt-get update && apt-get install {options} {' '.join(packages)}"


def install(
    packages: Sequence[str], log: Callable[[str], None], needed_by: str, recommends: bool = True
) -> None:
    """Install `packages` with apt-get as root, or raise PackagesMissing naming them."""
    command = install_command(packages, recommends)
    if os.geteuid() != 0 or shutil.which("apt-get") is None:
        raise PackagesMissing(
            f"{needed_by} needs {', '.join(packages)}, which are not installed. Install them "
            f"(Debian/Ubuntu, as root): `{command}`; then run this again."
        )
    log(f"installing {', '.join(packages)} with apt-get (for {needed_by})")
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    done = subprocess.run(["sh", "-c", command], env=env, capture_output=True, text=True)
    if done.returncode != 0:
        raise PackagesMissing(
            f"`{command}` failed ({done.returncode}):\n{done.stdout[-2000:]}{done.stderr[-2000:]}"
        )
