"""The one place that names torchyard's container images."""

from __future__ import annotations

from torchyard import __version__

REGISTRY = "ghcr.io/torchyard"
OPERATOR_IMAGE = f"{REGISTRY}/torchyard-operator:v{__version__}"
WORKER_IMAGE = f"{REGISTRY}/torchyard-worker:v{__version__}"
