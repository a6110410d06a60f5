"""A careless or hostile tenant's children: refused creates and names others hold.

Against a real API server, the operator under its own RBAC (manifests/base). What a
user sees in each case:

- a create the API server refuses (a ResourceQuota, an invalid field, a missing
  ServiceAccount) gives the object a condition with reason `FailedCreate`, the API's
  words and what to change, and a Warning Event, within seconds; the operator tries
  again only after a growing pause, and recovers on its own once the cause is gone, or
  at once when the spec changes;
- a child's name held by an object the owner does not own (by ownerReference uid) gives
  it reason `Conflict` naming that object, which is left untouched;
- an object carrying a job's labels without its ownerReference is ignored.

Every test also checks that another object of the tenant is still reconciled and that
the operator logged no traceback. No node runs pods here.
"""

from __future__ import annotations

import json
import time
from typing import Any

import pytest
import yaml

from tests.builders import pod, resource_quota
from tests.cluster.torchyard import (
    OPERATOR_ACCOUNT,
    OPERATOR_NAMESPACE,
    api_requests,
    apply,
    events,
    get,
    install,
    list_pods,
    running_operator,
    wait_until,
)
from tests.objects import sample

REPORTED_WITHIN = 30.0
"""Seconds within which a refusal must be on status (the issue's bound)."""


@pytest.fixture(scope="module")
def operator(control_plane, tmp_path_factory):
    install(control_plane)
    kubeconfig = control_plane.service_account_kubeconfig(OPERATOR_NAMESPACE, OPERATOR_ACCOUNT)
    log = tmp_path_factory.mktemp("operator") / "operator.log"
    with running_operator(control_plane, kubeconfig, log):
        yield log


def _quota(cp, namespace: str, hard: dict[str, str]) -> None:
    apply(cp, namespace, resource_quota("tenant", namespace, hard).obj())

    # Admission uses the usage the quota controller computed: wait for it.
    def computed() -> bool:
        status = get(cp, "resourcequota", "tenant", "-n", namespace).get("status", {})
        return status.get("hard") == hard and set(status.get("used", {})) == set(hard)

    wait_until("the quota's usage computed", computed, timeout=90)


def _condition(cp, namespace: str, kind: str, name: str, type: str) -> dict[str, Any]:
    obj = get(cp, kind, name, "-n", namespace)
    conditions = (obj.get("status") or {}).get("conditions") or []
    return next((c for c in conditions if c["type"] == type), {})


def _says(cp, namespace: str, kind: str, name: str, type: str, reason: str) -> dict[str, Any]:
    """Wait until condition `type` of the object is False with `reason`; return it."""

    def said() -> dict[str, Any] | None:
        found = _condition(cp, namespace, kind, name, type)
        return found if found.get("reason") == reason and found["status"] == "False" else None

    return wait_until(f"{kind}/{name} {type}=False {reason}", said, timeout=REPORTED_WITHIN)


def _warnings(cp, namespace: str, name: str, reason: str) -> list[dict[str, Any]]:
    return [event for event in events(cp, namespace, name, reason) if event["type"] == "Warning"]


def _maybe(cp, kind: str, name: str, namespace: str) -> dict[str, Any] | None:
    """The object, or None when there is none."""
    found = cp.kubectl("get", kind, name, "-n", namespace, "-o", "json", check=False)
    return json.loads(found.stdout) if found.returncode == 0 else None


def _no_traceback(log) -> None:
    text = log.read_text()
    assert "Traceback" not in text, text[text.index("Traceback") - 2000 :][:6000]


def _bystander_job(cp, namespace: str) -> None:
    """A CompressionJob of the same tenant: its Job is created and it reports."""
    apply(cp, namespace, sample("CompressionJob"))
    wait_until(
        "the tenant's other job reconciled (its Job created)",
        lambda: (
            _condition(cp, namespace, "cjob", "minilm-int8", "Created").get("status") == "True"
            and get(cp, "job", "minilm-int8-compress", "-n", namespace)
        ),
    )


