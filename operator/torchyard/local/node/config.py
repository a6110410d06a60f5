"""The container node's configuration files, rendered by pure functions.

containerd: a version 2 config written from scratch (not `containerd config default`)
with the three settings this kind of machine needs (notes in docs/node.md):
`restrict_oom_score_adj` (root without CAP_SYS_RESOURCE cannot lower oom_score_adj),
the locally built pause image, and Debian's CNI plugins in /usr/lib/cni.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from torchyard.local.node.layout import (
    CLUSTER_DOMAIN,
    CNI_BIN_DIR,
    NODE_NAME,
    PAUSE_IMAGE,
    Layout,
    Network,
)

KUBELET_PORT = 10250
CNI_NETWORK = "torchyard"


def _toml_string(value: str | Path) -> str:
    return json.dumps(str(value))  # a JSON string is a valid TOML basic string


def containerd_toml(layout: Layout, runc: Path = Path("/usr/sbin/runc")) -> str:
    """containerd's config: its own root, state and socket under the node's directory."""
    cri = 'plugins."io.containerd.grpc.v1.cri"'
    return "\n".join(
        [
            "version = 2",
            f"root = {_toml_string(layout.containerd_root)}",
            f"state = {_toml_string(layout.containerd_state)}",
            # Snapshotters that cannot work here only log errors at start.
            'disabled_plugins = ["io.containerd.snapshotter.v1.aufs", '
            '"io.containerd.snapshotter.v1.btrfs", "io.containerd.snapshotter.v1.zfs", '
            '"io.containerd.snapshotter.v1.devmapper", "io.containerd.tracing.processor.v1.otlp"]',
            "",
            "[grpc]",
            f"  address = {_toml_string(layout.containerd_socket)}",
            "[ttrpc]",
            f"  address = {_toml_string(str(layout.containerd_socket) + '.ttrpc')}",
            "[metrics]",
            '  address = ""',
            "",
            '[plugins."io.containerd.internal.v1.opt"]',
            f"  path = {_toml_string(layout.containerd_root / 'opt')}",
            "",
            f"[{cri}]",
            f"  sandbox_image = {_toml_string(PAUSE_IMAGE)}",
            "  restrict_oom_score_adj = true",
            "  enable_selinux = false",
            '  stream_server_address = "127.0.0.1"',
            '  stream_server_port = "0"',
            f"[{cri}.containerd]",
            '  snapshotter = "overlayfs"',
            '  default_runtime_name = "runc"',
            f"[{cri}.containerd.runtimes.runc]",
            '  runtime_type = "io.containerd.runc.v2"',
            f"[{cri}.containerd.runtimes.runc.options]",
            f"  BinaryName = {_toml_string(runc)}",
            "  SystemdCgroup = false",
            f"[{cri}.cni]",
            f"  bin_dir = {_toml_string(CNI_BIN_DIR)}",
            f"  conf_dir = {_toml_string(layout.cni_conf_dir)}",
            "  max_conf_num = 1",
            "",
        ]
    )


def cni_conflist(layout: Layout, network: Network) -> dict[str, Any]:
    """A bridge whose gateway is the node address, host-local addresses, portmap.

    containerd adds the loopback plugin by itself. hairpinMode lets a pod reach itself
    through its own Service; ipMasq lets pods reach addresses outside the node.
    """
    return {
        "cniVersion": "1.0.0",
        "name": CNI_NETWORK,
        "plugins": [
            {
                "type": "bridge",
                "bridge": network.bridge,
                "isGateway": True,
                "ipMasq": True,
                "hairpinMode": True,
                "ipam": {
                    "type": "host-local",
                    "ranges": [[{"subnet": network.pod_cidr, "gateway": network.node_ip}]],
                    "routes": [{"dst": "0.0.0.0/0"}],
                    "dataDir": str(layout.cni_data_dir),
                },
            },
            {"type": "portmap", "capabilities": {"portMappings": True}},
        ],
    }


def kubelet_config(layout: Layout, network: Network) -> dict[str, Any]:
    """The KubeletConfiguration: cgroup v1 allowed, clients authenticated by the cluster CA
    and authorized by the API server (SubjectAccessReview), every path under the node's
    directory, and image garbage collection off (images are imported, never pulled)."""
    pki = layout.pki
    return {
        "apiVersion": "kubelet.config.k8s.io/v1beta1",
        "kind": "KubeletConfiguration",
        "failCgroupV1": False,
        "cgroupDriver": "cgroupfs",
        "cgroupsPerQOS": True,
        "containerRuntimeEndpoint": f"unix://{layout.containerd_socket}",
        "address": network.node_ip,
        "port": KUBELET_PORT,
        "readOnlyPort": 0,
        "healthzBindAddress": "127.0.0.1",
        "healthzPort": 10248,
        "tlsCertFile": str(pki / "kubelet.crt"),
        "tlsPrivateKeyFile": str(pki / "kubelet.key"),
        "authentication": {
            "anonymous": {"enabled": False},
            "webhook": {"enabled": True},
            "x509": {"clientCAFile": str(pki / "ca.crt")},
        },
        "authorization": {"mode": "Webhook"},
        "clusterDNS": [network.node_ip],
        "clusterDomain": CLUSTER_DOMAIN,
        "resolvConf": "/etc/resolv.conf",
        "failSwapOn": False,
        "enforceNodeAllocatable": [],
        "localStorageCapacityIsolation": False,
        "serializeImagePulls": False,
        "imageGCHighThresholdPercent": 100,
        "imageGCLowThresholdPercent": 99,
        # A nearly full disk on a developer's machine must not evict every pod.
        "evictionHard": {
            "memory.available": "100Mi",
            "nodefs.available": "1%",
            "imagefs.available": "1%",
        },
        "podLogsDir": str(layout.root / "pod-logs"),
        "volumePluginDir": str(layout.kubelet_root / "volume-plugins"),
        "staticPodPath": "",
        "rotateCertificates": False,
        "serverTLSBootstrap": False,
    }


def kube_proxy_config(layout: Layout, network: Network) -> dict[str, Any]:
    """iptables mode; conntrack sysctls left alone (root here may not set them)."""
    return {
        "apiVersion": "kubeproxy.config.k8s.io/v1alpha1",
        "kind": "KubeProxyConfiguration",
        "mode": "iptables",
        "clientConnection": {"kubeconfig": str(layout.kubeconfig("kube-proxy"))},
        "hostnameOverride": NODE_NAME,
        "clusterCIDR": network.pod_cidr,
        "detectLocalMode": "ClusterCIDR",
        "bindAddress": "127.0.0.1",
        "healthzBindAddress": "127.0.0.1:10256",
        "metricsBindAddress": "127.0.0.1:10249",
        # NodePorts on the node address only, never on the machine's own interfaces.
        "nodePortAddresses": [f"{network.node_ip}/32"],
        "conntrack": {
            "maxPerCore": 0,
            "min": 0,
            "tcpEstablishedTimeout": "0s",
            "tcpCloseWaitTimeout": "0s",
        },
        "iptables": {"minSyncPeriod": "0s", "syncPeriod": "30s"},
    }


def corefile(layout: Layout, network: Network, ready_port: int) -> str:
    """CoreDNS on the node address: the cluster's names, everything else forwarded to the
    machine's own resolvers."""
    return (
        ".:53 {\n"
        f"    bind {network.node_ip}\n"
        "    errors\n"
        f"    ready 127.0.0.1:{ready_port}\n"
        f"    kubernetes {CLUSTER_DOMAIN} in-addr.arpa ip6.arpa {{\n"
        f"        kubeconfig {layout.kubeconfig('coredns')}\n"
        "        pods insecure\n"
        "        fallthrough in-addr.arpa ip6.arpa\n"
        "        ttl 5\n"
        "    }\n"
        "    forward . /etc/resolv.conf\n"
        "    cache 5\n"
        "}\n"
    )


def coredns_rbac(user: str) -> list[dict[str, Any]]:
    """What CoreDNS's kubernetes plugin reads, as upstream's deployment grants it."""
    name = "torchyard:coredns"
    return [
        {
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "ClusterRole",
            "metadata": {"name": name},
            "rules": [
                {
                    "apiGroups": [""],
                    "resources": ["services", "pods", "namespaces"],
                    "verbs": ["list", "watch"],
                },
                {
                    "apiGroups": ["discovery.k8s.io"],
                    "resources": ["endpointslices"],
                    "verbs": ["list", "watch"],
                },
            ],
        },
        _binding(name, name, user),
    ]


def kubelet_api_rbac(user: str) -> list[dict[str, Any]]:
    """Lets the API server's client certificate use the kubelet's API (logs, exec)."""
    return [_binding("torchyard:kubelet-api-admin", "system:kubelet-api-admin", user)]


def _binding(name: str, role: str, user: str) -> dict[str, Any]:
    return {
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "ClusterRoleBinding",
        "metadata": {"name": name},
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": role},
        "subjects": [{"apiGroup": "rbac.authorization.k8s.io", "kind": "User", "name": user}],
    }
