"""The one place that names torchyard's container images.

manifests/base/deployment.yaml, manifests/examples/ and the Dockerfiles' build comments
name the same images; tests/unit/test_images.py keeps them in step with this module.
"""

from __future__ import annotations

import os
from collections.abc import Mapping

from torchyard import __version__

REGISTRY = "ghcr.io/torchyard"
OPERATOR_IMAGE = f"{REGISTRY}/torchyard-operator:v{__version__}"
WORKER_IMAGE = f"{REGISTRY}/torchyard-worker:v{__version__}"

WORKER_IMAGE_ENV = "TORCHYARD_WORKER_IMAGE"
"""Environment variable of the operator naming the image of the pods it creates (a
mirror, a digest, the -cuda variant); unset or empty means WORKER_IMAGE."""


def worker_image(environ: Mapping[str, str] | None = None) -> str:
    """The image the operator runs workloads in: $TORCHYARD_WORKER_IMAGE or WORKER_IMAGE."""
    value = (os.environ if environ is None else environ).get(WORKER_IMAGE_ENV, "").strip()
    return value or WORKER_IMAGE
