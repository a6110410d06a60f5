"""How the suite splits across test processes when asked to: `scripts/test -n 2` (pytest-xdist:
two processes, one per core of the CI machine; CI itself runs one). Every `--dist` that
spreads tests (load, loadfile, loadscope, ...) is grouped the same way.

Each process has its own control plane and node agent (session fixtures on ports,
bridges and subnets of their own, chosen at random among free ones), so a test file
runs whole on one process, with its module fixtures (an operator, a namespace walked
through in order) set up once. The image builds, the kind e2e and the container node
share one process: they use podman's and containerd's stores (kind runs the images the
image tests build), and the node's bridge tynode0 exists once per machine. That group is
the longest, so it goes first, and the other process takes the files in turn.
"""

from __future__ import annotations

import os
from typing import Any

import pytest

# Test directories whose files form one group, run by one process.
CONTAINERS = ("tests/images/", "tests/kind/", "tests/node/")


def group_of(nodeid: str) -> str:
    """The unit a process runs whole: the containers group, or the test's file."""
    return "containers" if nodeid.startswith(CONTAINERS) else nodeid.split("::", 1)[0]


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    if "PYTEST_XDIST_WORKER" not in os.environ:
        return  # one process: the files in their own order
    # Stable: every file keeps its order; only the containers group moves to the front.
    items.sort(key=lambda item: group_of(item.nodeid) != "containers")


@pytest.hookimpl(optionalhook=True, tryfirst=True)
def pytest_xdist_make_scheduler(config: pytest.Config, log: Any) -> Any:
    if config.getoption("dist") in ("no", "each"):
        return None
    # xdist's `loadgroup` would do it from marks, but it tags node ids by assigning
    # item._nodeid, which pytest 9's node ids no longer read: a scheduler of our own.
    from xdist.scheduler import LoadScopeScheduling

    class GroupScheduling(LoadScopeScheduling):  # type: ignore[misc]
        def _split_scope(self, nodeid: str) -> str:
            return group_of(nodeid)

    # In collection order (the containers group first), not largest group first.
    config.option.loadscopereorder = False
    return GroupScheduling(config, log)
