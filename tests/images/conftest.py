"""Fixtures of the image tests: both images as `scripts/images build` leaves them (the
README's command), which builds only what changed since the last run and otherwise
returns in seconds. podman needs root, as CI and the dev container provide; the first
build downloads torch and CUDA from PyPI (several GB, 10-20 minutes)."""

from __future__ import annotations

import subprocess

import pytest

from tests.objects import REPO

BUILD_TIMEOUT = 3600


def images_command(
    *args: str, timeout: float = BUILD_TIMEOUT, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """scripts/images with the given arguments; fails the test with its output if it fails."""
    done = subprocess.run(
        [str(REPO / "scripts" / "images"), *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env=env,
    )
    assert done.returncode == 0, (
        f"scripts/images {' '.join(args)}:\n{done.stdout[-4000:]}{done.stderr[-4000:]}"
    )
    return done


@pytest.fixture(scope="session")
def built() -> str:
    """Both images, built or found up to date; scripts/images build's output."""
    return images_command("build").stdout
