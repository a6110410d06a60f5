#!/usr/bin/env bash
# Builds what benchmarks/scale.py runs, from the Go module proxy, into the cache:
# kwok (fake nodes) and the Kubeflow Training Operator. About 5 minutes on 2 cores.
set -euo pipefail
bin="${HOME}/.cache/torchyard/scale/bin"
mkdir -p "$bin"
GOBIN="$bin" go install sigs.k8s.io/kwok/cmd/kwok@v0.7.0
GOBIN="$bin" go install github.com/kubeflow/training-operator/cmd/training-operator.v1@v1.8.1
