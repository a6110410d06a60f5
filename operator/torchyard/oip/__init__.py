"""The Open Inference Protocol's wire forms that need no torch: the binary tensor layout
that HTTP's binary data extension and gRPC's raw contents share, and the gRPC binding's
messages and service (open_inference.proto and its generated stubs).

Shared by the serving workload and anything else that reads or writes tensors on the
wire without a model (a router, a test client)."""

VERSION_HEADER = "X-Model-Version"
"""The header every answer of a serving pod carries: the version that gave it (the
model router counts by it, clients tell versions apart by it)."""

ANALYSIS_REQUEST_ID = "torchyard-quality-analysis"
"""The id of the operator's reference request (rollout quality analysis): the serving
pods leave it out of their metrics, so that it never counts in an analysis window."""
