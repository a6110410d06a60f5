"""Start and stop the container node next to a local control plane.

Order at start: host packages, the bridge (the node address must exist before the
API server binds to it, so `up` calls `prepare_network()` before the control plane),
then certificates and configs, containerd, the pause image, the kubelet (until its
node is Ready), kube-proxy, CoreDNS and the claims' provisioner. `stop_detached()`
undoes it in reverse: the node's pods are deleted through the API first, so that the
kubelet stops them the normal way (CNI DEL, volume unmounts), then each process stops,
then whatever was left (containers, mounts, the bridge) is swept.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import yaml

from torchyard.local import kubeconfig, pki, processes
from torchyard.local.agent import launcher
from torchyard.local.agent.launcher import node_ready
from torchyard.local.build import Binaries, ensure_coredns
from torchyard.local.controlplane import ControlPlane, free_ports, http_ok, write_private
from torchyard.local.node import config, images, network, packages, sweep
from torchyard.local.node.errors import NodeError
from torchyard.local.node.layout import NODE_NAME, PAUSE_IMAGE, Network, layout_for
from torchyard.local.processes import Child

NODE_STATE = "node.json"
DEFAULT_NETWORK = Network()
Log = Callable[[str], None]


def prepare_network(log: Log, net: Network = DEFAULT_NETWORK) -> None:
    """Install what is missing and make the bridge: before the control plane starts."""
    packages.ensure(log)
    network.setup(net)


class ContainerNode:
    """The node's processes; `start()` returns once pods can run and resolve names."""

    def __init__(
        self,
        cp: ControlPlane,
        workdir: Path,
        net: Network = DEFAULT_NETWORK,
        timeout: float = 120.0,
    ) -> None:
        self.cp = cp
        self.workdir = workdir
        self.layout = layout_for(workdir)
        self.network = net
        self.timeout = timeout
        self.children: list[Child] = []
        self.timings: dict[str, float] = {}

    def start(self, log: Log) -> ContainerNode:
        began = time.monotonic()
        coredns = ensure_coredns(log)
        self.timings["coredns build"] = time.monotonic() - began
        began = time.monotonic()
        try:
            self._write_files()
            self._apply_rbac()
            self._start_containerd()
            self._mark("containerd", began)
            if not images.has_image(self.layout.containerd_socket, PAUSE_IMAGE):
                images.load(self.layout.containerd_socket, images.pause_archive())
            self._mark("pause image", began)
            self._start_kubelet()
            self._mark("kubelet Ready", began)
            self._start_kube_proxy()
            self._start_coredns(coredns)
            self._mark("kube-proxy and CoreDNS", began)
            self._start_provisioner()
        except BaseException:
            self.stop()
            raise
        return self

    def stop(self) -> None:
        processes.stop(list(reversed(self.children)), 10.0)
        self.children = []

    # -- files ------------------------------------------------------------------------

    def _write_files(self) -> None:
        lay, net = self.layout, self.network
        for directory in (lay.pki, lay.cni_conf_dir, lay.cni_data_dir, lay.kubelet_root):
            directory.mkdir(parents=True, exist_ok=True)
        cp_pki = self.cp.workdir / "pki"
        ca = pki.CertKey((cp_pki / "ca.crt").read_bytes(), (cp_pki / "ca.key").read_bytes())
        (lay.pki / "ca.crt").write_bytes(ca.cert_pem)
        serving = pki.kubelet_serving_cert(ca, NODE_NAME, net.node_ip)
        (lay.pki / "kubelet.crt").write_bytes(serving.cert_pem)
        write_private(lay.pki / "kubelet.key", serving.key_pem)
        for component, cert in (
            ("kubelet", pki.node_client_cert(ca, NODE_NAME)),
            ("kube-proxy", pki.client_cert(ca, pki.KUBE_PROXY_USER)),
            ("coredns", pki.client_cert(ca, pki.COREDNS_USER)),
        ):
            kubeconfig.write(
                lay.kubeconfig(component),
                kubeconfig.render(self.cp.server, ca.cert_pem, component, client=cert),
            )
        lay.containerd_config.parent.mkdir(parents=True, exist_ok=True)
        runc = packages.locate("runc") or Path("/usr/sbin/runc")
        lay.containerd_config.write_text(config.containerd_toml(lay, runc))
        conflist = lay.cni_conf_dir / "10-torchyard.conflist"
        conflist.write_text(json.dumps(config.cni_conflist(lay, net), indent=2))
        lay.kubelet_config.write_text(yaml.safe_dump(config.kubelet_config(lay, net)))
        lay.kube_proxy_config.write_text(yaml.safe_dump(config.kube_proxy_config(lay, net)))

    def _apply_rbac(self) -> None:
        objects = [
            *config.coredns_rbac(pki.COREDNS_USER),
            *config.kubelet_api_rbac(pki.APISERVER_KUBELET_CLIENT_USER),
        ]
        self.cp.kubectl(
            "apply", "--server-side", "--force-conflicts", "-f", "-",
            input=yaml.safe_dump_all(objects),
        )  # fmt: skip

    # -- processes --------------------------------------------------------------------

    def _spawn(self, name: str, argv: list[str]) -> Child:
        child = processes.spawn(name, argv, self.layout.log(name))
        self.children.append(child)
        write_state(self.workdir, self.children)
        return child

    def _wait(self, what: str, ready: Callable[[], bool], child: Child) -> None:
        deadline = time.monotonic() + self.timeout
        while not ready():
            if child.returncode() is not None:
                raise NodeError(
                    f"{child.name} exited with status {child.returncode()} while waiting for "
                    f"{what}. Last lines of {child.log}:\n{processes.log_tail(child.log)}"
                )
            if time.monotonic() > deadline:
                raise NodeError(
                    f"timed out after {self.timeout:.0f}s waiting for {what}. Last lines of "
                    f"{child.log}:\n{processes.log_tail(child.log)}"
                )
            time.sleep(0.1)

    def _start_containerd(self) -> None:
        lay = self.layout
        containerd = packages.locate("containerd")
        child = self._spawn("containerd", [str(containerd), f"--config={lay.containerd_config}"])

        def serving() -> bool:
            command = images.ctr(lay.containerd_socket, "version")
            return subprocess.run(command, capture_output=True).returncode == 0

        self._wait("containerd's socket", serving, child)

    def _start_kubelet(self) -> None:
        lay, binaries = self.layout, self.cp.binaries
        child = self._spawn(
            "kubelet",
            [
                str(binaries.kubelet),
                f"--config={lay.kubelet_config}",
                f"--kubeconfig={lay.kubeconfig('kubelet')}",
                f"--hostname-override={NODE_NAME}",
                f"--node-ip={self.network.node_ip}",
                f"--root-dir={lay.kubelet_root}",
                f"--cert-dir={lay.pki}",
            ],
        )

        def ready() -> bool:
            result = self.cp.kubectl("get", "node", NODE_NAME, "-o", "json", check=False)
            return result.returncode == 0 and node_ready(json.loads(result.stdout))

        self._wait(f"node {NODE_NAME} to be Ready", ready, child)

    def _start_kube_proxy(self) -> None:
        binaries: Binaries = self.cp.binaries
        child = self._spawn(
            "kube-proxy", [str(binaries.kube_proxy), f"--config={self.layout.kube_proxy_config}"]
        )
        self._wait("kube-proxy /healthz", lambda: http_ok("http://127.0.0.1:10256/healthz"), child)

    def _start_coredns(self, coredns: Path) -> None:
        (ready_port,) = free_ports(1)
        self.layout.corefile.write_text(config.corefile(self.layout, self.network, ready_port))
        child = self._spawn("coredns", [str(coredns), "-conf", str(self.layout.corefile)])
        self._wait("CoreDNS /ready", lambda: http_ok(f"http://127.0.0.1:{ready_port}/ready"), child)

    def _start_provisioner(self) -> None:
        """PersistentVolumes for claims: the node agent's provisioner, as its own process."""
        _, infra = launcher.prepare(self.cp, NODE_NAME)
        self._spawn(
            "provisioner",
            [
                sys.executable, "-m", "torchyard.local.agent.provisioner",
                f"--kubeconfig={infra}", f"--root={self.layout.claims}", f"--node-name={NODE_NAME}",
            ],
        )  # fmt: skip

    def _mark(self, what: str, since: float) -> None:
        self.timings[what] = time.monotonic() - since


