"""The model router's Deployment: one per model, `<model>-router`, in front of every
version's serving pods (torchyard.router). Pure.

It runs `torchyard workload router` from the worker image (already on the nodes that
serve, and the one with grpcio for the gRPC face), as the same restricted pod as a
serving one. Only the SHA-256 of its routes API's bearer token is in its environment: the
token itself lives in the operator's memory, so reading the Deployment (the `view` role
can) gives nobody the means to push routes.
"""

from __future__ import annotations

from typing import Any

from torchyard.api.base import ResourceRequirements
from torchyard.resources.pods import MANAGED_BY, worker_pod
from torchyard.resources.serving import GRPC_PORT, MODEL_LABEL, PORT, ROUTER_LABEL
from torchyard.router.app import (
    BACKEND_GRPC_PORT_ENV,
    DRAIN_DELAY_ENV,
    GRPC_PORT_ENV,
    MODEL_ENV,
    PORT_ENV,
    TOKEN_SHA256_ENV,
)
from torchyard.router.proxy import READY_PATH

RESOURCES = ResourceRequirements(
    requests={"cpu": "100m", "memory": "96Mi"}, limits={"memory": "512Mi"}
)
"""The router holds at most a few request bodies at once (8 MiB each at most)."""


def router_name(model: str) -> str:
    return f"{model}-router"


def router_deployment(model: str, namespace: str, token_sha256: str) -> dict[str, Any]:
    labels = {MANAGED_BY: "torchyard", MODEL_LABEL: model, ROUTER_LABEL: "true"}
    name = router_name(model)
    pod = worker_pod(
        name=name,
        namespace=namespace,
        labels=labels,
        args=["workload", "router"],
        env={
            MODEL_ENV: model,
            TOKEN_SHA256_ENV: token_sha256,
            PORT_ENV: str(PORT),
            GRPC_PORT_ENV: str(GRPC_PORT),
            BACKEND_GRPC_PORT_ENV: str(GRPC_PORT),
            DRAIN_DELAY_ENV: "3",
        },
        resources=RESOURCES,
        restart_policy="Always",
    )
    container = pod["spec"]["containers"][0]
    container["ports"] = [
        {"name": "http", "containerPort": PORT},
        {"name": "grpc", "containerPort": GRPC_PORT},
    ]
    # Ready once it holds a table with a version to send to: only then does the model's
    # Service select it (until then, and whenever no router is ready, the Service
    # selects the serving pods themselves).
    # Tolerant of a loaded node: a router that misses one probe would take the model's
    # Service endpoints away (clients refused) until the operator points it elsewhere.
    container["readinessProbe"] = {
        "httpGet": {"path": READY_PATH, "port": "http"},
        "periodSeconds": 2,
        "timeoutSeconds": 3,
        "failureThreshold": 3,
    }
    container["livenessProbe"] = {
        "tcpSocket": {"port": "http"},
        "periodSeconds": 10,
        "failureThreshold": 3,
    }
    pod["spec"]["terminationGracePeriodSeconds"] = 30
    selector = {MODEL_LABEL: model, ROUTER_LABEL: "true"}
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name, "namespace": namespace, "labels": labels},
        "spec": {
            "replicas": 1,
            "selector": {"matchLabels": selector},
            "strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": 0}},
            "template": {"metadata": {"labels": labels}, "spec": pod["spec"]},
        },
    }
