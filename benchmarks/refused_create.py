"""API requests per minute the operator makes against creates the API server refuses.

Starts the local control plane, runs the operator under its own RBAC, and applies one
object of each kind into its own namespace with a ResourceQuota that refuses its child
for good (pods for a TrainingJob, batch Jobs for a CompressionJob, Deployments for a
ModelVersion). Reads the API server's own counter (`apiserver_request_total`) for the
children's and the kinds' resources, and prints the requests of each minute, by
resource, verb and code. Nothing else runs on the plane, so what is counted is the
operator's (and the controller-manager's, which makes none for these namespaces).

    .venv/bin/python benchmarks/refused_create.py [--minutes 3]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import yaml

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.cluster.torchyard import (
    OPERATOR_ACCOUNT,
    OPERATOR_NAMESPACE,
    api_requests,
    install,
    running_operator,
)
from tests.objects import sample

from torchyard.local.controlplane import ControlPlane

COUNTED = {
    "pods",
    "services",
    "jobs",
    "deployments",
    "trainingjobs",
    "compressionjobs",
    "modelversions",
    "events",
}
QUOTAS = {
    "TrainingJob": {"pods": "0"},
    "CompressionJob": {"count/jobs.batch": "0"},
    "ModelVersion": {"count/deployments.apps": "0"},
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=int, default=3)
    args = parser.parse_args()
    with ControlPlane(controllers=True) as cp, tempfile.TemporaryDirectory() as scratch:
        install(cp)
        kubeconfig = cp.service_account_kubeconfig(OPERATOR_NAMESPACE, OPERATOR_ACCOUNT)
        with running_operator(cp, kubeconfig, Path(scratch) / "operator.log"):
            time.sleep(5)  # the operator's startup lists
            for kind, hard in QUOTAS.items():
                namespace = f"refused-{kind.lower()}"
                cp.kubectl("create", "namespace", namespace)
                quota = {
                    "apiVersion": "v1",
                    "kind": "ResourceQuota",
                    "metadata": {"name": "none", "namespace": namespace},
                    "spec": {"hard": hard},
                }
                cp.kubectl("apply", "-f", "-", input=yaml.safe_dump(quota))
            time.sleep(3)  # the quota controller computes usage before admission uses it
            before = api_requests(cp, COUNTED)
            for kind in QUOTAS:
                obj = sample(kind)
                cp.kubectl(
                    "apply",
                    "-n",
                    f"refused-{kind.lower()}",
                    "-f",
                    "-",
                    input=yaml.safe_dump(obj),
                )
            for minute in range(1, args.minutes + 1):
                time.sleep(60)
                now = api_requests(cp, COUNTED)
                delta = now - before
                before = now
                total = sum(delta.values())
                print(f"minute {minute}: {total} requests")
                for (resource, verb, code), count in sorted(delta.items()):
                    print(f"  {verb:6} {resource:28} {code}  {count}")
            log = (Path(scratch) / "operator.log").read_text()
            print(f"operator log: {log.count('Traceback')} tracebacks, {len(log)} bytes")


if __name__ == "__main__":
    main()
