"""Each pod has its own network namespace and IP: two pods listen on the same port side
by side, and pods find each other under a headless Service and through a ClusterIP."""

from __future__ import annotations

import json

import pytest

from tests.e2e.conftest import container_status, python_pod

pytestmark = pytest.mark.e2e

SERVE = (
    "import http.server, os, socket\n"
    "class Hello(http.server.BaseHTTPRequestHandler):\n"
    "    def do_GET(self):\n"
    "        body = f'{socket.gethostname()} {os.environ[\"POD_IP\"]}'.encode()\n"
    "        self.send_response(200); self.end_headers(); self.wfile.write(body)\n"
    "    def log_message(self, *args):\n"
    "        pass\n"
    "http.server.HTTPServer(('0.0.0.0', 8080), Hello).serve_forever()\n"
)
POD_IP = {"name": "POD_IP", "valueFrom": {"fieldRef": {"fieldPath": "status.podIP"}}}


def _server(name, namespace, **extra):
    return python_pod(
        name,
        namespace,
        SERVE,
        restart_policy="Always",
        env=[POD_IP],
        ports=[{"name": "http", "containerPort": 8080}],
        readinessProbe={"tcpSocket": {"port": 8080}, "periodSeconds": 1},
        **extra,
    )


def _fetch(cluster, name, namespace, url):
    script = (
        "import urllib.request\n"
        f"reply = urllib.request.urlopen({url!r}, timeout=10).read().decode()\n"
        "open('/dev/termination-log', 'w').write(reply)\n"
    )
    cluster.apply(python_pod(name, namespace, script))
    pod = cluster.wait_phase(name, namespace, "Succeeded", "Failed")
    ended = container_status(pod)["state"]["terminated"]
    assert pod["status"]["phase"] == "Succeeded", ended
    return ended["message"]


def _ready(pod):
    return any(
        c["type"] == "Ready" and c["status"] == "True" for c in pod["status"].get("conditions", [])
    )


def test_two_pods_listen_on_the_same_port_side_by_side(cluster, namespace):
    cluster.apply(_server("a", namespace), _server("b", namespace))
    a = cluster.wait_pod("a", namespace, _ready, what="Ready")
    b = cluster.wait_pod("b", namespace, _ready, what="Ready")
    assert a["status"]["podIP"] != b["status"]["podIP"]
    for pod in (a, b):
        ip = pod["status"]["podIP"]
        reply = _fetch(cluster, f"get-{pod['metadata']['name']}", namespace, f"http://{ip}:8080/")
        assert reply == f"{pod['metadata']['name']} {ip}"


def test_a_pod_reaches_another_by_hostname_subdomain_and_service_ip(cluster, namespace):
    labels = {"app": "model"}
    cluster.apply(
        {
            "apiVersion": "v1",
            "kind": "Service",
            "metadata": {"name": "workers", "namespace": namespace},
            "spec": {
                "clusterIP": "None",
                "selector": labels,
                "ports": [{"name": "http", "port": 8080}],
            },
        },
        {
            "apiVersion": "v1",
            "kind": "Service",
            "metadata": {"name": "model", "namespace": namespace},
            "spec": {"selector": labels, "ports": [{"port": 80, "targetPort": "http"}]},
        },
        _server(
            "server-0",
            namespace,
            labels=labels,
            pod_spec={"hostname": "worker-0", "subdomain": "workers"},
        ),
    )
    server = cluster.wait_pod("server-0", namespace, _ready, what="Ready")
    ip = server["status"]["podIP"]
    reply = _fetch(cluster, "by-name", namespace, "http://worker-0.workers:8080/")
    assert reply == f"worker-0 {ip}"
    fqdn = f"http://worker-0.workers.{namespace}.svc.cluster.local:8080/"
    assert _fetch(cluster, "by-fqdn", namespace, fqdn) == f"worker-0 {ip}"
    # A ClusterIP Service: the agent's proxy forwards port 80 to the ready pod's 8080.
    assert _fetch(cluster, "by-service", namespace, "http://model/") == f"worker-0 {ip}"
    service = json.loads(
        cluster.cp.kubectl("get", "svc", "model", "-n", namespace, "-o", "json").stdout
    )
    cluster_ip = service["spec"]["clusterIP"]
    assert _fetch(cluster, "by-ip", namespace, f"http://{cluster_ip}/") == f"worker-0 {ip}"