# -- detached (torchyard local up / down) -------------------------------------------


def write_state(workdir: Path, children: list[Child]) -> None:
    state = [{"name": c.name, "pid": c.pid, "exe": c.exe, "log": str(c.log)} for c in children]
    tmp = workdir / f"{NODE_STATE}.tmp"
    tmp.write_text(json.dumps({"children": state}, indent=2))
    tmp.replace(workdir / NODE_STATE)


def read_children(workdir: Path) -> list[Child] | None:
    try:
        state = json.loads((workdir / NODE_STATE).read_text())
    except FileNotFoundError:
        return None
    return [
        Child(name=c["name"], pid=c["pid"], exe=c["exe"], log=Path(c["log"]))
        for c in state["children"]
    ]


def stop_detached(workdir: Path, cp: ControlPlane | None, net: Network = DEFAULT_NETWORK) -> bool:
    """Stop the node recorded in `workdir` and sweep what it left; False if none was.

    With `cp` (the control plane still up) the node's pods are deleted first.
    """
    children = read_children(workdir)
    if children is None:
        return False
    layout = layout_for(workdir)
    if cp is not None:
        sweep.delete_pods(cp, NODE_NAME)
    by_name = {c.name: c for c in children}
    # The pods are gone: nothing is left to stop gracefully, and the kubelet takes 15
    # seconds and more to act on a SIGTERM.
    for stage, grace in ((("provisioner", "coredns", "kube-proxy"), 5.0), (("kubelet",), 2.0)):
        processes.stop([by_name[n] for n in stage if n in by_name], grace)
    if "kube-proxy" in by_name:
        sweep.kube_proxy_rules(Path(by_name["kube-proxy"].exe))
    if "kubelet" in by_name:
        sweep.kubelet_rules()
    if "containerd" in by_name:
        sweep.containers(layout.containerd_socket)
        processes.stop([by_name["containerd"]], 10.0)
    sweep.mounts(layout.root)
    network.teardown(net)
    (workdir / NODE_STATE).unlink(missing_ok=True)
    return True
