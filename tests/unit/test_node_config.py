"""The container node's configuration, rendered without starting anything."""

from __future__ import annotations

import io
import json
import tarfile
import tomllib
from pathlib import Path

import pytest

from torchyard.local import pki
from torchyard.local.node import config, oci, packages, sweep
from torchyard.local.node.errors import NodeError
from torchyard.local.node.layout import CNI_BIN_DIR, PAUSE_IMAGE, Layout, Network

LAYOUT = Layout(Path("/state/torchyard/local/node"))
NET = Network()
CRI = "io.containerd.grpc.v1.cri"


def test_the_node_address_is_the_first_of_the_pod_subnet():
    assert NET.node_ip == "10.245.0.1"
    assert NET.prefixlen == 24


def test_containerd_keeps_everything_under_the_node_directory():
    cfg = tomllib.loads(config.containerd_toml(LAYOUT))
    assert cfg["version"] == 2
    for path in (cfg["root"], cfg["state"], cfg["grpc"]["address"]):
        assert path.startswith(str(LAYOUT.root) + "/")
    assert cfg["plugins"]["io.containerd.internal.v1.opt"]["path"].startswith(str(LAYOUT.root))


def test_containerd_has_the_three_settings_this_machine_needs():
    cri = tomllib.loads(config.containerd_toml(LAYOUT))["plugins"][CRI]
    assert cri["restrict_oom_score_adj"] is True
    assert cri["sandbox_image"] == PAUSE_IMAGE
    assert cri["cni"]["bin_dir"] == str(CNI_BIN_DIR)
    assert cri["cni"]["conf_dir"] == str(LAYOUT.cni_conf_dir)
    runc = cri["containerd"]["runtimes"]["runc"]
    assert runc["runtime_type"] == "io.containerd.runc.v2"
    assert runc["options"]["SystemdCgroup"] is False


def test_the_cni_bridge_is_the_node_bridge_with_the_node_as_gateway():
    conflist = config.cni_conflist(LAYOUT, NET)
    bridge, portmap = conflist["plugins"]
    assert (bridge["type"], bridge["bridge"], bridge["isGateway"]) == ("bridge", "tynode0", True)
    assert bridge["hairpinMode"] is True  # a pod reaches itself through its Service
    (ranges,) = bridge["ipam"]["ranges"]
    assert ranges == [{"subnet": "10.245.0.0/24", "gateway": "10.245.0.1"}]
    assert bridge["ipam"]["dataDir"].startswith(str(LAYOUT.root))
    assert portmap["type"] == "portmap"
    json.dumps(conflist)  # serializable as written


def test_the_kubelet_authenticates_and_authorizes_its_clients():
    cfg = config.kubelet_config(LAYOUT, NET)
    assert cfg["authentication"]["anonymous"]["enabled"] is False
    assert cfg["authentication"]["x509"]["clientCAFile"] == str(LAYOUT.pki / "ca.crt")
    assert cfg["authorization"]["mode"] == "Webhook"
    assert cfg["readOnlyPort"] == 0
    assert cfg["address"] == NET.node_ip


def test_the_kubelet_runs_on_cgroup_v1_and_talks_to_our_containerd():
    cfg = config.kubelet_config(LAYOUT, NET)
    assert cfg["failCgroupV1"] is False
    assert cfg["cgroupDriver"] == "cgroupfs"
    assert cfg["containerRuntimeEndpoint"] == f"unix://{LAYOUT.containerd_socket}"
    assert cfg["clusterDNS"] == [NET.node_ip]
    assert cfg["imageGCHighThresholdPercent"] == 100  # imported images are never pulled back


def test_kube_proxy_uses_iptables_for_the_pod_subnet():
    cfg = config.kube_proxy_config(LAYOUT, NET)
    assert cfg["mode"] == "iptables"
    assert cfg["clusterCIDR"] == NET.pod_cidr
    assert cfg["nodePortAddresses"] == ["10.245.0.1/32"]
    assert cfg["conntrack"]["maxPerCore"] == 0


def test_coredns_answers_on_the_node_address_for_the_cluster_domain():
    corefile = config.corefile(LAYOUT, NET, ready_port=18181)
    assert "bind 10.245.0.1" in corefile
    assert "kubernetes cluster.local in-addr.arpa ip6.arpa" in corefile
    assert f"kubeconfig {LAYOUT.kubeconfig('coredns')}" in corefile
    assert "ready 127.0.0.1:18181" in corefile
    assert corefile.count("{") == corefile.count("}")


def test_rbac_binds_coredns_and_the_api_servers_kubelet_client():
    kinds = [(o["kind"], o["metadata"]["name"]) for o in config.coredns_rbac("u")]
    assert kinds == [
        ("ClusterRole", "torchyard:coredns"),
        ("ClusterRoleBinding", "torchyard:coredns"),
    ]
    (binding,) = config.kubelet_api_rbac(pki.APISERVER_KUBELET_CLIENT_USER)
    assert binding["roleRef"]["name"] == "system:kubelet-api-admin"
    assert binding["subjects"][0]["name"] == "kube-apiserver-kubelet-client"


def _sans(cert: pki.CertKey) -> tuple[list[str], list[str]]:
    from cryptography import x509

    san = cert.cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    return san.get_values_for_type(x509.DNSName), [
        str(ip) for ip in san.get_values_for_type(x509.IPAddress)
    ]


