"""Pods run as real processes and report like a kubelet's: phase, exit codes, restarts,
termination messages, environment, init containers, refused images."""

from __future__ import annotations

import json

import pytest

from tests.e2e.conftest import condition, container_status, python_pod

pytestmark = pytest.mark.e2e


def test_a_pod_that_writes_a_termination_message_succeeds_with_it(cluster, namespace):
    script = "open('/dev/termination-log', 'w').write('{\"accuracy\": 0.97}'); print('done')"
    cluster.apply(python_pod("ok", namespace, script))
    pod = cluster.wait_phase("ok", namespace, "Succeeded", "Failed")
    assert pod["status"]["phase"] == "Succeeded"
    ended = container_status(pod)["state"]["terminated"]
    assert ended["exitCode"] == 0
    assert ended["reason"] == "Completed"
    assert json.loads(ended["message"]) == {"accuracy": 0.97}
    assert pod["status"]["podIP"].startswith(cluster.pod_cidr.rsplit(".", 1)[0] + ".")
    assert condition(pod, "Ready") == "False"  # PodCompleted
    assert cluster.cp.kubectl(
        "get", "events", "-n", namespace, "--field-selector", "involvedObject.name=ok"
    ).stdout.count("Started")


def test_a_failing_pod_ends_failed_with_its_exit_code_and_log_tail(cluster, namespace):
    script = (
        "import sys; print('loading the model'); "
        "print('out of patience', file=sys.stderr); sys.exit(3)"
    )
    cluster.apply(
        python_pod("fails", namespace, script, terminationMessagePolicy="FallbackToLogsOnError")
    )
    pod = cluster.wait_phase("fails", namespace, "Succeeded", "Failed")
    assert pod["status"]["phase"] == "Failed"
    ended = container_status(pod)["state"]["terminated"]
    assert ended["exitCode"] == 3
    assert ended["reason"] == "Error"
    # FallbackToLogsOnError: no message file written, so the log's tail is the message.
    assert "loading the model" in ended["message"]
    assert "out of patience" in ended["message"]


def test_on_failure_restarts_the_container_and_counts(cluster, namespace):
    # Fails on its first run (no marker yet in the pod's emptyDir), succeeds on the next.
    script = (
        "import os, sys\n"
        "if not os.path.exists('/scratch/tried'):\n"
        "    open('/scratch/tried', 'w').close(); sys.exit(1)\n"
        "print('second time lucky')\n"
    )
    pod = python_pod(
        "flaky",
        namespace,
        script,
        restart_policy="OnFailure",
        volumeMounts=[{"name": "work", "mountPath": "/scratch"}],
        pod_spec={"volumes": [{"name": "work", "emptyDir": {}}]},
    )
    cluster.apply(pod)
    pod = cluster.wait_phase("flaky", namespace, "Succeeded", "Failed")
    assert pod["status"]["phase"] == "Succeeded"
    status = container_status(pod)
    assert status["restartCount"] == 1
    assert status["lastState"]["terminated"]["exitCode"] == 1
    assert status["state"]["terminated"]["exitCode"] == 0
    logs = cluster.cp.kubectl("get", "pod", "flaky", "-n", namespace)  # still listed
    assert "Completed" in logs.stdout


def test_environment_downward_api_identity_and_working_dir(cluster, namespace):
    cluster.apply(
        {
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": {"name": "settings", "namespace": namespace},
            "data": {"mode": "fast"},
        }
    )
    script = (
        "import json, os, socket\n"
        "keys = ['POD_NAME', 'POD_NAMESPACE', 'POD_IP', 'TEAM', 'MODE', 'GREETING']\n"
        "result = {k: os.environ.get(k) for k in keys}\n"
        "result.update(uid=os.getuid(), gid=os.getgid(), cwd=os.getcwd(),\n"
        "              hostname=socket.gethostname(), argv=os.environ.get('ARG'))\n"
        "open('/dev/termination-log', 'w').write(json.dumps(result))\n"
    )
    pod = python_pod(
        "env",
        namespace,
        script,
        labels={"team": "vision"},
        workingDir="/data",
        env=[
            {"name": "POD_NAME", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}},
            {
                "name": "POD_NAMESPACE",
                "valueFrom": {"fieldRef": {"fieldPath": "metadata.namespace"}},
            },
            {"name": "POD_IP", "valueFrom": {"fieldRef": {"fieldPath": "status.podIP"}}},
            {"name": "TEAM", "valueFrom": {"fieldRef": {"fieldPath": "metadata.labels['team']"}}},
            {
                "name": "MODE",
                "valueFrom": {"configMapKeyRef": {"name": "settings", "key": "mode"}},
            },
            {"name": "GREETING", "value": "hello $(POD_NAME)"},
        ],
        volumeMounts=[{"name": "data", "mountPath": "/data"}],
        pod_spec={"volumes": [{"name": "data", "emptyDir": {}}], "hostname": "envbox"},
    )
    pod["spec"]["containers"][0]["securityContext"]["runAsUser"] = 4242
    cluster.apply(pod)
    pod = cluster.wait_phase("env", namespace, "Succeeded", "Failed")
    ended = container_status(pod)["state"]["terminated"]
    assert pod["status"]["phase"] == "Succeeded", ended
    result = json.loads(ended["message"])
    assert result["POD_NAME"] == "env"
    assert result["POD_NAMESPACE"] == namespace
    assert result["POD_IP"] == pod["status"]["podIP"]
    assert result["TEAM"] == "vision"
    assert result["MODE"] == "fast"
    assert result["GREETING"] == "hello env"
    assert (result["uid"], result["gid"]) == (4242, 65532)
    assert result["cwd"] == "/data"
    assert result["hostname"] == "envbox"


def test_init_containers_run_to_completion_before_the_app(cluster, namespace):
    pod = python_pod(
        "init",
        namespace,
        "print(open('/shared/greeting').read())\n"
        "open('/dev/termination-log', 'w').write(open('/shared/greeting').read())",
        volumeMounts=[{"name": "shared", "mountPath": "/shared"}],
        pod_spec={"volumes": [{"name": "shared", "emptyDir": {}}]},
    )
    init = dict(pod["spec"]["containers"][0])
    init.update(
        name="prepare",
        command=["python", "-c", "open('/shared/greeting', 'w').write('prepared by init')"],
    )
    pod["spec"]["initContainers"] = [init]
    cluster.apply(pod)
    pod = cluster.wait_phase("init", namespace, "Succeeded", "Failed")
    assert pod["status"]["phase"] == "Succeeded"
    init_status = pod["status"]["initContainerStatuses"][0]
    assert init_status["state"]["terminated"]["exitCode"] == 0
    assert container_status(pod)["state"]["terminated"]["message"] == "prepared by init"
    assert condition(pod, "Initialized") == "True"


def test_an_image_the_node_does_not_have_waits_with_err_image_pull(cluster, namespace):
    pod = python_pod(
        "elsewhere", namespace, "print('never')", image="docker.io/library/busybox:1.36"
    )
    cluster.apply(pod)
    pod = cluster.wait_pod(
        "elsewhere",
        namespace,
        lambda p: (
            container_status(p).get("state", {}).get("waiting", {}).get("reason") == "ErrImagePull"
        ),
        what="ErrImagePull",
    )
    waiting = container_status(pod)["state"]["waiting"]
    assert "busybox" in waiting["message"]
    assert "pulls no images" in waiting["message"]
    assert pod["status"]["phase"] == "Pending"
