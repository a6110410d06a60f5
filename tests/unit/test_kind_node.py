"""The kind node image made here (scripts/images kind-node): the names of its preloaded
images, the cluster config that goes with it, and the files it adds to kind's."""

import ipaddress
import json
from pathlib import Path

import pytest
import yaml

from torchyard.imagebuild import kindnode
from torchyard.imagebuild.build import ImageBuildError
from torchyard.imagebuild.kindnode import Versions

REPO = Path(__file__).resolve().parents[2]
NODE = REPO / "images" / "kind-node"
PINNED = kindnode.pinned_versions(REPO / "controlplane")


def test_versions_are_read_from_the_wrapper_modules():
    assert PINNED.kubernetes.startswith("v1.")
    assert PINNED.etcd.startswith("v3.")
    assert PINNED.coredns.startswith("v1.")


def test_a_module_go_mod_does_not_require_is_named():
    with pytest.raises(ImageBuildError, match=r"does not require example\.com/x"):
        kindnode.required_version("module m\n\nrequire a.b/c v1.0.0\n", "example.com/x")
    assert kindnode.required_version("require a.b/c v1.2.3\n", "a.b/c") == "v1.2.3"


def test_kubeadm_finds_the_control_plane_under_its_own_names():
    tags = kindnode.control_plane_tags(Versions("v1.35.4", "v3.6.5", "v1.14.7"))
    assert "registry.k8s.io/kube-apiserver:v1.35.4" in tags
    assert "registry.k8s.io/kube-proxy:v1.35.4" in tags
    assert f"{kindnode.REPOSITORY}/etcd:v3.6.5" in tags


def test_the_cluster_config_names_the_etcd_and_coredns_the_modules_build():
    config = kindnode.CLUSTER_CONFIG.read_text()
    assert kindnode.config_mismatches(config, PINNED) == []
    stale = Versions(PINNED.kubernetes, "v3.0.0", PINNED.coredns)
    assert kindnode.config_mismatches(config, stale) == ["etcd: no `imageTag: v3.0.0`"]


def test_the_cluster_config_lets_the_kubelet_run_on_cgroup_v1():
    config = yaml.safe_load(kindnode.CLUSTER_CONFIG.read_text())
    patches = [yaml.safe_load(patch) for patch in config["kubeadmConfigPatches"]]
    kubelet = next(p for p in patches if p["kind"] == "KubeletConfiguration")
    assert kubelet["failCgroupV1"] is False
    cluster = next(p for p in patches if p["kind"] == "ClusterConfiguration")
    assert cluster["etcd"]["local"]["imageTag"] == PINNED.etcd
    assert cluster["dns"]["imageTag"] == PINNED.coredns


def test_the_storage_manifest_runs_the_preloaded_provisioner_and_helper():
    documents = list(yaml.safe_load_all((NODE / "torchyard/kind/manifests/default-storage.yaml")
                                        .read_text()))  # fmt: skip
    deployment = next(d for d in documents if d and d["kind"] == "Deployment")
    container = deployment["spec"]["template"]["spec"]["containers"][0]
    assert container["image"] == kindnode.PROVISIONER_IMAGE
    assert container["command"][container["command"].index("--helper-image") + 1] == (
        kindnode.HELPER_IMAGE
    )
    storage_class = next(d for d in documents if d and d["kind"] == "StorageClass")
    assert (
        storage_class["metadata"]["annotations"]["storageclass.kubernetes.io/is-default-class"]
        == "true"
    )


def test_the_pod_network_is_the_first_node_s_share_of_kind_s_pod_subnet():
    conflist = json.loads((NODE / "torchyard/etc/cni/net.d/10-kind-bridge.conflist").read_text())
    (subnet,) = [r["subnet"] for ranges in conflist["plugins"][0]["ipam"]["ranges"] for r in ranges]
    # kind's default podSubnet; the controller manager gives the first node its first /24.
    assert ipaddress.ip_network(subnet) == next(
        ipaddress.ip_network("10.244.0.0/16").subnets(new_prefix=24)
    )


def test_the_node_image_names_the_pause_image_it_preloads():
    containerfile = (NODE / "Containerfile").read_text()
    assert f'sandbox_image = "{kindnode.PAUSE_IMAGE}"' in containerfile


def test_the_input_key_follows_every_file_and_extra(tmp_path):
    (tmp_path / "a").write_text("1")
    first = kindnode.tree_key(tmp_path, "x")
    assert kindnode.tree_key(tmp_path, "x") == first
    assert kindnode.tree_key(tmp_path, "y") != first
    (tmp_path / "a").write_text("2")
    assert kindnode.tree_key(tmp_path, "x") != first
