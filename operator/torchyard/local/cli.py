"""`torchyard local ...`: build, start and stop the local cluster, node agent and operator."""

from __future__ import annotations

import argparse
import contextlib
import os
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

from torchyard.local.agent import launcher
from torchyard.local.agent import logs as agent_logs
from torchyard.local.agent.config import is_root
from torchyard.local.agent.podspec import ALLOW_PRIVILEGED_FLAG
from torchyard.local.build import ControlPlaneBuildError, ensure_binaries, ensure_coredns
from torchyard.local.controlplane import ControlPlane, ControlPlaneError, state_dir
from torchyard.local.node import images as node_images
from torchyard.local.node import node as container_node
from torchyard.local.node.errors import NodeError
from torchyard.local.node.layout import Network
from torchyard.local.stack import (
    OPERATOR_STATE,
    REPO_ROOT,
    install,
    start_operator,
    stop_operator,
)

NODES = ("agent", "containers", "none")


def _build(args: argparse.Namespace) -> int:
    began = time.monotonic()
    binaries = ensure_binaries()
    print(f"control plane binaries ready in {time.monotonic() - began:.1f}s:")
    for name, path in vars(binaries).items():
        print(f"  {name}: {path}")
    if not args.no_coredns:
        began = time.monotonic()
        coredns = ensure_coredns()
        print(f"CoreDNS (for --node=containers) ready in {time.monotonic() - began:.1f}s:")
        print(f"  coredns: {coredns}")
    return 0


def agent_dir(workdir: Path | None = None) -> Path:
    """The node agent's state (pods, logs, claim directories) under the plane's."""
    return (workdir or state_dir()) / "agent"


def _up(args: argparse.Namespace) -> int:
    workdir = state_dir()
    if (workdir / "state.json").exists():
        print(
            f"already running (state in {workdir}); `torchyard local down` first", file=sys.stderr
        )
        return 1
    node = "none" if args.no_agent else args.node
    if node == "containers":
        return _up_containers(args, workdir)
    began = time.monotonic()
    cp = ControlPlane(workdir).start(detach=True)
    print(f"control plane up in {time.monotonic() - began:.1f}s at {cp.server}")
    try:
        install(cp, REPO_ROOT / "manifests" / "overlays" / "local")
        if node == "none":
            pass
        elif not is_root():
            print(
                "node agent not started: it needs root (network namespaces); pods stay "
                "Pending. Run `sudo torchyard local up` to run them."
            )
        else:
            began = time.monotonic()
            extra = [ALLOW_PRIVILEGED_FLAG] if getattr(args, "allow_privileged_pods", False) else []
            child = launcher.start(cp, agent_dir(workdir), extra=extra)
            launcher.write_state(workdir, child)
            print(
                f"node agent up in {time.monotonic() - began:.1f}s: node torchyard-local "
                f"runs pods as local processes (log: {child.log})"
            )
        if not args.no_operator:
            pid = start_operator(cp, workdir)
            print(f"operator running as pid {pid} (log: {workdir / 'operator.log'})")
    except BaseException:
        stop_operator(workdir)
        launcher.stop_detached(workdir)
        ControlPlane.stop_detached(workdir)
        raise
    _print_usage(cp)
    return 0


def _up_containers(args: argparse.Namespace, workdir: Path) -> int:
    """The control plane on the node address, and the container node next to it."""
    if not is_root():
        print(
            "the container node needs root (containerd, runc, a bridge, iptables): run "
            "`sudo torchyard local up --node=containers`",
            file=sys.stderr,
        )
        return 1

    def say(message: str) -> None:
        print(f"torchyard: {message}", file=sys.stderr, flush=True)

    net = Network()
    began = time.monotonic()
    container_node.prepare_network(say, net)
    cp = ControlPlane(workdir, address=net.node_ip).start(detach=True)
    print(f"control plane up in {time.monotonic() - began:.1f}s at {cp.server}")
    try:
        install(cp, REPO_ROOT / "manifests" / "overlays" / "local")
        began = time.monotonic()
        node = container_node.ContainerNode(cp, workdir, net).start(say)
        print(
            f"container node up in {time.monotonic() - began:.1f}s: node "
            f"{container_node.NODE_NAME} runs pods with containerd and runc "
            f"(logs in {node.layout.root}); load torchyard's images with `scripts/images "
            "load-local`, others with `torchyard local load-image ARCHIVE`"
        )
        if not args.no_operator:
            pid = start_operator(cp, workdir)
            print(f"operator running as pid {pid} (log: {workdir / 'operator.log'})")
    except BaseException:
        _stop_all(workdir)
        raise
    _print_usage(cp)
    return 0