def _hungry_training_job() -> dict[str, Any]:
    job = sample("TrainingJob")
    job["spec"]["resources"] = {"requests": {"cpu": "1", "memory": "512Mi"}}
    return job


def test_a_quota_refusing_training_pods_is_reported_backs_off_and_recovers(
    control_plane, namespace, operator
):
    cp = control_plane
    # The other job's pod (500m) fits; each replica of this one (1 CPU) does not.
    _quota(cp, namespace, {"requests.cpu": "600m"})
    _bystander_job(cp, namespace)
    apply(cp, namespace, _hungry_training_job())
    created = _says(cp, namespace, "tjob", "digits-train", "Created", "FailedCreate")
    assert "exceeded quota" in created["message"] and "raise the quota" in created["message"]
    status = get(cp, "tjob", "digits-train", "-n", namespace)["status"]
    assert status["phase"] == "Pending" and status["message"] == created["message"]
    assert _warnings(cp, namespace, "digits-train", "FailedCreate")

    # No tight loop: from the first refusal, tries 10 s and 30 s later, two pods each.
    before = api_requests(cp, {"pods", "trainingjobs"})
    time.sleep(45)
    spent = api_requests(cp, {"pods", "trainingjobs"}) - before
    refused = spent[("pods", "POST", "403")]
    print(f"in 45 s against a refusing quota: {dict(spent)}")
    assert refused <= 6, f"{refused} pod creates refused in 45 s: the operator hammers"
    assert spent[("trainingjobs/status", "PATCH", "200")] <= 1  # nothing new to say
    assert len(_warnings(cp, namespace, "digits-train", "FailedCreate")) == 1

    _quota(cp, namespace, {"requests.cpu": "4"})
    wait_until(
        "both replicas created once the quota allows them",
        lambda: len(list_pods(cp, namespace, "torchyard.io/trainingjob=digits-train")) == 2,
        timeout=330,  # at most the longest pause (5 minutes) after the quota changed
    )
    wait_until(
        "Created=True again",
        lambda: (
            _condition(cp, namespace, "tjob", "digits-train", "Created").get("status") == "True"
        ),
    )
    _no_traceback(operator)


def test_a_quota_refusing_the_compression_job_and_then_its_pod_is_reported(
    control_plane, namespace, operator
):
    cp = control_plane
    _quota(cp, namespace, {"count/jobs.batch": "0"})
    apply(cp, namespace, sample("CompressionJob"))
    created = _says(cp, namespace, "cjob", "minilm-int8", "Created", "FailedCreate")
    assert "cannot create Job minilm-int8-compress" in created["message"]
    assert "exceeded quota" in created["message"]
    assert _warnings(cp, namespace, "minilm-int8", "FailedCreate")
    assert not get(cp, "jobs", "-n", namespace)["items"]
    # The tenant's other object is reconciled meanwhile.
    apply(cp, namespace, sample("TrainingJob"))
    wait_until(
        "the tenant's training job reconciled",
        lambda: len(list_pods(cp, namespace, "torchyard.io/trainingjob=digits-train")) == 2,
    )

    # The Job is allowed now, its pod is not (the training job holds both pods): the
    # Job controller's refusal is reported too.
    _quota(cp, namespace, {"count/jobs.batch": "1", "pods": "2"})
    wait_until(
        "the Job created at the next try",
        lambda: get(cp, "jobs", "-n", namespace)["items"],
        timeout=60,
    )
    running = _says(cp, namespace, "cjob", "minilm-int8", "Running", "FailedCreate")
    assert "Job minilm-int8-compress" in running["message"]
    assert "exceeded quota" in running["message"]
    created = _condition(cp, namespace, "cjob", "minilm-int8", "Created")
    assert created["status"] == "True"
    _no_traceback(operator)


