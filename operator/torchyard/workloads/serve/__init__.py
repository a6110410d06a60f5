"""The serving workload: one ModelVersion behind the Open Inference Protocol v2.

    torchyard workload serve [--host H] [--port P] [--grpc-port G]

reads TORCHYARD_SPEC (the ModelVersion's spec as JSON), TORCHYARD_PORT (8080, HTTP),
TORCHYARD_GRPC_PORT (8081, gRPC; 0: none) and TORCHYARD_HOST (0.0.0.0);
TORCHYARD_FAULT_RATE is a test hook (faults.py).

Modules, one job each: config (environment), limits (what a request may be), body
(reading one under the limits), protocol (OIP v2 types, JSON and binary), runner (the
model), batching (dynamic batching), metrics (Prometheus), faults (test hook), server
(HTTP routes and the model's life), grpc (the gRPC binding over the same server), app
(the process: signals, drain, exit code).
"""

from __future__ import annotations

from collections.abc import Sequence


def main(argv: Sequence[str] | None = None) -> int:
    # Imported here: `torchyard --help` and the operator need not import torch.
    from torchyard.workloads.serve.app import main as run

    return run(argv)
