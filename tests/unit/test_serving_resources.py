"""What serves a ModelVersion: the Deployment per version and the Service per model."""

from __future__ import annotations

import json

import pytest

from torchyard.api.modelversion import RESERVED_ENV, ModelVersionSpec
from torchyard.resources.routing import router_deployment
from torchyard.resources.serving import (
    MODEL_LABEL,
    model_service,
    model_url,
    service_selector,
    serving_deployment,
)
from torchyard.validation import InvalidSpec, parse_spec

DIGEST = "sha256:" + "a" * 64


def _spec(**serving) -> ModelVersionSpec:
    return parse_spec(
        ModelVersionSpec,
        {
            "model": "digits",
            "version": "2",
            "artifact": {"uri": "pvc://models/digits/v2", "digest": DIGEST},
            "serving": {"replicas": 3, **serving},
        },
    )


def _env(deployment) -> dict[str, str]:
    container = deployment["spec"]["template"]["spec"]["containers"][0]
    return {var["name"]: var["value"] for var in container["env"]}


def test_deployment_runs_the_server_with_the_replicas_asked():
    deployment = serving_deployment("digits-v2", "ml", _spec(), replicas=2)
    assert deployment["metadata"]["name"] == "digits-v2-serving"
    assert deployment["spec"]["replicas"] == 2
    container = deployment["spec"]["template"]["spec"]["containers"][0]
    assert container["args"][-2:] == ["workload", "serve"]
    assert container["readinessProbe"]["httpGet"]["path"] == "/v2/health/ready"
    assert deployment["spec"]["strategy"]["rollingUpdate"]["maxUnavailable"] == 0
    served = json.loads(_env(deployment)["TORCHYARD_SPEC"])
    assert served["artifact"]["digest"] == DIGEST


def test_rollout_controls_do_not_change_the_pod_template():
    calm = serving_deployment("digits-v2", "ml", _spec(), replicas=1)
    spec = _spec().model_copy(update={"paused": True, "promote": True})
    busy = serving_deployment("digits-v2", "ml", spec, replicas=3)
    assert calm["spec"]["template"] == busy["spec"]["template"]


def test_user_env_reaches_the_container_and_cannot_hide_the_operators():
    deployment = serving_deployment(
        "digits-v2",
        "ml",
        _spec(
            env=[
                {"name": "OMP_NUM_THREADS", "value": "2"},
                {"name": "TORCHYARD_DRAIN_DELAY_SECONDS", "value": "10"},
            ]
        ),
        replicas=1,
    )
    env = _env(deployment)
    assert env["OMP_NUM_THREADS"] == "2"
    assert env["TORCHYARD_DRAIN_DELAY_SECONDS"] == "10"
    assert env["TORCHYARD_PORT"] == "8080"
    assert env["TORCHYARD_GRPC_PORT"] == "8081"
    container = deployment["spec"]["template"]["spec"]["containers"][0]
    assert len(container["env"]) == len(env), "each variable once"


def test_every_variable_the_operator_owns_is_reserved():
    env = _env(serving_deployment("digits-v2", "ml", _spec(), replicas=1))
    owned = set(env) - {"TORCHYARD_DRAIN_DELAY_SECONDS"}
    assert owned <= set(RESERVED_ENV)


@pytest.mark.parametrize("name", RESERVED_ENV)
def test_reserved_env_is_refused_naming_the_field(name):
    with pytest.raises(InvalidSpec, match=r"spec\.serving\.env\[0\]\.name: name is reserved"):
        _spec(env=[{"name": name, "value": "x"}])


def test_env_name_must_be_a_variable_name():
    with pytest.raises(InvalidSpec, match=r"spec\.serving\.env\[0\]\.name: String should match"):
        _spec(env=[{"name": "not a name", "value": "x"}])