def test_a_missing_service_account_is_reported_until_it_exists(control_plane, namespace, operator):
    cp = control_plane
    job = sample("TrainingJob")
    job["spec"]["serviceAccountName"] = "trainer"
    apply(cp, namespace, job)
    created = _says(cp, namespace, "tjob", "digits-train", "Created", "FailedCreate")
    assert "trainer" in created["message"]
    assert "Create the ServiceAccount" in created["message"]
    _bystander_job(cp, namespace)

    cp.kubectl("create", "serviceaccount", "trainer", "-n", namespace)
    wait_until(
        "the replicas created once the ServiceAccount exists",
        lambda: len(list_pods(cp, namespace, "torchyard.io/trainingjob=digits-train")) == 2,
        timeout=90,
    )
    _no_traceback(operator)


def test_an_invalid_pod_is_reported_and_a_fixed_spec_is_tried_at_once(
    control_plane, namespace, operator
):
    """The API server admits the TrainingJob but refuses its pods (an extended resource
    requested without a limit): FailedCreate naming the field; fixing the spec creates
    the pods at once, not at the end of the pause."""
    cp = control_plane
    job = sample("TrainingJob")
    job["spec"]["resources"]["requests"]["example.com/widget"] = "1"
    apply(cp, namespace, job)
    created = _says(cp, namespace, "tjob", "digits-train", "Created", "FailedCreate")
    assert "is invalid" in created["message"]
    assert "resources.limits: Required value" in created["message"]
    assert "spec.resources" in created["message"]
    _bystander_job(cp, namespace)

    time.sleep(12)  # refused again 10 s after the first: the next try is 20 s away
    job["spec"]["resources"]["limits"] = {"example.com/widget": "1"}
    fixed = time.monotonic()
    apply(cp, namespace, job)
    wait_until(
        "the replicas of the fixed spec",
        lambda: len(list_pods(cp, namespace, "torchyard.io/trainingjob=digits-train")) == 2,
        timeout=60,
    )
    took = time.monotonic() - fixed
    print(f"pods {took:.1f} s after the fix")
    assert took < 15, f"the fixed spec waited {took:.0f} s for the pause to end"
    _no_traceback(operator)


def _users_deployment(name: str, labels: dict[str, str]) -> dict[str, Any]:
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name, "labels": labels},
        "spec": {
            "replicas": 0,
            "selector": {"matchLabels": {"app": "mine"}},
            "template": {
                "metadata": {"labels": {"app": "mine", **labels}},
                "spec": {"containers": [{"name": "web", "image": "example.com/web:1"}]},
            },
        },
    }


def test_a_users_deployment_named_like_a_serving_one_is_left_alone(
    control_plane, namespace, operator
):
    cp = control_plane
    # Even carrying the labels a serving Deployment has.
    labels = {"torchyard.io/modelversion": "minilm-v1", "torchyard.io/model": "minilm"}
    apply(cp, namespace, _users_deployment("minilm-v1-serving", labels))
    mine = get(cp, "deployment", "minilm-v1-serving", "-n", namespace)
    apply(cp, namespace, sample("ModelVersion"))
    ready = _says(cp, namespace, "mv", "minilm-v1", "Ready", "Conflict")
    assert "Deployment minilm-v1-serving already exists" in ready["message"]
    assert "Delete or rename" in ready["message"]
    assert _warnings(cp, namespace, "minilm-v1", "Conflict")

    # A bystander version of another model deploys.
    other = sample("ModelVersion")
    other["metadata"] = {"name": "other-v1"}
    other["spec"]["model"] = "other"
    apply(cp, namespace, other)
    deployment = wait_until(
        "the other version's Deployment",
        lambda: get(cp, "deployments", "-n", namespace, "-l", "torchyard.io/model=other")["items"],
    )[0]
    uid = get(cp, "mv", "other-v1", "-n", namespace)["metadata"]["uid"]
    assert [ref["uid"] for ref in deployment["metadata"]["ownerReferences"]] == [uid]

    time.sleep(5)
    after = get(cp, "deployment", "minilm-v1-serving", "-n", namespace)
    assert after["metadata"]["resourceVersion"] == mine["metadata"]["resourceVersion"]
    assert "ownerReferences" not in after["metadata"] and after["spec"]["replicas"] == 0

    # Once the user's Deployment is gone, the version's own comes.
    cp.kubectl("delete", "deployment", "minilm-v1-serving", "-n", namespace)
    wait_until(
        "the version's own Deployment",
        lambda: (
            (_maybe(cp, "deployment", "minilm-v1-serving", namespace) or {})
            .get("metadata", {})
            .get("ownerReferences")
        ),
        timeout=90,
    )
    _no_traceback(operator)


