"""Installing the Debian packages that torchyard's host commands need (the image
builder, the container node), when they are missing.

A fresh CI machine has none of them. As root on Debian or Ubuntu, `install()` runs
`apt-get update` and `apt-get install -y`; anywhere else it fails with the exact command.

Debian starts a packaged daemon as soon as it is installed, and at every boot after,
unless /usr/sbin/policy-rc.d forbids it (container images' does, a machine's seldom):
`services` names the daemons of packages installed for their programs alone, which are
stopped and disabled again.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Callable, Sequence
from pathlib import Path

SYSTEMD = Path("/run/systemd/system")
"""Present when systemd is the running init (sd_booted's test)."""
INIT_D = Path("/etc/init.d")


class PackagesMissing(RuntimeError):
    """Packages are missing and cannot be installed here; the message says what to run."""


def install_command(packages: Sequence[str], recommends: bool = True) -> str:
    """The shell command that installs `packages`, as a person would type it."""
    options = "-y" if recommends else "-y --no-install-recommends"
    return f"apt-get update && apt-get install {options} {' '.join(packages)}"


def install(
    packages: Sequence[str],
    log: Callable[[str], None],
    needed_by: str,
    recommends: bool = True,
    services: Sequence[str] = (),
) -> None:
    """Install `packages` with apt-get as root, or raise PackagesMissing naming them; then
    stop and disable the daemons `services` (see the module docstring)."""
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
    for service in services:
        _disable(service, log)


def _disable(service: str, log: Callable[[str], None]) -> None:
    if SYSTEMD.is_dir():
        commands = [["systemctl", "disable", "--now", f"{service}.service"]]
    elif (script := INIT_D / service).exists():
        commands = [[str(script), "stop"], ["update-rc.d", service, "disable"]]
    else:
        return
    for command in commands:
        done = subprocess.run(command, capture_output=True, text=True)
        if done.returncode != 0:
            # The programs wanted are installed: a daemon left running is the machine's
            # owner's to stop, not a reason to fail what needed the programs.
            log(f"could not stop {service}: `{' '.join(command)}` failed: {done.stderr.strip()}")
            return
    log(f"stopped {service} and disabled it at boot: only its package's programs were wanted")
