"""Hostile tenant, class "loading an artifact runs code its manifest names", at the API
server and the operator: a job whose spec names a factory that is neither torchyard's nor
the administrator's is refused at once (FactoryNotAllowed, naming the field), starts no
pod, and leaves the tenant's other jobs reconciled; the administrator's factories run,
and every pod carries the administrator's list, which a tenant cannot widen.

An artifact's own manifest is read only inside pods: the workload tests
(tests/workload/test_hostile_factories.py) and the e2e test of a serving pod cover it.
"""

from __future__ import annotations

import pytest

from tests.cluster.torchyard import (
    OPERATOR_ACCOUNT,
    OPERATOR_NAMESPACE,
    apply,
    events,
    free_port,
    get,
    install,
    list_pods,
    operator_process,
    wait_until,
)
from tests.objects import sample

ADMINISTRATORS = "acme.models:*"
REFUSED_WITHIN_S = 30


@pytest.fixture(scope="module")
def operator(control_plane, tmp_path_factory):
    """The operator as its ServiceAccount, started with the administrator's list."""
    install(control_plane)
    kubeconfig = control_plane.service_account_kubeconfig(OPERATOR_NAMESPACE, OPERATOR_ACCOUNT)
    log = tmp_path_factory.mktemp("operator") / "operator.log"
    liveness = f"--liveness=http://127.0.0.1:{free_port()}/healthz"
    with operator_process(kubeconfig, log, liveness, f"--allowed-factories={ADMINISTRATORS}"):
        yield log


def _training(name: str, factory: str) -> dict:
    job = sample("TrainingJob")
    job["metadata"]["name"] = name
    job["spec"]["model"] = {"format": "state_dict", "factory": factory}
    job["spec"]["output"] = {"uri": f"pvc://models/{name}/v1"}
    job["spec"]["checkpoint"]["uri"] = f"pvc://models/{name}/checkpoints"
    job["spec"].pop("registerAs", None)
    return job


def _accepted(control_plane, namespace, kind, name):
    status = get(control_plane, kind, name, "-n", namespace).get("status") or {}
    return next((c for c in status.get("conditions") or [] if c["type"] == "Accepted"), None)


def _refused(control_plane, namespace, kind, name):
    accepted = wait_until(
        f"{kind} {name} refused",
        lambda: (
            (c := _accepted(control_plane, namespace, kind, name)) and c["status"] == "False" and c
        ),
        timeout=REFUSED_WITHIN_S,
    )
    assert get(control_plane, kind, name, "-n", namespace)["status"]["phase"] == "Failed"
    return accepted


def _no_tracebacks(log):
    assert "Traceback" not in log.read_text()


@pytest.mark.parametrize(
    "factory",
    ["os:system", "subprocess:run", "builtins:exec", "torchyard.workloads.models:load_path"],
)
def test_a_training_job_with_a_foreign_factory_is_refused_and_starts_nothing(
    control_plane, namespace, operator, factory
):
    apply(control_plane, namespace, _training("hostile", factory))
    apply(control_plane, namespace, _training("honest", "acme.models:resnet"))
    accepted = _refused(control_plane, namespace, "tjob", "hostile")
    assert accepted["reason"] == "FactoryNotAllowed"
    message = accepted["message"]
    assert f"'{factory}' (spec.model.factory) is not allowed" in message
    assert "--allowed-factories" in message and ADMINISTRATORS in message
    refusals = events(control_plane, namespace, "hostile", "FactoryNotAllowed")
    assert refusals[0]["type"] == "Warning"
    # The tenant's honest job is reconciled as usual: its pods exist.
    wait_until(
        "the honest job's two pods",
        lambda: len(list_pods(control_plane, namespace, "torchyard.io/trainingjob=honest")) == 2,
    )
    assert list_pods(control_plane, namespace, "torchyard.io/trainingjob=hostile") == []
    assert control_plane.kubectl(
        "get", "service", "hostile", "-n", namespace, check=False
    ).returncode
    _no_tracebacks(operator)


def test_a_distillation_student_with_a_foreign_factory_is_refused(
    control_plane, namespace, operator
):
    job = sample("CompressionJob")
    job["metadata"]["name"] = "hostile-student"
    job["spec"]["method"] = "distill"
    del job["spec"]["quantize"]
    job["spec"]["distill"] = {
        "student": {
            "uri": "file:///models/student.safetensors",
            "format": "safetensors",
            "factory": "os:system",
        },
        "dataset": {"uri": "builtin://sentences"},
    }
    apply(control_plane, namespace, job)
    accepted = _refused(control_plane, namespace, "cjob", "hostile-student")
    assert accepted["reason"] == "FactoryNotAllowed"
    assert "spec.distill.student.factory" in accepted["message"]
    jobs = get(
        control_plane, "jobs", "-n", namespace, "-l", "torchyard.io/compressionjob=hostile-student"
    )
    assert jobs["items"] == []
    _no_tracebacks(operator)


def test_the_administrators_factory_runs_and_every_pod_carries_the_list(
    control_plane, namespace, operator
):
    apply(control_plane, namespace, _training("allowed", "acme.models:resnet"))
    pods = wait_until(
        "two pods of the allowed job",
        lambda: (
            (p := list_pods(control_plane, namespace, "torchyard.io/trainingjob=allowed"))
            and len(p) == 2
            and p
        ),
    )
    for pod in pods:
        env = {e["name"]: e.get("value") for e in pod["spec"]["containers"][0]["env"]}
        # The pods check an artifact's factory against the same list.
        assert env["TORCHYARD_ALLOWED_FACTORIES"] == ADMINISTRATORS
    assert _accepted(control_plane, namespace, "tjob", "allowed")["status"] == "True"


@pytest.mark.parametrize(
    ("kind", "place", "field"),
    [
        ("TrainingJob", ("env",), "spec.env"),
        ("ModelVersion", ("serving", "env"), "spec.serving.env[0].name"),
    ],
)
def test_a_tenant_cannot_widen_the_list_through_its_env(
    control_plane, namespace, kind, place, field
):
    obj = sample(kind)
    target = obj["spec"]
    for key in place[:-1]:
        target = target.setdefault(key, {})
    target[place[-1]] = [{"name": "TORCHYARD_ALLOWED_FACTORIES", "value": "os:*"}]
    result = apply(control_plane, namespace, obj, check=False)
    assert result.returncode != 0 and field in result.stderr, result.stderr
    assert "TORCHYARD_ALLOWED_FACTORIES" in result.stderr
