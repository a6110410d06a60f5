"""Fixtures of the workload tests."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.s3server import S3Server, s3_environment, s3_server
from tests.workload.training import digits_file, initial_model


@pytest.fixture(autouse=True)
def _no_default_grpc_port(monkeypatch: pytest.MonkeyPatch) -> None:
    """Serving processes that a test starts from the environment (main(), a `torchyard
    workload serve` child) leave gRPC off unless the test gives it a port: the default
    8081 is one port per machine, and test processes run side by side."""
    if "TORCHYARD_GRPC_PORT" not in os.environ:
        monkeypatch.setenv("TORCHYARD_GRPC_PORT", "0")


@pytest.fixture(scope="session")
def s3_server_session() -> Iterator[S3Server]:
    """One S3-compatible server (moto_server on loopback) for the session."""
    with s3_server() as server:
        yield server


@pytest.fixture(scope="module")
def s3_env(s3_server_session: S3Server, tmp_path_factory: pytest.TempPathFactory):
    """This process configured for the server, as a pod with spec.storage.s3 is."""
    with s3_environment(s3_server_session, tmp_path_factory.mktemp("artifact-cache")) as server:
        yield server


@pytest.fixture(scope="module")
def uris(workdir: Path) -> tuple[str, str]:
    """The initial model and the training data, shared by a training module's runs (the
    module says where: its `workdir`)."""
    return initial_model(workdir), digits_file(workdir)
