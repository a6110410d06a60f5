"""The CompressionJob workload: pruning, quantization, distillation, with a quality gate.

Modules, one job each: source (open a ModelSource), evaluate (feed data, measure),
fit (the training loop and its losses), qmodules (int8 layers with plain-tensor state),
quantize, prune, distill, job (the run and its report). Importing this package
registers the artifact transforms these methods record (`quantize`, `cast`,
`prune_units`, `prune_heads`, `drop_layers`), so `load_artifact` can replay them.
"""

from __future__ import annotations

from torchyard.workloads.compress import distill, prune, quantize  # noqa: F401  (transforms)
from torchyard.workloads.compress.job import main

__all__ = ["main"]
