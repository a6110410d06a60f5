"""How a serving process is configured: the ModelVersion spec and a few knobs, from the
environment the operator sets (flags override them in a developer's shell)."""

from __future__ import annotations

import argparse
import json
import math
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from torchyard.api.modelversion import ModelVersionSpec
from torchyard.validation import InvalidSpec, parse_spec
from torchyard.workloads.report import PermanentError, read_spec
from torchyard.workloads.serve.faults import FAULT_AFTER_ENV, FAULT_RATE_ENV
from torchyard.workloads.serve.limits import Limits, limits_from_env

PORT_ENV = "TORCHYARD_PORT"
GRPC_PORT_ENV = "TORCHYARD_GRPC_PORT"
HOST_ENV = "TORCHYARD_HOST"
DRAIN_DELAY_ENV = "TORCHYARD_DRAIN_DELAY_SECONDS"
DEFAULT_PORT = 8080
# KServe's predictors listen for the protocol's gRPC binding here.
DEFAULT_GRPC_PORT = 8081
DEFAULT_HOST = "0.0.0.0"
# Below Kubernetes' default 30 s grace period, so the pod exits on its own before SIGKILL.
DRAIN_TIMEOUT_S = 25.0


@dataclass(frozen=True)
class ServeConfig:
    spec: ModelVersionSpec
    host: str = DEFAULT_HOST
    port: int = DEFAULT_PORT
    grpc_port: int = DEFAULT_GRPC_PORT
    """The protocol's gRPC binding (torchyard.workloads.serve.grpc); 0: no gRPC."""
    fault_rate: float = 0.0
    """Test hook (faults.py): the fraction of inference requests answered 500."""
    fault_after_s: float = 0.0
    """Test hook (faults.py): the faults start this long after the server started."""
    drain_delay_s: float = 0.0
    """After SIGTERM, how long to keep answering while reporting not ready: Kubernetes
    removes a terminating pod from the Service's endpoints asynchronously, and requests
    sent in that gap would otherwise be refused (the preStop-sleep pattern, built in)."""
    drain_timeout_s: float = DRAIN_TIMEOUT_S
    """How long in-flight requests may take to finish once the server stops listening."""
    limits: Limits = field(default_factory=Limits)
    """What a request may be and how many may wait (TORCHYARD_MAX_*, limits.ENV)."""


def load_config(argv: Sequence[str] = ()) -> ServeConfig:
    """TORCHYARD_SPEC (ModelVersionSpec JSON), TORCHYARD_PORT, TORCHYARD_GRPC_PORT (0: no
    gRPC), TORCHYARD_HOST, TORCHYARD_DRAIN_DELAY_SECONDS, TORCHYARD_FAULT_RATE,
    TORCHYARD_FAULT_AFTER_SECONDS and the limits
    (limits.ENV); raises PermanentError("InvalidSpec") naming what is wrong."""
    parser = argparse.ArgumentParser(prog="torchyard workload serve")
    parser.add_argument("--host", default=os.environ.get(HOST_ENV, DEFAULT_HOST))
    parser.add_argument("--port", default=os.environ.get(PORT_ENV, str(DEFAULT_PORT)))
    parser.add_argument(
        "--grpc-port", default=os.environ.get(GRPC_PORT_ENV, str(DEFAULT_GRPC_PORT))
    )
    args = parser.parse_args(list(argv))
    try:
        spec = parse_spec(ModelVersionSpec, read_spec())
    except (InvalidSpec, json.JSONDecodeError) as error:
        raise PermanentError("InvalidSpec", f"TORCHYARD_SPEC: {error}") from None
    try:
        limits = limits_from_env()
    except ValueError as error:
        raise PermanentError("InvalidSpec", str(error)) from None
    return ServeConfig(
        spec=spec,
        host=args.host,
        port=int(_bounded(PORT_ENV, args.port, 0, 65535, integer=True)),
        grpc_port=int(_bounded(GRPC_PORT_ENV, args.grpc_port, 0, 65535, integer=True)),
        fault_rate=_bounded(FAULT_RATE_ENV, os.environ.get(FAULT_RATE_ENV, "0"), 0, 1),
        fault_after_s=_bounded(FAULT_AFTER_ENV, os.environ.get(FAULT_AFTER_ENV, "0"), 0, 3600),
        drain_delay_s=_bounded(DRAIN_DELAY_ENV, os.environ.get(DRAIN_DELAY_ENV, "0"), 0, 300),
        limits=limits,
    )


def _bounded(name: str, raw: str, low: float, high: float, *, integer: bool = False) -> float:
    try:
        value = float(int(raw) if integer else raw)
    except ValueError:
        value = math.nan
    if not low <= value <= high:  # NaN fails too
        raise PermanentError("InvalidSpec", f"{name}={raw!r}: expected a number in [{low}, {high}]")
    return value


def cpu_limit(cgroup: Path = Path("/sys/fs/cgroup")) -> int | None:
    """CPUs the container may use (its CFS quota, cgroup v2 or v1), None when unlimited.

    torch sizes its thread pool by the host's cores, not the pod's CPU limit; on a big
    node a 1-CPU pod would run dozens of threads and be throttled.
    """
    try:
        quota, period = (cgroup / "cpu.max").read_text().split()
        return None if quota == "max" else max(1, math.ceil(int(quota) / int(period)))
    except (OSError, ValueError):
        pass
    try:
        quota = (cgroup / "cpu" / "cpu.cfs_quota_us").read_text().strip()
        period = (cgroup / "cpu" / "cpu.cfs_period_us").read_text().strip()
        return None if int(quota) <= 0 else max(1, math.ceil(int(quota) / int(period)))
    except (OSError, ValueError):
        return None