def _print_usage(cp: ControlPlane) -> None:
    print(
        "The cluster keeps running. Use it with:\n"
        f"  export KUBECONFIG={cp.kubeconfig}\n"
        f"  export PATH={cp.binaries.kubectl.parent}:$PATH\n"
        "  kubectl get torchyard,pods -A\n"
        "  torchyard local logs POD -n NAMESPACE\n"
        "Stop everything with: torchyard local down"
    )


def _quickstart(args: argparse.Namespace) -> int:
    from torchyard.local.quickstart.run import MissionFailed, Quickstart

    workdir = state_dir()
    if not (workdir / "state.json").exists():
        print("the local cluster is not running: `torchyard local up` first", file=sys.stderr)
        return 1
    containers = container_node.read_children(workdir) is not None
    if not containers and not (workdir / launcher.AGENT_STATE).exists():
        print(
            "no node is running, so no pod would ever run: `torchyard local up` starts the "
            "node agent when run as root (it makes network namespaces)",
            file=sys.stderr,
        )
        return 1
    if not (workdir / OPERATOR_STATE).exists() and not _operator_deployed(workdir):
        print(
            "no operator is running, so nothing would ever act: install it "
            "(`torchyard local kubectl apply --server-side -k manifests/base`, with the images "
            "loaded by `scripts/images load-local`) or start it with `torchyard local up`",
            file=sys.stderr,
        )
        return 1
    mission = Quickstart(
        repo=REPO_ROOT,
        kubeconfig=workdir / "admin.kubeconfig",
        kubectl=ensure_binaries().kubectl,
        state=workdir / "quickstart",
        # On the container node the kubelet serves logs through the API server.
        pods_dir=None if containers else agent_dir(workdir) / "pods",
    )
    try:
        mission.run()
    except MissionFailed as error:
        print(f"torchyard local quickstart: {error}", file=sys.stderr)
        return 1
    return 0


def _operator_deployed(workdir: Path) -> bool:
    """Whether manifests/base's operator Deployment exists (installed as on a cluster)."""
    cp = ControlPlane.attach(workdir)
    if cp is None:
        return False
    found = cp.kubectl(
        "get", "deployment/torchyard-operator", "-n", "torchyard-system", check=False
    )
    return found.returncode == 0


def _port_forward(args: argparse.Namespace) -> int:
    import asyncio

    from torchyard.local.portforward import PortForwardError, ServiceForward

    kind, _, service = args.target.rpartition("/")
    if kind not in ("svc", "service", "services") or not service:
        print("port-forward takes svc/NAME (a Service of the local cluster)", file=sys.stderr)
        return 2
    local, _, remote = args.ports.partition(":")
    forward = ServiceForward(
        state_dir() / "admin.kubeconfig", args.namespace, service, int(remote or local)
    )
    try:
        asyncio.run(forward.check())
    except PortForwardError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    print(f"Forwarding from 127.0.0.1:{local} -> svc/{service}:{remote or local}", flush=True)
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(forward.serve(int(local)))
    return 0


def _stop_all(workdir: Path) -> bool:
    operator = stop_operator(workdir)
    agent = launcher.stop_detached(workdir)
    node = container_node.stop_detached(workdir, ControlPlane.attach(workdir))
    plane = ControlPlane.stop_detached(workdir)
    return operator or agent or node or plane


def _down(args: argparse.Namespace) -> int:
    print("stopped" if _stop_all(state_dir()) else "nothing was running")
    return 0


def _load_image(args: argparse.Namespace) -> int:
    workdir = state_dir()
    if container_node.read_children(workdir) is None:
        print(
            "the container node is not running: `torchyard local up --node=containers` first",
            file=sys.stderr,
        )
        return 1
    socket = container_node.layout_for(workdir).containerd_socket
    for archive in args.archives:
        for name in node_images.load(socket, Path(archive)):
            print(f"loaded {name}")
    return 0


