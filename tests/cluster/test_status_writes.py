"""Status writes against the real API server when the object is gone: an object deleted
(with its namespace, say) while it was reconciled ends the reconcile quietly, with no
error and no traceback in the operator's log."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import pytest
import yaml

from tests.cluster.torchyard import get, install
from tests.objects import sample
from torchyard.api.kinds import COMPRESSION_JOB
from torchyard.controllers import client, reconciler


@pytest.fixture
def operator_client(control_plane, monkeypatch) -> Iterator[None]:
    """The operator's API client, on the admin kubeconfig, fresh for each test."""
    install(control_plane)
    monkeypatch.setenv("KUBECONFIG", str(control_plane.kubeconfig))
    monkeypatch.setattr(client, "_client", None)
    yield
    monkeypatch.setattr(client, "_client", None)


def _stored_then_deleted(control_plane, namespace: str) -> dict:
    job = sample("CompressionJob")
    control_plane.kubectl("apply", "-n", namespace, "-f", "-", input=yaml.safe_dump(job))
    stored = get(control_plane, "cjob", job["metadata"]["name"], "-n", namespace)
    control_plane.kubectl("delete", "cjob", job["metadata"]["name"], "-n", namespace)
    return stored


def test_a_status_write_to_a_deleted_object_says_it_is_gone(
    control_plane, namespace, operator_client
):
    stored = _stored_then_deleted(control_plane, namespace)
    name, version = stored["metadata"]["name"], stored["metadata"]["resourceVersion"]

    async def write_both() -> list[dict | None]:
        # With the resourceVersion the controller read, and without one.
        return [
            await client.patch_status(
                COMPRESSION_JOB, namespace, name, {"phase": "Running"}, resource_version
            )
            for resource_version in (version, None)
        ]

    assert asyncio.run(write_both()) == [None, None]


def test_finishing_the_reconcile_of_a_deleted_object_ends_quietly(
    control_plane, namespace, operator_client
):
    stored = _stored_then_deleted(control_plane, namespace)
    admitted = reconciler.Admitted(stored, {}, {"phase": "Pending"}, [], True)
    # No Stale (which would reconcile again), no ApiError (a traceback in the log).
    assert asyncio.run(reconciler.finish(COMPRESSION_JOB, admitted)) is None
