"""Volumes: a claim shared by two pods, and no other user of the node; ConfigMap, Secret and
downward API files."""

from __future__ import annotations

import base64
import json
from pathlib import Path

import pytest

from tests.e2e.conftest import container_status, python_pod

pytestmark = pytest.mark.e2e


def _claim(name, namespace):
    return {
        "apiVersion": "v1",
        "kind": "PersistentVolumeClaim",
        "metadata": {"name": name, "namespace": namespace},
        "spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "1Gi"}}},
    }


def _with_claim(pod, claim):
    # A failing script's traceback becomes the termination message the assertion shows.
    pod["spec"]["containers"][0]["terminationMessagePolicy"] = "FallbackToLogsOnError"
    pod["spec"]["volumes"] = [{"name": "models", "persistentVolumeClaim": {"claimName": claim}}]
    pod["spec"]["containers"][0]["volumeMounts"] = [
        {"name": "models", "mountPath": "/mnt/pvc/models"}
    ]
    return pod


def test_two_pods_sharing_a_claim_see_each_others_files(cluster, namespace):
    cluster.apply(_claim("models", namespace))
    writer = _with_claim(
        python_pod(
            "writer",
            namespace,
            "open('/mnt/pvc/models/weights.txt', 'w').write('written by writer')",
        ),
        "models",
    )
    cluster.apply(writer)
    pod = cluster.wait_phase("writer", namespace, "Succeeded", "Failed", timeout=90)
    assert pod["status"]["phase"] == "Succeeded", json.dumps(pod["status"], indent=1)
    reader = _with_claim(
        python_pod(
            "reader",
            namespace,
            "import os\n"
            "data = open('/mnt/pvc/models/weights.txt').read()\n"
            "open('/mnt/pvc/models/reply.txt', 'w').write('read by reader')\n"
            "open('/dev/termination-log', 'w').write(data)",
        ),
        "models",
    )
    cluster.apply(reader)
    pod = cluster.wait_phase("reader", namespace, "Succeeded", "Failed")
    ended = container_status(pod)["state"]["terminated"]
    assert pod["status"]["phase"] == "Succeeded", json.dumps(pod["status"], indent=1)
    assert ended["message"] == "written by writer"
    claim = json.loads(
        cluster.cp.kubectl("get", "pvc", "models", "-n", namespace, "-o", "json").stdout
    )
    assert claim["status"]["phase"] == "Bound"
    assert claim["spec"]["storageClassName"] == "torchyard-local"


def test_config_map_secret_and_downward_api_volumes(cluster, namespace):
    cluster.apply(
        {
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": {"name": "config", "namespace": namespace},
            "data": {"batch_size": "32"},
        },
        {
            "apiVersion": "v1",
            "kind": "Secret",
            "metadata": {"name": "token", "namespace": namespace},
            "data": {"key": base64.b64encode(b"s3cret").decode()},
        },
    )
    script = (
        "import json\n"
        "read = lambda p: open(p).read()\n"
        "result = {'batch': read('/etc/config/batch_size'), 'key': read('/etc/token/key'),\n"
        "          'name': read('/etc/info/name'), 'labels': read('/etc/info/labels')}\n"
        "open('/dev/termination-log', 'w').write(json.dumps(result))\n"
    )
    pod = python_pod(
        "files",
        namespace,
        script,
        labels={"tier": "gold"},
        volumeMounts=[
            {"name": "config", "mountPath": "/etc/config"},
            {"name": "token", "mountPath": "/etc/token"},
            {"name": "info", "mountPath": "/etc/info"},
        ],
        pod_spec={
            "volumes": [
                {"name": "config", "configMap": {"name": "config"}},
                {"name": "token", "secret": {"secretName": "token"}},
                {
                    "name": "info",
                    "downwardAPI": {
                        "items": [
                            {"path": "name", "fieldRef": {"fieldPath": "metadata.name"}},
                            {"path": "labels", "fieldRef": {"fieldPath": "metadata.labels"}},
                        ]
                    },
                },
            ]
        },
    )
    cluster.apply(pod)
    pod = cluster.wait_phase("files", namespace, "Succeeded", "Failed")
    ended = container_status(pod)["state"]["terminated"]
    assert pod["status"]["phase"] == "Succeeded", json.dumps(pod["status"], indent=1)
    assert json.loads(ended["message"]) == {
        "batch": "32",
        "key": "s3cret",
        "name": "files",
        "labels": 'tier="gold"',
    }


def test_a_claim_belongs_to_its_pods_fs_group_and_no_other_user_of_the_node(cluster, namespace):
    cluster.apply(
        {
            "apiVersion": "v1",
            "kind": "PersistentVolumeClaim",
            "metadata": {"name": "models", "namespace": namespace},
            "spec": {
                "accessModes": ["ReadWriteOnce"],
                "resources": {"requests": {"storage": "1Gi"}},
            },
        }
    )
    writer = python_pod(
        "writer",
        namespace,
        "open('/mnt/models/weights', 'w').write('w')",
        volumeMounts=[{"name": "models", "mountPath": "/mnt/models"}],
        pod_spec={
            "volumes": [{"name": "models", "persistentVolumeClaim": {"claimName": "models"}}]
        },
    )
    cluster.apply(writer)
    pod = cluster.wait_phase("writer", namespace, "Succeeded", "Failed", timeout=90)
    assert pod["status"]["phase"] == "Succeeded", pod["status"]
    claim = json.loads(
        cluster.cp.kubectl("get", "pvc", "models", "-n", namespace, "-o", "json").stdout
    )
    volume = json.loads(
        cluster.cp.kubectl("get", "pv", claim["spec"]["volumeName"], "-o", "json").stdout
    )
    path = Path(volume["spec"]["local"]["path"])
    st = path.stat()
    assert st.st_mode & 0o007 == 0, oct(st.st_mode)  # nothing for the node's other users
    assert st.st_gid == 65532 and st.st_mode & 0o2070 == 0o2070, (st.st_gid, oct(st.st_mode))
    for parent in (path.parent, path.parent.parent):  # <state>/pvc/<namespace>
        assert parent.stat().st_mode & 0o777 == 0o700, (parent, oct(parent.stat().st_mode))
    assert (path / "weights").stat().st_uid == 65532