def _stray_pod(name: str, labels: dict[str, str]) -> dict[str, Any]:
    return pod(name).labels(labels).container(image="example.com/stray:1").obj()


def _set_phase(
    cp,
    namespace: str,
    pod: str,
    phase: str,
    exit_code: int | None = None,
    ready: bool = False,
    said: str = "",
) -> None:
    status: dict[str, Any] = {"phase": phase}
    if ready:
        status["conditions"] = [{"type": "Ready", "status": "True"}]
        status["podIP"] = "127.0.0.1"  # a scrape of it would read the node's own port
    if exit_code is not None:
        status["containerStatuses"] = [
            {
                "name": "worker",
                "image": "x",
                "imageID": "",
                "ready": False,
                "restartCount": 0,
                "state": {
                    "terminated": {"exitCode": exit_code, "reason": "Error", "message": said}
                },
            }
        ]
    cp.kubectl(
        "patch",
        "pod",
        pod,
        "-n",
        namespace,
        "--subresource=status",
        "--type=merge",
        "-p",
        yaml.safe_dump({"status": status}),
    )


def test_a_stray_pod_with_a_jobs_labels_is_ignored(control_plane, namespace, operator):
    cp = control_plane
    selector = "torchyard.io/trainingjob=digits-train"
    apply(cp, namespace, sample("TrainingJob"))
    wait_until("two replica pods", lambda: len(list_pods(cp, namespace, selector)) == 2)
    replicas = {p["metadata"]["uid"] for p in list_pods(cp, namespace, selector)}
    labels = {
        "app.kubernetes.io/managed-by": "torchyard",
        "torchyard.io/trainingjob": "digits-train",
        "torchyard.io/replica-index": "0",
        "torchyard.io/attempt": "0",
    }
    apply(cp, namespace, _stray_pod("intruder", labels))
    _set_phase(cp, namespace, "intruder", "Failed", exit_code=1)  # would restart the gang
    stray_cjob = {"torchyard.io/compressionjob": "minilm-int8"}
    apply(cp, namespace, _stray_pod("intruder-2", stray_cjob))
    _set_phase(cp, namespace, "intruder-2", "Running")  # would make the job Running
    _bystander_job(cp, namespace)

    time.sleep(5)
    job = get(cp, "tjob", "digits-train", "-n", namespace)
    assert job["status"].get("restarts", 0) == 0 and job["status"]["phase"] == "Pending"
    assert {p["metadata"]["uid"] for p in list_pods(cp, namespace, selector)} >= replicas
    assert get(cp, "cjob", "minilm-int8", "-n", namespace)["status"]["phase"] == "Pending"
    assert get(cp, "pod", "intruder", "-n", namespace)["status"]["phase"] == "Failed"

    # The job is still reconciled: its own failed replica restarts the gang.
    _set_phase(cp, namespace, "digits-train-worker-1", "Failed", exit_code=137)
    wait_until(
        "the gang restarted by its own pod",
        lambda: get(cp, "tjob", "digits-train", "-n", namespace)["status"].get("restarts") == 1,
        timeout=60,
    )
    assert get(cp, "pod", "intruder", "-n", namespace)  # never deleted
    _no_traceback(operator)


