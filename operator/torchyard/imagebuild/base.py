"""A Python base image made here from Debian packages, for machines that cannot pull the
Dockerfiles' default base (python:*-slim-bookworm from Docker Hub).

mmdebstrap writes a minimal bookworm root file system with Debian's Python 3.11 (the
same minor version as the default base and the lock files), which `podman import`
turns into an image. Its recipe is its key: the image is made again only when the
recipe changes.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

from torchyard.imagebuild.inputs import INPUTS_LABEL

DEBIAN_BASE = "localhost/torchyard/python:3.11-bookworm"
SUITE = "bookworm"
PACKAGES = ("python3", "python3-venv", "python-is-python3", "ca-certificates")
# Documentation, manual pages and translations are not needed in a container.
DPKG_OPTIONS = (
    "path-exclude=/usr/share/doc/*",
    "path-include=/usr/share/doc/*/copyright",
    "path-exclude=/usr/share/man/*",
    "path-exclude=/usr/share/locale/*",
    "path-include=/usr/share/locale/locale.alias",
)
# What python:*-slim sets and a root file system does not carry.
IMAGE_CHANGES = ("ENV LANG=C.UTF-8", 'CMD ["python3"]')


def mmdebstrap_command(output: Path) -> list[str]:
    """The root file system as a tarball: Debian's minbase plus Python."""
    return [
        "mmdebstrap",
        "--variant=minbase",
        f"--include={','.join(PACKAGES)}",
        *(f"--dpkgopt={option}" for option in DPKG_OPTIONS),
        SUITE,
        str(output),
    ]


def recipe_key() -> str:
    """sha256 of the recipe: suite, packages, dpkg options and image changes."""
    recipe = {
        "command": mmdebstrap_command(Path("rootfs.tar")),
        "changes": list(IMAGE_CHANGES),
    }
    return hashlib.sha256(json.dumps(recipe, sort_keys=True).encode()).hexdigest()


def import_args(tarball: Path) -> list[str]:
    """`podman import` arguments that make the tarball the base image, labelled with the
    recipe's key."""
    changes = [*IMAGE_CHANGES, f"LABEL {INPUTS_LABEL}={recipe_key()}"]
    return ["import", *(f"--change={change}" for change in changes), str(tarball), DEBIAN_BASE]
