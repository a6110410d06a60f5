"""Hosts files in place of cluster DNS, and the service proxy's view of endpoints."""

from __future__ import annotations

from torchyard.local.agent.hosts import render_hosts, render_resolv_conf, service_entries
from torchyard.local.agent.proxy import backends, listeners


def svc(name, namespace, cluster_ip, ports=({"name": "http", "port": 80},)):
    return {
        "metadata": {"name": name, "namespace": namespace},
        "spec": {"clusterIP": cluster_ip, "ports": list(ports)},
    }


def endpoint_slice(service, namespace, endpoints, ports=({"name": "http", "port": 8080},)):
    return {
        "metadata": {
            "name": f"{service}-abc",
            "namespace": namespace,
            "labels": {"kubernetes.io/service-name": service},
        },
        "addressType": "IPv4",
        "ports": list(ports),
        "endpoints": endpoints,
    }


POD = {
    "metadata": {"name": "job-worker-1", "namespace": "ml"},
    "spec": {"hostname": "job-worker-1", "subdomain": "job"},
}


def test_hosts_has_the_pods_own_names_first():
    text = render_hosts(POD, "10.244.0.4")
    assert "127.0.0.1\tlocalhost" in text
    assert "10.244.0.4\tjob-worker-1.job.ml.svc.cluster.local job-worker-1\n" in text


def test_headless_services_resolve_to_endpoints_and_hostnames():
    services = [svc("job", "ml", "None", ({"name": "rdzv", "port": 29500},))]
    slices = [
        endpoint_slice(
            "job",
            "ml",
            [
                {
                    "addresses": ["10.244.0.3"],
                    "hostname": "job-worker-0",
                    "conditions": {"ready": True},
                },
                {"addresses": ["10.244.0.9"], "conditions": {"ready": False}},
            ],
        )
    ]
    entries = dict((names[0], ip) for ip, names in service_entries("ml", services, slices))
    assert entries["job"] == "10.244.0.3"
    assert entries["job-worker-0.job"] == "10.244.0.3"
    entries_elsewhere = [names for _, names in service_entries("other", services, slices)]
    assert (
        "job-worker-0.job.ml",
        "job-worker-0.job.ml.svc",
        "job-worker-0.job.ml.svc.cluster.local",
    ) in entries_elsewhere
    assert all(ip != "10.244.0.9" for ip, _ in service_entries("ml", services, slices))


def test_cluster_ip_services_resolve_to_their_ip_in_every_spelling():
    entries = service_entries("ml", [svc("model", "ml", "10.0.0.12")], [])
    assert entries == [
        ("10.0.0.12", ("model", "model.ml", "model.ml.svc", "model.ml.svc.cluster.local"))
    ]
    text = render_hosts(POD, "10.244.0.4", entries)
    assert "10.0.0.12\tmodel model.ml model.ml.svc model.ml.svc.cluster.local\n" in text


def test_host_aliases_and_resolv_conf():
    pod = {**POD, "spec": {**POD["spec"], "hostAliases": [{"ip": "10.1.1.1", "hostnames": ["db"]}]}}
    assert "10.1.1.1\tdb\n" in render_hosts(pod, "10.244.0.4")
    assert "search ml.svc.cluster.local" in render_resolv_conf("ml")


def test_proxy_listens_on_cluster_ips_and_forwards_to_ready_endpoints_by_port_name():
    services = [svc("model", "ml", "10.0.0.12"), svc("job", "ml", "None")]
    assert list(listeners(services)) == [("10.0.0.12", 80)]
    slices = [
        endpoint_slice(
            "model",
            "ml",
            [
                {"addresses": ["10.244.0.3"], "conditions": {"ready": True}},
                {"addresses": ["10.244.0.4"], "conditions": {"ready": False}},
                {"addresses": ["10.244.0.5"], "conditions": {}},
            ],
        ),
        endpoint_slice("model", "other", [{"addresses": ["10.244.0.6"]}]),
    ]
    service, port = listeners(services)[("10.0.0.12", 80)]
    assert backends(service, port, slices) == [("10.244.0.3", 8080), ("10.244.0.5", 8080)]
