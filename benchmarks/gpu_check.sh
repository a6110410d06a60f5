#!/usr/bin/env bash
# One short check on a machine with NVIDIA GPUs (about 6 minutes): the training workload
# in mode data over NCCL (backend auto picks it when a GPU is visible), then gradient, and
# model when there are 2 GPUs (NCCL allows one rank per GPU, and model needs 2 ranks).
# Prints the benchmark table with samples/s; the backend column must say nccl. Then:
# generator states restored from a checkpoint loaded onto the GPU; a job killed at a
# random step and resumed from its checkpoint on the GPU publishes the uninterrupted
# job's artifact; and the same GPU-sized data run on the CPU, for the speedup.
#
#     benchmarks/gpu_check.sh            # from the repository root or anywhere
#
# Needs python with torch (CUDA build), safetensors, pydantic and pyyaml: .venv/bin/python
# if there is one, else $PYTHON, else python3. No network.
set -euo pipefail
cd "$(dirname "$0")/.."
if [[ -x .venv/bin/python ]]; then PY=${PYTHON:-.venv/bin/python}; else PY=${PYTHON:-python3}; fi
export PYTHONPATH="$PWD/operator${PYTHONPATH:+:$PYTHONPATH}"

nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader || true
"$PY" - <<'PY'
import sys
missing = []
for module in ("torch", "safetensors", "pydantic", "yaml"):
    try:
        __import__(module)
    except ImportError:
        missing.append(module)
if missing:
    sys.exit(f"missing Python modules: {', '.join(missing)} (pip install -e '.[worker]')")
import torch
import torch.distributed as dist
print(f"torch {torch.__version__}, CUDA {torch.version.cuda}, "
      f"{torch.cuda.device_count()} GPU(s), NCCL available: {dist.is_nccl_available()}")
if not torch.cuda.is_available() or not dist.is_nccl_available():
    sys.exit("no CUDA device or no NCCL: nothing to check here")
PY

GPUS=$("$PY" -c "import torch; print(torch.cuda.device_count())")
RANKS=(1)
MODES=(data gradient)
if (( GPUS >= 2 )); then RANKS=(1 2); MODES=(data gradient model); fi

# GPU-sized: 64k synthetic samples of 1024 features, MLP 1024-4096-4096-10 (~21M
# parameters), global batch 4096, 300 steps. One run per row keeps it under 5 minutes.
timeout 270 "$PY" benchmarks/training.py \
    --samples 65536 --features 1024 --hidden 4096 4096 --batch 4096 --steps 300 \
    --ranks "${RANKS[@]}" --modes "${MODES[@]}" --repeat 1

# A checkpoint loaded onto the GPU (map_location) carries the generator states there;
# torch's setters take CPU tensors: restoring must work and draw the same numbers.
"$PY" - <<'PY'
import tempfile, torch
from torchyard.workloads.train.modes.base import restore_rng, rng_state
device = torch.device("cuda", 0)
with tempfile.TemporaryDirectory() as tmp:
    torch.manual_seed(7)
    torch.save({"rng": rng_state()}, f"{tmp}/rank.pt")
    expected = torch.rand(5), torch.rand(5, device=device)
    torch.manual_seed(8)
    restore_rng(torch.load(f"{tmp}/rank.pt", map_location=device, weights_only=True)["rng"])
    same = torch.equal(torch.rand(5), expected[0]) and torch.equal(torch.rand(5, device=device), expected[1])
print(f"generators restored from a checkpoint on {device}: {'same draws' if same else 'DIFFERENT draws'}")
raise SystemExit(0 if same else 1)
PY

# Kill a random rank at a random step, resume from the checkpoint, compare digests:
# one pod with a process per GPU (NCCL), as a GPU node runs it.
RESUME_MODES=(data gradient)
if (( GPUS >= 2 )); then RESUME_MODES=(data gradient model); fi
timeout 150 "$PY" benchmarks/training.py --resume-exact 2 --resume-layout 1 "$(( GPUS >= 2 ? 2 : 1 ))" \
    --steps 40 --checkpoint-every 10 --modes "${RESUME_MODES[@]}"

# The same GPU-sized data run on the CPU (gloo), 20 steps: samples/s against the GPU's.
CUDA_VISIBLE_DEVICES="" timeout 120 "$PY" benchmarks/training.py \
    --samples 65536 --features 1024 --hidden 4096 4096 --batch 4096 --steps 20 \
    --ranks 1 --modes data --repeat 1 --threads "$(nproc)"