def test_service_selects_every_serving_pod_of_the_model():
    service = model_service("digits", "ml")
    assert service["metadata"]["name"] == "digits-model"
    assert service["spec"]["selector"][MODEL_LABEL] == "digits"
    deployment = serving_deployment("digits-v2", "ml", _spec(), replicas=1)
    pod_labels = deployment["spec"]["template"]["metadata"]["labels"]
    assert service["spec"]["selector"].items() <= pod_labels.items()
    assert model_url("digits", "ml") == "http://digits-model.ml.svc/v2/models/digits"


def test_the_service_and_the_pods_serve_http_and_grpc_on_named_ports():
    deployment = serving_deployment("digits-v2", "ml", _spec(), replicas=1)
    container = deployment["spec"]["template"]["spec"]["containers"][0]
    assert container["ports"] == [
        {"name": "http", "containerPort": 8080},
        {"name": "grpc", "containerPort": 8081},
    ]
    env = _env(deployment)
    assert (env["TORCHYARD_PORT"], env["TORCHYARD_GRPC_PORT"]) == ("8080", "8081")
    # Each Service port targets the container port of its name: the server listens there.
    ports = {port["name"]: port for port in model_service("digits", "ml")["spec"]["ports"]}
    assert ports["http"] == {"name": "http", "port": 80, "targetPort": "http"}
    assert ports["grpc"] == {
        "name": "grpc",
        "port": 8081,
        "targetPort": "grpc",
        "appProtocol": "kubernetes.io/h2c",
    }
    assert {port["targetPort"] for port in ports.values()} == {
        p["name"] for p in container["ports"]
    }


def test_the_service_selects_the_router_pods_while_one_is_ready_else_the_serving_pods():
    router = router_deployment("digits", "ml", "t0ken")
    serving = serving_deployment("digits-v2", "ml", _spec(), replicas=1)
    router_labels = router["spec"]["template"]["metadata"]["labels"]
    serving_labels = serving["spec"]["template"]["metadata"]["labels"]
    routed, direct = service_selector("digits", routed=True), service_selector("digits")
    assert routed.items() <= router_labels.items() and not routed.items() <= serving_labels.items()
    assert direct.items() <= serving_labels.items() and not direct.items() <= router_labels.items()
    assert model_service("digits", "ml")["spec"]["selector"] == direct
    # A router pod is never taken for a serving pod of a version.
    assert router["spec"]["selector"]["matchLabels"].items() <= router_labels.items()
    assert not router["spec"]["selector"]["matchLabels"].items() <= serving_labels.items()


def test_the_router_runs_from_the_worker_image_with_its_token_on_the_services_ports():
    router = router_deployment("digits", "ml", "ab" * 32)
    assert router["metadata"]["name"] == "digits-router"
    pod = router["spec"]["template"]["spec"]
    container = pod["containers"][0]
    assert container["args"] == ["workload", "router"]
    env = _env(router)
    # Only the token's digest: reading the Deployment gives no way to push routes.
    assert env["TORCHYARD_MODEL"] == "digits" and env["TORCHYARD_ROUTER_TOKEN_SHA256"] == "ab" * 32
    assert "TORCHYARD_ROUTER_TOKEN" not in env
    assert (env["TORCHYARD_PORT"], env["TORCHYARD_GRPC_PORT"]) == ("8080", "8081")
    assert env["TORCHYARD_BACKEND_GRPC_PORT"] == "8081"
    # The Service's named target ports exist on the router as on the serving pods.
    names = {port["name"] for port in container["ports"]}
    assert {port["targetPort"] for port in model_service("digits", "ml")["spec"]["ports"]} == names
    assert container["readinessProbe"]["httpGet"]["path"] == "/_torchyard/ready"
    serving = serving_deployment("digits-v2", "ml", _spec(), replicas=1)
    assert container["image"] == serving["spec"]["template"]["spec"]["containers"][0]["image"]
    assert container["securityContext"]["allowPrivilegeEscalation"] is False
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["automountServiceAccountToken"] is False