def test_a_pod_holding_a_replicas_name_is_a_conflict(control_plane, namespace, operator):
    cp = control_plane
    apply(cp, namespace, _stray_pod("digits-train-worker-1", {"app": "mine"}))
    apply(cp, namespace, sample("TrainingJob"))
    created = _says(cp, namespace, "tjob", "digits-train", "Created", "Conflict")
    assert "Pod digits-train-worker-1 already exists" in created["message"]
    assert "no owner" in created["message"]
    stray = get(cp, "pod", "digits-train-worker-1", "-n", namespace)
    assert stray["metadata"]["labels"] == {"app": "mine"}
    assert "ownerReferences" not in stray["metadata"]
    _bystander_job(cp, namespace)

    cp.kubectl("delete", "pod", "digits-train-worker-1", "-n", namespace, "--wait=true")
    wait_until(
        "the replica created once its name is free",
        lambda: len(list_pods(cp, namespace, "torchyard.io/trainingjob=digits-train")) == 2,
        timeout=90,
    )
    _no_traceback(operator)


def _digits_version() -> dict[str, Any]:
    version = sample("ModelVersion")
    version["metadata"] = {"name": "digits-v1"}
    version["spec"]["model"] = "digits"
    return version


def test_a_training_job_named_like_a_models_service_comes_second(
    control_plane, namespace, operator
):
    """The model's Service `digits-model` first; a TrainingJob `digits-model` would
    take it as its headless Service: Conflict on the job, the Service untouched."""
    cp = control_plane
    apply(cp, namespace, _digits_version())
    service = wait_until(
        "the model's Service",
        lambda: _maybe(cp, "service", "digits-model", namespace),
    )
    version_uid = get(cp, "mv", "digits-v1", "-n", namespace)["metadata"]["uid"]
    assert [ref["uid"] for ref in service["metadata"]["ownerReferences"]] == [version_uid]
    job = sample("TrainingJob")
    job["metadata"]["name"] = "digits-model"
    apply(cp, namespace, job)
    created = _says(cp, namespace, "tjob", "digits-model", "Created", "Conflict")
    assert "Service digits-model already exists" in created["message"]
    assert "ModelVersion/digits-v1" in created["message"]
    time.sleep(3)
    assert not list_pods(cp, namespace, "torchyard.io/trainingjob=digits-model")
    after = get(cp, "service", "digits-model", "-n", namespace)
    assert after["metadata"]["resourceVersion"] == service["metadata"]["resourceVersion"]
    _bystander_job(cp, namespace)
    _no_traceback(operator)


def test_a_models_service_named_like_a_training_jobs_comes_second(
    control_plane, namespace, operator
):
    """A TrainingJob `digits-model` first; the model `digits` then finds its Service's
    name taken: Conflict on the version, the job's headless Service untouched."""
    cp = control_plane
    job = sample("TrainingJob")
    job["metadata"]["name"] = "digits-model"
    apply(cp, namespace, job)
    headless = wait_until(
        "the job's headless Service",
        lambda: _maybe(cp, "service", "digits-model", namespace),
    )
    apply(cp, namespace, _digits_version())
    ready = _says(cp, namespace, "mv", "digits-v1", "Ready", "Conflict")
    assert "Service digits-model already exists" in ready["message"]
    assert "TrainingJob/digits-model" in ready["message"]
    time.sleep(3)
    after = get(cp, "service", "digits-model", "-n", namespace)
    assert after["metadata"]["resourceVersion"] == headless["metadata"]["resourceVersion"]
    assert after["spec"]["clusterIP"] == "None"
    wait_until(
        "the job still reconciled (its pods)",
        lambda: len(list_pods(cp, namespace, "torchyard.io/trainingjob=digits-model")) == 2,
    )
    _no_traceback(operator)


