"""The CompressionJob workload: pruning, quantization, distillation, with a quality gate.

Modules, one job each: source (open a ModelSource), evaluate (feed data, measure),
fit (the training loop and its losses), qmodules and qconv (int8 layers with
plain-tensor state), batchnorm (folding into convs), quantize, search (accuracy-aware
quantization), attention (kernel choice), prune, distill, job (the run and its report).
Importing this package registers the artifact transforms these methods record
(`quantize`, `cast`, `fold_batchnorm`, `attention`, `prune_units`, `prune_heads`,
`drop_layers`), so `load_artifact` can replay them.
"""

from __future__ import annotations

from torchyard.workloads.compress import (  # noqa: F401  (transforms)
    attention,
    batchnorm,
    distill,
    prune,
    quantize,
)
from torchyard.workloads.compress.job import main

__all__ = ["main"]
