#!/usr/bin/env bash
# torchyard end to end on a kind cluster, for CI (.github/workflows/kind-e2e.yaml) or by
# hand: builds both images, loads them into a new kind cluster, installs manifests/base,
# runs manifests/samples as the README does, then runs tests/kind/: a TrainingJob
# on two pods whose artifact registers version 1 of a model, a CompressionJob that prunes
# it behind a quality gate, and version 2 rolled out to 50 % under client traffic,
# analysed and promoted. See docs/kind.md.
#
# Needs docker (or podman), kind, kubectl and python3 (to read the image names).
#   KIND_CLUSTER_NAME  the cluster to create (torchyard-e2e); it must not exist yet
#   KIND_NODE_IMAGE    kind's node image (kind's default); `local`: the one
#                      `scripts/images kind-node` makes here without a registry, with
#                      images/kind-node/cluster.yaml as the cluster's config
#   KIND_CONFIG        a kind cluster config file (none by default)
#   KIND_EXPERIMENTAL_PROVIDER=podman  kind's podman provider: the images are built and
#                      loaded with scripts/images, podman gets runc and the caller's
#                      rlimits through $CONTAINERS_CONF (see docs/kind.md)
#   KEEP_CLUSTER=1     keep the cluster at the end (it is deleted by default)
#   SKIP_BUILD=1       use the images already in docker instead of building them
#   TIMEOUT            how long each wait may take (300s)
set -euo pipefail
cd "$(dirname "$0")/.."

cluster=${KIND_CLUSTER_NAME:-torchyard-e2e}
timeout=${TIMEOUT:-300s}
namespace=torchyard-e2e # tests/kind/*.yaml
created=0

step() { printf '\n== %s\n' "$*"; }
k() { kubectl --context "kind-$cluster" "$@"; }
kn() { k --namespace "$namespace" "$@"; }

engine=docker
if [ "${KIND_EXPERIMENTAL_PROVIDER:-}" = podman ]; then
  engine=podman
fi
for tool in "$engine" kind kubectl python3; do
  command -v "$tool" >/dev/null || { echo "kind-e2e: $tool is not installed" >&2; exit 1; }
done

if [ "$engine" = podman ]; then
  # kind runs podman itself, with podman's defaults: crun, which refuses a hybrid cgroup
  # layout, and rlimits above what a root without CAP_SYS_RESOURCE may set (runc then
  # fails with "error setting rlimits"). A config of our own fixes both for kind's calls.
  # (podman starts conmon with at most 32768 processes: no container may have more.)
  if [ -z "${CONTAINERS_CONF:-}" ]; then
    capped() { if [ "$1" = unlimited ] || [ "$1" -gt "$2" ]; then echo "$2"; else echo "$1"; fi; }
    CONTAINERS_CONF=$(mktemp --suffix=.conf)
    cat >"$CONTAINERS_CONF" <<CONF
[containers]
default_ulimits = [
  "nofile=$(capped "$(ulimit -Sn)" 1048576):$(capped "$(ulimit -Hn)" 1048576)",
  "nproc=$(capped "$(ulimit -Su)" 32768):$(capped "$(ulimit -Hu)" 32768)",
]
[engine]
runtime = "runc"
CONF
    export CONTAINERS_CONF
  fi
  # kind mounts /lib/modules into its nodes; a VM without kernel modules has none.
  [ -d /lib/modules ] || mkdir -p /lib/modules || {
    echo "kind-e2e: /lib/modules is missing (kind mounts it): create it as root" >&2; exit 1; }
fi

# The image names live in one place: operator/torchyard/images.py.
images=$(PYTHONPATH=operator python3 -c \
  'from torchyard.images import OPERATOR_IMAGE, WORKER_IMAGE; print(OPERATOR_IMAGE, WORKER_IMAGE)')
