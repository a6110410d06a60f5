"""promtool, Prometheus's own checker of rule files, which the alert rule tests run
(tests/unit/test_alert_rules.py): found on PATH, or installed as root from the
distribution's `prometheus` package through torchyard.hostpackages.

scripts/test runs `python -m tests.promtool` before the tests start: installed from
inside the tests, it could run apt-get while a test of another process does (the image
builder's and the container node's install their packages too), and one of the two
would find apt's lock taken.
"""

from __future__ import annotations

import os
import shutil
import sys
from collections.abc import Callable

from torchyard import hostpackages

PACKAGE = "prometheus"
"""Debian's and Ubuntu's package of the server, which ships promtool beside it. Without
its Recommends: prometheus-node-exporter is a daemon more, and nothing here needs it."""
INSTALL = hostpackages.install_command([PACKAGE], recommends=False)


def find_or_install(log: Callable[[str], None]) -> str | None:
    """The path of promtool; installed first when missing and this process is root.
    None when it is missing and cannot be installed here (not root, or no apt-get)."""
    found = shutil.which("promtool")
    if found is not None or os.geteuid() != 0 or shutil.which("apt-get") is None:
        return found
    hostpackages.install(
        [PACKAGE],
        log,
        needed_by="the alert rule tests' promtool",
        recommends=False,
        # Installed for promtool alone: the server it starts would listen on :9090.
        services=[PACKAGE],
    )
    return shutil.which("promtool")


def main() -> int:
    found = find_or_install(lambda line: print(f"promtool: {line}", file=sys.stderr))
    if found is None:
        print(
            f"promtool: missing, and the alert rule tests need it; as root: {INSTALL}",
            file=sys.stderr,
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
