"""Probes drive readiness (and so EndpointSlices) and restarts."""

from __future__ import annotations

import json
import time

import pytest

from tests.e2e.conftest import condition, container_status, python_pod

pytestmark = pytest.mark.e2e

# Serves /ready with 503 until the file /state/ready exists, then 200.
SERVE = (
    "import http.server, os\n"
    "class Ready(http.server.BaseHTTPRequestHandler):\n"
    "    def do_GET(self):\n"
    "        ok = os.path.exists('/state/ready')\n"
    "        self.send_response(200 if ok else 503); self.end_headers()\n"
    "    def log_message(self, *args):\n"
    "        pass\n"
    "http.server.HTTPServer(('0.0.0.0', 8080), Ready).serve_forever()\n"
)


def _endpoint_ready(cluster, namespace):
    slices = json.loads(
        cluster.cp.kubectl(
            "get", "endpointslices", "-n", namespace, "-l", "kubernetes.io/service-name=gated",
            "-o", "json",
        ).stdout
    )["items"]  # fmt: skip
    states = [
        (e.get("conditions") or {}).get("ready") for es in slices for e in es.get("endpoints") or []
    ]
    return states[0] if states else None


def test_a_readiness_probe_gates_ready_and_the_endpoint_slice(cluster, namespace):
    labels = {"app": "gated"}
    pod = python_pod(
        "gated",
        namespace,
        SERVE,
        restart_policy="Always",
        labels=labels,
        readinessProbe={
            "httpGet": {"path": "/ready", "port": "http"},
            "periodSeconds": 1,
            "failureThreshold": 1,
        },
        ports=[{"name": "http", "containerPort": 8080}],
        volumeMounts=[{"name": "state", "mountPath": "/state"}],
        pod_spec={"volumes": [{"name": "state", "emptyDir": {}}]},
    )
    service = {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": "gated", "namespace": namespace},
        "spec": {"selector": labels, "ports": [{"port": 8080}]},
    }
    cluster.apply(service, pod)
    pod = cluster.wait_pod("gated", namespace, lambda p: p["status"].get("phase") == "Running")
    # Running, probed, not ready: the endpoint is published as not ready.
    time.sleep(2.5)
    pod = cluster.pod("gated", namespace)
    assert condition(pod, "Ready") == "False"
    assert container_status(pod)["ready"] is False
    deadline = time.monotonic() + 30
    while _endpoint_ready(cluster, namespace) is not False:
        assert time.monotonic() < deadline, "no not-ready endpoint for the pod"
        time.sleep(0.2)

    # Become ready from the inside: write the file into the pod's emptyDir on the node.
    volume = next(cluster.state_dir.glob(f"pods/{namespace}_gated_*/volumes/empty-dir/state"))
    (volume / "ready").write_text("yes")
    cluster.wait_pod("gated", namespace, lambda p: condition(p, "Ready") == "True", what="Ready")
    deadline = time.monotonic() + 30
    while _endpoint_ready(cluster, namespace) is not True:
        assert time.monotonic() < deadline, "the endpoint never became ready"
        time.sleep(0.2)


def test_a_failing_liveness_probe_restarts_the_container(cluster, namespace):
    # Nothing listens on 9999: the liveness probe fails, the container is restarted.
    pod = python_pod(
        "unlively",
        namespace,
        "import time; print('started', flush=True); time.sleep(600)",
        restart_policy="Always",
        livenessProbe={
            "tcpSocket": {"port": 9999},
            "periodSeconds": 1,
            "failureThreshold": 2,
        },
    )
    cluster.apply(pod)
    pod = cluster.wait_pod(
        "unlively",
        namespace,
        lambda p: container_status(p).get("restartCount", 0) >= 1,
        timeout=60,
        what="a restart",
    )
    last = container_status(pod)["lastState"]["terminated"]
    # SIGTERM from the kubelet's kill: 128 + 15.
    assert last["exitCode"] == 143
    events = cluster.cp.kubectl(
        "get", "events", "-n", namespace, "--field-selector", "involvedObject.name=unlively"
    ).stdout
    assert "Liveness probe failed" in events
    assert "failed liveness probe, will be restarted" in events
