"""Fixtures for tests against the local control plane (a real API server on loopback).

The first run builds the control plane from the pinned Go modules (10-20 minutes);
later runs reuse the cached binaries and start in seconds.
"""

import re
import secrets
import time
from collections.abc import Iterator

import pytest

from tests.cluster.torchyard import Session
from torchyard.local.controlplane import ControlPlane


@pytest.fixture(scope="session")
def control_plane() -> Iterator[ControlPlane]:
    """etcd, kube-apiserver, kube-controller-manager and kube-scheduler, with RBAC."""
    with ControlPlane(controllers=True) as cp:
        yield cp


@pytest.fixture
def namespace(control_plane: ControlPlane, request: pytest.FixtureRequest) -> Iterator[str]:
    """A fresh namespace named after the test, deleted (without waiting) afterwards."""
    slug = re.sub(r"[^a-z0-9]+", "-", request.node.name.lower()).strip("-")[:40].strip("-")
    name = f"{slug}-{secrets.token_hex(3)}"
    control_plane.kubectl("create", "namespace", name)
    # Pods are refused until the controllers have made the namespace's `default`
    # ServiceAccount; waiting here spares every test that race.
    deadline = time.monotonic() + 30
    get_sa = ("get", "serviceaccount", "default", "-n", name)
    while control_plane.kubectl(*get_sa, check=False).returncode:
        if time.monotonic() > deadline:
            raise TimeoutError(f"no default ServiceAccount in namespace {name} after 30s")
        time.sleep(0.1)
    yield name
    control_plane.kubectl("delete", "namespace", name, "--wait=false", check=False)


@pytest.fixture
def session(control_plane: ControlPlane, namespace: str) -> Session:
    """The test's namespace, as tests.cluster.torchyard.Session drives it."""
    return Session(control_plane, namespace)