def test_the_api_server_certificate_names_the_node_address():
    ca = pki.new_ca()
    _, ips = _sans(pki.apiserver_serving_cert(ca, NET.node_ip))
    assert ips == ["127.0.0.1", pki.KUBERNETES_SERVICE_IP, NET.node_ip]
    _, loopback = _sans(pki.apiserver_serving_cert(ca))
    assert loopback == ["127.0.0.1", pki.KUBERNETES_SERVICE_IP]


def test_the_kubelet_certificates_carry_the_node_identity():
    ca = pki.new_ca()
    names, ips = _sans(pki.kubelet_serving_cert(ca, "torchyard-node", NET.node_ip))
    assert (names, ips) == (["torchyard-node"], [NET.node_ip])
    client = pki.node_client_cert(ca, "torchyard-node").cert.subject.rfc4514_string()
    assert client == "CN=system:node:torchyard-node,O=system:nodes"


def test_an_oci_archive_names_its_image_and_carries_its_layer():
    layer = oci.Layer(files={"pause": (b"\x7fELF", 0o755)}, dirs={"tmp": 0o1777},
                      symlinks={"bin/sh": "busybox"})  # fmt: skip
    with tarfile.open(fileobj=io.BytesIO(oci.image_archive(PAUSE_IMAGE, [layer]))) as archive:
        index = json.load(archive.extractfile("index.json"))  # type: ignore[arg-type]
        (entry,) = index["manifests"]
        assert entry["annotations"]["io.containerd.image.name"] == PAUSE_IMAGE
        assert entry["annotations"]["org.opencontainers.image.ref.name"] == "3.10"
        blob = archive.extractfile(f"blobs/sha256/{entry['digest'].split(':')[1]}")
        manifest = json.load(blob)  # type: ignore[arg-type]
        digest = manifest["layers"][0]["digest"].split(":")[1]
        layer_tar = archive.extractfile(f"blobs/sha256/{digest}").read()  # type: ignore[union-attr]
    with tarfile.open(fileobj=io.BytesIO(layer_tar)) as files:
        assert files.getmember("pause").mode == 0o755
        assert files.getmember("tmp").mode == 0o1777
        assert files.getmember("bin/sh").linkname == "busybox"


def test_mounts_under_the_node_are_unmounted_deepest_first():
    mountinfo = "\n".join(
        f"{i} 1 0:1 / {point} rw - tmpfs tmpfs rw"
        for i, point in enumerate(
            ["/", "/state/node/kubelet/pods/x", "/state/node/kubelet/pods/x/vol", "/state/nodex",
             "/state/node/with\\040space"]
        )
    )  # fmt: skip
    assert sweep.mounts_under(mountinfo, Path("/state/node")) == [
        "/state/node/kubelet/pods/x/vol",
        "/state/node/kubelet/pods/x",
        "/state/node/with space",
    ]


def test_missing_packages_are_named_once_each():
    requirements = [
        packages.Requirement("containerd", "containerd"),
        packages.Requirement("ctr", "containerd"),
        packages.Requirement("runc", "runc"),
        packages.Requirement("/usr/lib/cni/bridge", "containernetworking-plugins"),
    ]
    assert packages.missing_packages(requirements, lambda f: f == "runc") == [
        "containerd",
        "containernetworking-plugins",
    ]
    assert packages.install_command(["runc"]).startswith("apt-get update && apt-get install -y")


def test_every_requirement_names_a_debian_package():
    assert all(r.package for r in packages.REQUIREMENTS)
    assert any(r.file.endswith("/bridge") for r in packages.REQUIREMENTS)


def test_the_kubelets_iptables_chains_are_removed_jumps_first():
    rules = "\n".join(
        [
            "-P INPUT ACCEPT",
            "-N KUBE-FIREWALL",
            "-N KUBE-KUBELET-CANARY",
            "-N OTHER",
            "-A INPUT -j KUBE-FIREWALL",
            "-A OUTPUT -j KUBE-FIREWALL",
            "-A OTHER -j ACCEPT",
            '-A KUBE-FIREWALL ! -s 127.0.0.0/8 -d 127.0.0.0/8 -m comment --comment "x" -j DROP',
        ]
    )
    assert sweep.kubelet_rule_commands("filter", rules) == [
        ["-t", "filter", "-D", "INPUT", "-j", "KUBE-FIREWALL"],
        ["-t", "filter", "-D", "OUTPUT", "-j", "KUBE-FIREWALL"],
        ["-t", "filter", "-F", "KUBE-FIREWALL"],
        ["-t", "filter", "-F", "KUBE-KUBELET-CANARY"],
        ["-t", "filter", "-X", "KUBE-FIREWALL"],
        ["-t", "filter", "-X", "KUBE-KUBELET-CANARY"],
    ]


def test_without_root_missing_packages_are_one_clear_error(monkeypatch):
    monkeypatch.setattr(packages.os, "geteuid", lambda: 1000)
    needed = [packages.Requirement("/nonexistent/containerd", "containerd")]
    with pytest.raises(NodeError, match="apt-get install -y --no-install-recommends containerd"):
        packages.ensure(lambda _: None, needed)