operator_image=${images% *}
worker_image=${images#* }

cleanup() {
  local rc=$?
  if [ "$rc" -ne 0 ] && [ "$created" = 1 ] && kubectl config get-contexts "kind-$cluster" >/dev/null 2>&1; then
    step "FAILED (exit $rc): what the cluster says"
    k get torchyard -A -o wide || true
    k get pods,jobs,deployments,services,pvc -n "$namespace" -o wide || true
    k get pods -n torchyard-system -o wide || true
    k get events -A --sort-by=.metadata.creationTimestamp || true
    kn describe modelversions,trainingjobs,compressionjobs || true
    k logs -n torchyard-system deployment/torchyard-operator --tail=200 || true
    kn logs --selector=app.kubernetes.io/managed-by=torchyard --all-containers --prefix \
      --tail=40 --max-log-requests=10 || true
  fi
  if [ "$created" = 1 ]; then
    if [ "${KEEP_CLUSTER:-0}" = 1 ]; then
      echo "kept the cluster: kubectl --context kind-$cluster get torchyard -A;" \
        "delete it with: kind delete cluster --name $cluster"
    else
      kind delete cluster --name "$cluster" || true
    fi
  fi
  exit "$rc"
}
trap cleanup EXIT

if kind get clusters 2>/dev/null | grep -qx "$cluster"; then
  echo "kind-e2e: a kind cluster named $cluster exists already; delete it or set" \
    "KIND_CLUSTER_NAME" >&2
  exit 1
fi

if [ "${SKIP_BUILD:-0}" != 1 ]; then
  step "build $operator_image and $worker_image"
  if [ "$engine" = podman ]; then
    scripts/images build
  else
    docker build -f images/operator/Dockerfile -t "$operator_image" .
    docker build -f images/worker/Dockerfile -t "$worker_image" .
  fi
fi

node_image=${KIND_NODE_IMAGE:-}
config=${KIND_CONFIG:-}
if [ "$node_image" = local ]; then
  step "the kind node image, made here from Debian packages and the pinned modules"
  node_image=$(scripts/images kind-node | tail -n 1)
  config=${config:-images/kind-node/cluster.yaml}
fi

step "create kind cluster $cluster"
created=1
create=(kind create cluster --name "$cluster" --wait 180s)
if [ -n "$node_image" ]; then
  create+=(--image "$node_image")
fi
if [ -n "$config" ]; then
  create+=(--config "$config")
fi
"${create[@]}"
if [ "$engine" = podman ]; then
  scripts/images load-kind --name "$cluster"
else
  kind load docker-image --name "$cluster" "$operator_image" "$worker_image"
fi

step "install torchyard (manifests/base) and wait for the operator"
k apply --server-side -k manifests/base
k wait --for=condition=Established --timeout=60s \
  crd/compressionjobs.torchyard.io crd/trainingjobs.torchyard.io crd/modelversions.torchyard.io
k rollout status -n torchyard-system deployment/torchyard-operator --timeout="$timeout"

# The samples are self-contained: run them exactly as the README's "Install on a
# cluster" says (tests/e2e/test_samples.py runs the same commands on the local cluster).
step "manifests/samples as the README runs them: train -> prune -> roll out; MiniLM int8"
k apply --server-side -k manifests/samples
k wait -n torchyard-demo --for=condition=Succeeded tjob/digits-train --timeout="$timeout"
k wait -n torchyard-demo --for=condition=Succeeded cjob/digits-pruned cjob/minilm-int8 \
  --timeout="$timeout"
k wait -n torchyard-demo --for=condition=Ready mv/digits-v2 mv/minilm-v1 --timeout="$timeout"
k delete namespace torchyard-demo --wait --timeout=120s

step "namespace $namespace, claim 'models', an untrained model on it"
k apply --server-side -f tests/kind/setup.yaml
kn wait --for=condition=Complete job/seed-model --timeout="$timeout"

step "TrainingJob on two pods; registerAs creates ModelVersion digits-v1, which serves"
k apply --server-side -f tests/kind/trainingjob.yaml
kn wait --for=condition=Succeeded trainingjob/digits-train --timeout="$timeout"
kn wait --for=condition=Ready modelversion/digits-v1 --timeout="$timeout"

step "CompressionJob prunes the trained model behind a quality gate"
k apply --server-side -f tests/kind/compressionjob.yaml
kn wait --for=condition=Succeeded compressionjob/digits-prune --timeout="$timeout"
digest=$(kn get compressionjob/digits-prune -o jsonpath='{.status.result.artifact.digest}')
[ -n "$digest" ] || { echo "kind-e2e: digits-prune reports no artifact digest" >&2; exit 1; }

step "ModelVersion digits-v2 ($digest): 50 % under client traffic, analysed, promoted"
k apply --server-side -f tests/kind/client.yaml
sed "s/sha256:0\{64\}/$digest/" tests/kind/modelversion-v2.yaml | k apply --server-side -f -
# Paused (the open-ended pause step) only once an analysis at 50 % has passed.
kn wait --for=jsonpath='{.status.phase}'=Paused modelversion/digits-v2 --timeout="$timeout"
kn patch modelversion/digits-v2 --type=merge --patch='{"spec":{"promote":true}}'
kn wait --for=condition=Ready modelversion/digits-v2 --timeout="$timeout"
kn wait --for=jsonpath='{.status.phase}'=Superseded modelversion/digits-v1 --timeout="$timeout"
kn delete job/client --wait=false

step "passed"
k get torchyard -A -o wide
