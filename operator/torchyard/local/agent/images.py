"""Images the agent accepts, and what "running an image" means without pulling one.

There is no image store: an accepted image runs its command in the local Python
environment (the one the agent runs in), whose bin directory comes first on PATH. The
image's configuration (entrypoint, user, environment), which a real runtime reads from
the image, is declared here. Pure.
"""

from __future__ import annotations

import fnmatch
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from torchyard.images import WORKER_IMAGE

# The worker image's non-root user (torchyard.resources.pods.WORKER_UID).
WORKER_USER = 65532
STANDARD_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"


@dataclass(frozen=True)
class ImageConfig:
    """The parts of an OCI image config that matter to a container's process."""

    entrypoint: tuple[str, ...] = ()
    cmd: tuple[str, ...] = ()
    env: dict[str, str] = field(default_factory=dict)
    user: int = 0
    group: int = 0
    workdir: str = "/"


def python_bin() -> str:
    """The bin directory of the Python environment that containers run in."""
    return str(Path(sys.executable).parent)


# What images/worker/Dockerfile declares (ENTRYPOINT, USER, WORKDIR, ENV); a unit test
# keeps the two in step. PATH is the local environment's instead of /opt/torchyard/bin.
WORKER_ENV = {
    "PYTHONUNBUFFERED": "1",
    "PYTHONDONTWRITEBYTECODE": "1",
    "HF_HUB_OFFLINE": "1",
    "TRANSFORMERS_OFFLINE": "1",
}


def local_image_config(image: str, bin_dir: str) -> ImageConfig:
    path = {"PATH": f"{bin_dir}:{STANDARD_PATH}"}
    # The worker image by tag, by digest, or its -cuda variant.
    if image.split("@", 1)[0] == WORKER_IMAGE or image.startswith(f"{WORKER_IMAGE}-"):
        return ImageConfig(
            entrypoint=("torchyard",),
            env={**path, **WORKER_ENV},
            user=WORKER_USER,
            group=WORKER_USER,
            workdir="/tmp",
        )
    return ImageConfig(env=path)


def accepted(image: str, patterns: Sequence[str]) -> bool:
    """Whether an image may run: exact names or shell-style patterns (`ghcr.io/me/*`)."""
    return any(image == p or fnmatch.fnmatchcase(image, p) for p in patterns)


def refusal_message(image: str, patterns: Sequence[str]) -> str:
    allowed = ", ".join(patterns) or "(none)"
    return (
        f'image "{image}" is not available on this node: the torchyard node agent pulls '
        f"no images and runs only the local Python environment as {allowed} "
        "(start the agent with --image to accept more)"
    )