def _logs(args: argparse.Namespace) -> int:
    if not args.state_dir and container_node.read_children(state_dir()) is not None:
        # The container node's kubelet serves logs through the API server.
        flags = [f"-c={args.container}"] if args.container else []
        flags += ["--previous"] * args.previous + ["--follow"] * args.follow
        args.args = ["logs", args.pod, "-n", args.namespace, *flags]
        return _kubectl(args)
    pods = Path(args.state_dir) / "pods" if args.state_dir else agent_dir() / "pods"
    try:
        path = agent_logs.log_file(pods, args.namespace, args.pod, args.container, args.previous)
    except agent_logs.LogsError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    with contextlib.suppress(KeyboardInterrupt):
        agent_logs.show(path, follow=args.follow)
    return 0


def _kubectl(args: argparse.Namespace) -> int:
    kubeconfig = state_dir() / "admin.kubeconfig"
    command = [str(ensure_binaries().kubectl), f"--kubeconfig={kubeconfig}", *args.args]
    return subprocess.run(command, check=False, env=os.environ).returncode


Command = Callable[[argparse.Namespace], int]


def _guarded(func: Command) -> Command:
    """One clear line instead of a traceback for the errors a user can act on."""

    def run(args: argparse.Namespace) -> int:
        try:
            return int(func(args))
        except (ControlPlaneBuildError, ControlPlaneError, NodeError) as error:
            print(f"torchyard local {args.local_command}: {error}", file=sys.stderr)
            return 2

    return run


def add_local_commands(commands: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    local = commands.add_parser("local", help="the local cluster (no Docker needed)")
    sub = local.add_subparsers(dest="local_command", required=True)

    build = sub.add_parser("build", help="build (or find cached) control plane binaries")
    build.add_argument(
        "--no-coredns",
        action="store_true",
        help="skip CoreDNS, which only the container node needs (about 5 minutes cold)",
    )
    build.set_defaults(func=_guarded(_build))

    up = sub.add_parser(
        "up", help="start the control plane, the node agent and the operator, detached"
    )
    up.add_argument("--no-operator", action="store_true", help="do not start the operator")
    up.add_argument(
        "--node",
        choices=NODES,
        default="agent",
        help="what runs pods: the node agent (processes, the default), a real kubelet with "
        "containerd (containers; see docs/node.md), or nothing",
    )
    up.add_argument("--no-agent", action="store_true", help="the same as --node=none")
    up.add_argument(
        ALLOW_PRIVILEGED_FLAG,
        action="store_true",
        help="let the node agent run privileged, hostPath, hostNetwork/hostPID/hostIPC and "
        "uid-0 pods, which reach this machine itself (default: refused)",
    )
    up.set_defaults(func=_guarded(_up))

    quickstart = sub.add_parser(
        "quickstart",
        help="run the mission on the running cluster: train, compress, serve, roll out, "
        "roll back; print a summary",
    )
    quickstart.set_defaults(func=_guarded(_quickstart))

    forward = sub.add_parser(
        "port-forward", help="a Service of the local cluster on a local port (like kubectl's)"
    )
    forward.add_argument("target", help="svc/NAME")
    forward.add_argument("ports", help="LOCAL:PORT (PORT: the Service's port)")
    forward.add_argument("-n", "--namespace", default="default")
    forward.set_defaults(func=_guarded(_port_forward))

    load = sub.add_parser(
        "load-image",
        help="import OCI or docker archives (podman save --format oci-archive) into the "
        "container node's containerd",
    )
    load.add_argument("archives", nargs="+", metavar="ARCHIVE")
    load.set_defaults(func=_guarded(_load_image))

    down = sub.add_parser("down", help="stop everything `up` started")
    down.set_defaults(func=_guarded(_down))

    logs = sub.add_parser(
        "logs",
        help="a container's log (the node agent keeps them in files; on the container node, "
        "`kubectl logs`)",
    )
    logs.add_argument("pod")
    logs.add_argument("-n", "--namespace", default="default")
    logs.add_argument("-c", "--container", default=None)
    logs.add_argument("-p", "--previous", action="store_true", help="the previous run's log")
    logs.add_argument("-f", "--follow", action="store_true")
    logs.add_argument("--state-dir", default=None, help="of the agent (default: local up's)")
    logs.set_defaults(func=_guarded(_logs))

    kubectl = sub.add_parser("kubectl", help="the pinned kubectl against the local cluster")
    kubectl.add_argument("args", nargs=argparse.REMAINDER)
    kubectl.set_defaults(func=_guarded(_kubectl))
