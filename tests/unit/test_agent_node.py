"""The node's objects (Node, Lease), its network plan, volumes for claims, logs, events."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from torchyard.local.agent.config import AgentConfig
from torchyard.local.agent.events import Recorder, event_manifest
from torchyard.local.agent.informer import Informer
from torchyard.local.agent.launcher import agent_argv, cluster_objects, node_ready
from torchyard.local.agent.logs import LogsError, log_file
from torchyard.local.agent.network import Allocator, Network, NetworkError, Subnet, pod_mac
from torchyard.local.agent.node import (
    HostFacts,
    capacity,
    lease_manifest,
    node_manifest,
    node_status,
)
from torchyard.local.agent.provisioner import claim_dir, reclaimable, volume_manifest, wants_volume

CONFIG = AgentConfig(
    kubeconfig=Path("n"), infra_kubeconfig=Path("i"), node_name="n1", pod_cidr="10.244.9.0/24"
)
FACTS = HostFacts(2, 8 * 2**30, 100 * 2**30, "6.1", "Debian", "boot", "machine", "amd64")


def test_node_reports_real_capacity_and_is_ready():
    manifest = node_manifest(CONFIG, FACTS)
    assert manifest["metadata"]["labels"]["kubernetes.io/hostname"] == "n1"
    assert manifest["spec"]["podCIDR"] == "10.244.9.0/24"
    status = node_status(CONFIG, FACTS, "10.244.9.1", True, 100.0, 50.0)
    assert status["capacity"] == {
        "cpu": "2",
        "memory": "8388608Ki",
        "ephemeral-storage": "104857600Ki",
        "pods": "110",
    }
    ready = next(c for c in status["conditions"] if c["type"] == "Ready")
    assert ready["status"] == "True" and ready["reason"] == "KubeletReady"
    assert status["addresses"][0] == {"type": "InternalIP", "address": "10.244.9.1"}
    stopped = node_status(CONFIG, FACTS, "10.244.9.1", False, 100.0, 100.0)
    assert next(c for c in stopped["conditions"] if c["type"] == "Ready")["status"] == "False"
    assert capacity(CONFIG, FACTS)["cpu"] == "2"


def test_lease_is_owned_by_the_node():
    lease = lease_manifest("n1", "uid-1", 40, 0.5)
    assert lease["metadata"]["namespace"] == "kube-node-lease"
    assert lease["metadata"]["ownerReferences"][0]["uid"] == "uid-1"
    assert lease["spec"] == {
        "holderIdentity": "n1",
        "leaseDurationSeconds": 40,
        "renewTime": "1970-01-01T00:00:00.500000Z",
    }


def test_subnet_reserves_node_and_proxy_addresses_and_allocates_in_turn():
    subnet = Subnet("10.244.9.0/24")
    assert (subnet.gateway, subnet.proxy) == ("10.244.9.1", "10.244.9.2")
    allocator = Allocator(subnet)
    a, b = allocator.allocate("pod-a"), allocator.allocate("pod-b")
    assert (a, b) == ("10.244.9.3", "10.244.9.4")
    assert allocator.allocate("pod-a") == a
    allocator.release(a)
    # An address just released is not given again while others are free: connections to
    # the pod that had it must not reach a new one.
    assert allocator.allocate("pod-c") == "10.244.9.5"
    last = [allocator.allocate(f"pod-{n}") for n in range(249)][-1]
    assert last == "10.244.9.254"
    assert allocator.allocate("pod-wraps") == a  # round the subnet, the one free left
    with pytest.raises(NetworkError):
        allocator.allocate("one-too-many")
    tiny = Allocator(Subnet("10.0.0.0/30"))
    with pytest.raises(NetworkError):
        tiny.allocate("x")


def test_a_pod_s_mac_is_made_from_its_ip_so_a_reused_ip_keeps_its_neighbours_right():
    assert pod_mac("10.244.9.3") == "02:42:0a:f4:09:03"
    assert pod_mac("10.244.9.3") != pod_mac("10.244.9.4")


def test_network_names_fit_linux_limits():
    network = Network("tyagent0", Subnet("10.244.0.0/24"), "tya")
    assert network.netns_name("1234") == "tya-1234"
    assert len(network.veth_name(65535)) <= 15


def claim(**spec):
    return {
        "metadata": {"name": "models", "namespace": "ml", "uid": "abcdef12-3456"},
        "spec": {
            "accessModes": ["ReadWriteMany"],
            "resources": {"requests": {"storage": "5Gi"}},
            **spec,
        },
        "status": {"phase": "Pending"},
    }


def test_provisioner_serves_pending_claims_of_its_class_or_none():
    assert wants_volume(claim(), "torchyard-local", "torchyard.io/local-path")
    assert wants_volume(claim(storageClassName="torchyard-local"), "torchyard-local", "p")
    assert not wants_volume(claim(storageClassName="fast-ssd"), "torchyard-local", "p")
    assert not wants_volume(claim(volumeName="pv-1"), "torchyard-local", "p")


def test_volumes_are_pre_bound_local_volumes_pinned_to_the_node(tmp_path):
    path = claim_dir(tmp_path, claim())
    assert path == tmp_path / "ml" / "models-abcdef12"
    pv = volume_manifest(claim(), path, "n1", "torchyard.io/local-path")
    spec = pv["spec"]
    assert pv["metadata"]["name"] == "pvc-abcdef12-3456"
    assert spec["claimRef"]["uid"] == "abcdef12-3456"
    assert spec["capacity"] == {"storage": "5Gi"}
    assert spec["accessModes"] == ["ReadWriteMany"]
    assert spec["local"] == {"path": str(path)}
    term = spec["nodeAffinity"]["required"]["nodeSelectorTerms"][0]["matchExpressions"][0]
    assert term["values"] == ["n1"]


def test_only_released_volumes_of_ours_inside_the_root_are_reclaimed(tmp_path):
    pv = volume_manifest(claim(), tmp_path / "ml" / "models", "n1", "p")
    pv["status"] = {"phase": "Released"}
    assert reclaimable(pv, "p", tmp_path) == (tmp_path / "ml" / "models").resolve()
    assert reclaimable(pv, "someone-else", tmp_path) is None
    outside = volume_manifest(claim(), Path("/etc"), "n1", "p")
    outside["status"] = {"phase": "Released"}
    assert reclaimable(outside, "p", tmp_path) is None
    pv["status"] = {"phase": "Bound"}
    assert reclaimable(pv, "p", tmp_path) is None


def test_launcher_grants_only_what_the_node_authorizer_does_not():
    role, binding, storage_class = cluster_objects()
    resources = {r for rule in role["rules"] for r in rule["resources"]}
    assert resources == {
        "services",
        "endpointslices",
        "persistentvolumeclaims",
        "persistentvolumes",
        "events",
    }
    assert "pods" not in resources and "secrets" not in resources
    assert binding["subjects"][0]["name"] == "torchyard:local-agent"
    assert (
        storage_class["metadata"]["annotations"]["storageclass.kubernetes.io/is-default-class"]
        == "true"
    )
    argv = agent_argv(Path("a"), Path("b"), Path("/s"), "n1", ["--image=x"])
    assert argv[1:3] == ["-m", "torchyard.local.agent"] and argv[-1] == "--image=x"


def test_node_ready_needs_the_condition_and_no_scheduling_taint():
    ready = {"status": {"conditions": [{"type": "Ready", "status": "True"}]}}
    assert node_ready(ready)
    assert not node_ready(
        {
            **ready,
            "spec": {"taints": [{"key": "node.kubernetes.io/not-ready", "effect": "NoSchedule"}]},
        }
    )
    assert not node_ready({"status": {"conditions": [{"type": "Ready", "status": "False"}]}})


def test_logs_pick_the_newest_pod_and_the_run(tmp_path):
    base = tmp_path / "ml_trainer_uid1" / "containers"
    for container, runs in (("main", 3), ("sidecar", 1)):
        (base / container).mkdir(parents=True)
        for run in range(runs):
            (base / container / f"{run}.log").write_text(f"{container} run {run}")
    assert log_file(tmp_path, "ml", "trainer", "main", False).read_text() == "main run 2"
    assert log_file(tmp_path, "ml", "trainer", "main", True).read_text() == "main run 1"
    with pytest.raises(LogsError, match="choose one of: \\[main sidecar\\]"):
        log_file(tmp_path, "ml", "trainer", None, False)
    with pytest.raises(LogsError, match="previous terminated"):
        log_file(tmp_path, "ml", "trainer", "sidecar", True)
    with pytest.raises(LogsError, match="not found"):
        log_file(tmp_path, "ml", "other", None, False)


def test_events_name_the_pod_and_repeats_are_dropped():
    pod = {"metadata": {"name": "p", "namespace": "ml", "uid": "u"}}
    event = event_manifest(pod, "n1", "Warning", "BackOff", "back-off", 0)
    assert event["involvedObject"] == {
        "apiVersion": "v1",
        "kind": "Pod",
        "name": "p",
        "namespace": "ml",
        "uid": "u",
    }
    assert event["source"] == {"component": "kubelet", "host": "n1"}
    posted = []

    async def post(manifest):
        posted.append(manifest["reason"])

    async def main():
        recorder = Recorder("n1", post)
        recorder.emit(pod, "Warning", "Unhealthy", "probe failed")
        recorder.emit(pod, "Warning", "Unhealthy", "probe failed")
        recorder.emit(pod, "Normal", "Started", "started")
        await recorder.drain()

    asyncio.run(main())
    assert posted == ["Unhealthy", "Started"]


class FakeApi:
    """Lists once with two pods, then watches: one modified, then the watch breaks."""

    def __init__(self):
        self.lists = [
            [pod_obj("a", "1"), pod_obj("b", "1")],
            [pod_obj("a", "2")],
        ]

    async def list(self, kind, namespace, fields):
        return self.lists.pop(0), "10"

    async def watch(self, kind, version, namespace, fields):
        yield "MODIFIED", pod_obj("a", "2")
        raise ConnectionError("watch broke")


def pod_obj(name, version):
    return {"metadata": {"name": name, "uid": name, "resourceVersion": version}}


def test_informer_relists_after_an_error_and_reports_what_vanished():
    seen = []
    api = FakeApi()

    async def main():
        informer = Informer(
            api, "Pod", lambda e, old, new: seen.append((e, (new or old)["metadata"]["name"]))
        )
        task = asyncio.ensure_future(informer.run())
        while api.lists:
            await asyncio.sleep(0.01)
        await asyncio.sleep(0.05)
        task.cancel()
        return informer

    informer = asyncio.run(main())
    assert seen == [("ADDED", "a"), ("ADDED", "b"), ("MODIFIED", "a"), ("DELETED", "b")]
    assert list(informer.objects) == ["a"]