def test_a_stray_ready_pod_with_a_versions_labels_does_not_serve_it(
    control_plane, namespace, operator
):
    """A pod labelled as a version's serving pod, Running and Ready, is not counted as
    one (nor scraped for the analysis): it does not belong to the version's Deployment."""
    cp = control_plane
    apply(cp, namespace, sample("ModelVersion"))
    wait_until(
        "the version's Deployment", lambda: _maybe(cp, "deployment", "minilm-v1-serving", namespace)
    )
    labels = {
        "app.kubernetes.io/managed-by": "torchyard",
        "torchyard.io/modelversion": "minilm-v1",
        "torchyard.io/model": "minilm",
        "torchyard.io/serving": "true",
    }
    apply(cp, namespace, _stray_pod("impostor", labels))
    _set_phase(cp, namespace, "impostor", "Running", ready=True)
    _bystander_job(cp, namespace)
    time.sleep(6)  # three ticks of the version's clock
    status = get(cp, "mv", "minilm-v1", "-n", namespace)["status"]
    assert status.get("readyReplicas", 0) == 0
    available = _condition(cp, namespace, "mv", "minilm-v1", "Available")
    assert available["status"] == "False", available
    assert get(cp, "pod", "impostor", "-n", namespace)["status"]["phase"] == "Running"
    _no_traceback(operator)


def test_a_model_service_of_an_earlier_release_is_adopted_not_a_conflict(
    control_plane, namespace, operator
):
    """Releases before ownership by uid made the model's Service without an owner. An
    operator upgrade keeps it (and its ClusterIP): the versions become its owners."""
    cp = control_plane
    earlier = {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {
            "name": "minilm-model",
            "labels": {"app.kubernetes.io/managed-by": "torchyard", "torchyard.io/model": "minilm"},
        },
        "spec": {
            "selector": {"torchyard.io/model": "minilm", "torchyard.io/serving": "true"},
            "ports": [{"name": "http", "port": 80, "targetPort": "http"}],
        },
    }
    apply(cp, namespace, earlier)
    cluster_ip = get(cp, "service", "minilm-model", "-n", namespace)["spec"]["clusterIP"]
    apply(cp, namespace, sample("ModelVersion"))
    uid = get(cp, "mv", "minilm-v1", "-n", namespace)["metadata"]["uid"]
    adopted = wait_until(
        "the Service owned by the version",
        lambda: (
            (svc := get(cp, "service", "minilm-model", "-n", namespace))
            and [ref["uid"] for ref in svc["metadata"].get("ownerReferences", [])] == [uid]
            and svc
        ),
    )
    assert adopted["spec"]["clusterIP"] == cluster_ip
    assert _condition(cp, namespace, "mv", "minilm-v1", "Ready").get("reason") != "Conflict"
    _no_traceback(operator)


def _refuse_new_versions(cp, namespace: str) -> str:
    """An admission policy (a ValidatingAdmissionPolicy, as a cluster's administrator
    would write one) that refuses new ModelVersions in `namespace`; returns its name."""
    name = f"no-versions-{namespace}"[:63]
    policy = {
        "apiVersion": "admissionregistration.k8s.io/v1",
        "kind": "ValidatingAdmissionPolicy",
        "metadata": {"name": name},
        "spec": {
            "failurePolicy": "Fail",
            "matchConstraints": {
                "resourceRules": [
                    {
                        "apiGroups": ["torchyard.io"],
                        "apiVersions": ["*"],
                        "operations": ["CREATE"],
                        "resources": ["modelversions"],
                    }
                ]
            },
            "validations": [
                {
                    "expression": "false",
                    "message": "this namespace takes no new ModelVersions",
                    "reason": "Forbidden",
                }
            ],
        },
    }
    binding = {
        "apiVersion": "admissionregistration.k8s.io/v1",
        "kind": "ValidatingAdmissionPolicyBinding",
        "metadata": {"name": name},
        "spec": {
            "policyName": name,
            "validationActions": ["Deny"],
            "matchResources": {
                "namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": namespace}}
            },
        },
    }
    cp.kubectl("apply", "-f", "-", input=yaml.safe_dump_all([policy, binding]))
    probe = yaml.safe_dump(sample("ModelVersion"))

    def refusing() -> bool:
        dry = ("create", "--dry-run=server", "-n", namespace, "-f", "-")
        return cp.kubectl(*dry, input=probe, check=False).returncode != 0

    wait_until("the admission policy in force", refusing)
    return name


