"""What serves a ModelVersion: a Deployment per version, one Service per model.

The Service selects the model's router pods (resources.routing), which split requests
between the versions by exact weights, while one is ready; otherwise every live
version's serving pods, so that a version's share is its share of the ready pods (replica
ratios, as Argo Rollouts does without traffic routing).
"""

from __future__ import annotations

from typing import Any

from torchyard.api.base import GROUP
from torchyard.api.modelversion import ModelVersionSpec, RolloutSpec
from torchyard.resources.pods import MANAGED_BY, owner_labels, worker_pod, workload_spec
from torchyard.resources.storage_access import storage_access
from torchyard.resources.volumes import claim_volumes, claims_in
from torchyard.storage import DEFAULT_PVC_ROOT, PVC_ROOT_ENV
from torchyard.workloads.report import SPEC_ENV

KIND = "ModelVersion"
PORT = 8080
GRPC_PORT = 8081
"""The Open Inference Protocol's gRPC binding, on the container and on the Service
(KServe's port for it: clients written for KServe keep theirs)."""
MODEL_LABEL = f"{GROUP}/model"
SERVING_LABEL = f"{GROUP}/serving"
ROUTER_LABEL = f"{GROUP}/router"


def deployment_name(version_object: str) -> str:
    return f"{version_object}-serving"


def service_name(model: str) -> str:
    return f"{model}-model"


def model_url(model: str, namespace: str) -> str:
    return f"http://{service_name(model)}.{namespace}.svc/v2/models/{model}"


def serving_deployment(
    name: str, namespace: str, spec: ModelVersionSpec, replicas: int
) -> dict[str, Any]:
    labels = {**owner_labels(KIND, name), MODEL_LABEL: spec.model, SERVING_LABEL: "true"}
    # Only what the server needs: rollout controls and replica counts change often and
    # must not change the pod template (that would restart every serving pod).
    served = spec.model_copy(
        update={
            "paused": False,
            "promote": False,
            "rollback": False,
            "rollout": RolloutSpec(),
            "serving": spec.serving.model_copy(update={"replicas": 1}),
        }
    )
    volumes, mounts = claim_volumes(claims_in([spec.artifact.uri]))
    pod = worker_pod(
        name=deployment_name(name),
        namespace=namespace,
        labels=labels,
        args=["workload", "serve"],
        env={
            # Keep answering briefly after SIGTERM while the endpoint is withdrawn.
            "TORCHYARD_DRAIN_DELAY_SECONDS": "3",
            **{var.name: var.value for var in spec.serving.env},
            SPEC_ENV: workload_spec(served),
            PVC_ROOT_ENV: DEFAULT_PVC_ROOT,
            "TORCHYARD_PORT": str(PORT),
            "TORCHYARD_GRPC_PORT": str(GRPC_PORT),
        },
        resources=spec.serving.resources,
        restart_policy="Always",
        volumes=volumes,
        volume_mounts=mounts,
        access=storage_access(spec.storage, spec.service_account_name),
        placement=spec.serving,
    )
    container = pod["spec"]["containers"][0]
    container["ports"] = [
        {"name": "http", "containerPort": PORT},
        {"name": "grpc", "containerPort": GRPC_PORT},
    ]
    # Ready means the model is loaded, its digest verified and a warm-up forward pass
    # answered: only then does the Service route to it (KServe #1859).
    container["readinessProbe"] = {
        "httpGet": {"path": "/v2/health/ready", "port": "http"},
        "periodSeconds": 2,
        "failureThreshold": 2,
    }
    container["livenessProbe"] = {
        "httpGet": {"path": "/v2/health/live", "port": "http"},
        "periodSeconds": 10,
        "failureThreshold": 3,
    }
    container["startupProbe"] = {
        "httpGet": {"path": "/v2/health/live", "port": "http"},
        "periodSeconds": 2,
        "failureThreshold": 150,
    }
    # Graceful drain on SIGTERM: finish in-flight requests before exiting.
    pod["spec"]["terminationGracePeriodSeconds"] = 30
    selector = {**owner_labels(KIND, name)}
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": deployment_name(name), "namespace": namespace, "labels": labels},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": selector},
            # Never fewer ready pods of this version than asked for while it changes.
            "strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": 0}},
            "template": {"metadata": {"labels": labels}, "spec": pod["spec"]},
        },
    }


def service_selector(model: str, routed: bool = False) -> dict[str, str]:
    """What the model's Service selects: the model's router pods (torchyard.router, exact
    weights) while one is ready, else every live version's serving pods (replica ratios)."""
    return {MODEL_LABEL: model, ROUTER_LABEL if routed else SERVING_LABEL: "true"}


def model_service(model: str, namespace: str) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {
            "name": service_name(model),
            "namespace": namespace,
            "labels": {MANAGED_BY: "torchyard", MODEL_LABEL: model},
        },
        "spec": {
            "selector": service_selector(model),
            "ports": [
                {"name": "http", "port": 80, "targetPort": "http"},
                # Cleartext HTTP/2: meshes and gateways that read appProtocol route it as
                # gRPC rather than as HTTP/1.
                {
                    "name": "grpc",
                    "port": GRPC_PORT,
                    "targetPort": "grpc",
                    "appProtocol": "kubernetes.io/h2c",
                },
            ],
        },
    }