def test_a_refused_registration_is_reported_and_retried(control_plane, namespace, operator):
    """A job that succeeds while an admission policy refuses the ModelVersion it
    registers stays Succeeded with Registered=False FailedCreate, and registers once the
    policy is gone."""
    cp = control_plane
    policy = _refuse_new_versions(cp, namespace)
    apply(cp, namespace, sample("TrainingJob"))
    selector = "torchyard.io/trainingjob=digits-train"
    wait_until("two replica pods", lambda: len(list_pods(cp, namespace, selector)) == 2)
    artifact = {"uri": "pvc://models/digits/v1", "digest": "sha256:" + "ab" * 32, "bytes": 1}
    result = json.dumps({"artifact": artifact, "steps": 10, "finalLoss": 0.1})
    for replica in (1, 0):
        _set_phase(cp, namespace, f"digits-train-worker-{replica}", "Succeeded", 0, said=result)
    registered = _says(cp, namespace, "tjob", "digits-train", "Registered", "FailedCreate")
    assert "cannot create ModelVersion digits-v1" in registered["message"]
    assert "takes no new ModelVersions" in registered["message"]
    assert get(cp, "tjob", "digits-train", "-n", namespace)["status"]["phase"] == "Succeeded"
    _bystander_job(cp, namespace)

    cp.kubectl("delete", "validatingadmissionpolicybinding,validatingadmissionpolicy", policy)
    version = wait_until(
        "the version registered once the policy is gone",
        lambda: _maybe(cp, "mv", "digits-v1", namespace),
        timeout=90,
    )
    assert version["spec"]["artifact"]["digest"] == artifact["digest"]
    wait_until(
        "Registered=True",
        lambda: (
            _condition(cp, namespace, "tjob", "digits-train", "Registered").get("status") == "True"
        ),
    )
    _no_traceback(operator)


def test_a_quota_refusing_the_serving_deployment_and_then_its_pods_is_reported(
    control_plane, namespace, operator
):
    cp = control_plane
    _quota(cp, namespace, {"count/deployments.apps": "0"})
    apply(cp, namespace, sample("ModelVersion"))
    ready = _says(cp, namespace, "mv", "minilm-v1", "Ready", "FailedCreate")
    assert "cannot create Deployment minilm-v1-serving" in ready["message"]
    assert "exceeded quota" in ready["message"] and "raise the quota" in ready["message"]
    assert _condition(cp, namespace, "mv", "minilm-v1", "Available")["reason"] == "FailedCreate"
    assert _warnings(cp, namespace, "minilm-v1", "FailedCreate")
    _bystander_job(cp, namespace)

    # The Deployment is allowed now, its pods are not: the Deployment says so.
    _quota(cp, namespace, {"count/deployments.apps": "1", "pods": "1"})
    wait_until(
        "the Deployment created at the next try",
        lambda: _maybe(cp, "deployment", "minilm-v1-serving", namespace),
        timeout=60,
    )
    available = _says(cp, namespace, "mv", "minilm-v1", "Available", "FailedCreate")
    assert "pods of Deployment minilm-v1-serving" in available["message"]
    assert "exceeded quota" in available["message"]
    # Room for the version's own Deployment only: no router, and a Warning says why.
    refused = wait_until(
        "the router's refusal in an Event",
        lambda: _warnings(cp, namespace, "minilm-v1", "RouterRefused"),
        timeout=60,
    )
    assert "without a router" in refused[0]["message"], refused
    assert "cannot create Deployment minilm-router" in refused[0]["message"], refused
    assert "exceeded quota" in refused[0]["message"], refused
    _no_traceback(operator)
