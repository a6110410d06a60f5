"""`torchyard local ...`: build, start and stop the local cluster, node agent and operator."""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

from torchyard.local.agent import launcher
from torchyard.local.agent import logs as agent_logs
from torchyard.local.agent.config import is_root
from torchyard.local.build import ControlPlaneBuildError, ensure_binaries
from torchyard.local.controlplane import ControlPlane, ControlPlaneError, state_dir
from torchyard.local.stack import REPO_ROOT, install, start_operator, stop_operator

EXAMPLE_JOB = REPO_ROOT / "manifests" / "examples" / "hello-job.yaml"


def _build(args: argparse.Namespace) -> int:
    began = time.monotonic()
    binaries = ensure_binaries()
    print(f"control plane binaries ready in {time.monotonic() - began:.1f}s:")
    for name, path in vars(binaries).items():
        print(f"  {name}: {path}")
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
    began = time.monotonic()
    cp = ControlPlane(workdir).start(detach=True)
    print(f"control plane up in {time.monotonic() - began:.1f}s at {cp.server}")
    agent = False
    try:
        install(cp, REPO_ROOT / "manifests" / "overlays" / "local")
        if args.no_agent:
            pass
        elif not is_root():
            print(
                "node agent not started: it needs root (network namespaces); pods stay "
                "Pending. Run `sudo torchyard local up` to run them."
            )
        else:
            began = time.monotonic()
            child = launcher.start(cp, agent_dir(workdir))
            launcher.write_state(workdir, child)
            agent = True
            print(
                f"node agent up in {time.monotonic() - began:.1f}s: node torchyard-local "
                f"runs pods as local processes (log: {child.log})"
            )
        if not args.no_operator:
            pid = start_operator(cp, workdir)
            print(f"operator running as pid {pid} (log: {workdir / 'operator.log'})")
        if args.samples:
            cp.kubectl("apply", "--server-side", "-k", str(REPO_ROOT / "manifests" / "samples"))
            if not args.no_operator:
                cp.kubectl(
                    "wait",
                    "--for=condition=Accepted",
                    "--timeout=120s",
                    "-n",
                    "torchyard-demo",
                    "compressionjob,trainingjob,modelversion",
                    "--all",
                )
            print(cp.kubectl("get", "torchyard", "-A").stdout.rstrip())
            if agent:
                _run_example(cp)
    except BaseException:
        stop_operator(workdir)
        launcher.stop_detached(workdir)
        ControlPlane.stop_detached(workdir)
        raise
    print(
        "The cluster keeps running. Use it with:\n"
        f"  export KUBECONFIG={cp.kubeconfig}\n"
        f"  export PATH={cp.binaries.kubectl.parent}:$PATH\n"
        "  kubectl get torchyard,pods -A\n"
        "  torchyard local logs POD -n NAMESPACE\n"
        "Stop everything with: torchyard local down"
    )
    return 0


def _run_example(cp: ControlPlane, timeout: float = 300.0) -> None:
    """Run the example Job to completion and show what its pod reported."""
    began = time.monotonic()
    cp.kubectl("apply", "-f", str(EXAMPLE_JOB))
    selector = ("-n", "torchyard-demo", "-l", "job-name=hello")
    while True:
        pods = json.loads(cp.kubectl("get", "pods", *selector, "-o", "json").stdout)["items"]
        phases = [(p.get("status") or {}).get("phase") for p in pods]
        if "Succeeded" in phases or "Failed" in phases:
            break
        if time.monotonic() - began > timeout:
            raise ControlPlaneError(f"job/hello did not finish in {timeout:.0f}s: pods {phases}")
        time.sleep(0.5)
    pod = pods[phases.index("Succeeded" if "Succeeded" in phases else "Failed")]
    statuses = (pod.get("status") or {}).get("containerStatuses") or [{}]
    ended = (statuses[0].get("state") or {}).get("terminated") or {}
    outcome = "completed" if ended.get("exitCode") == 0 else f"failed ({ended.get('reason')})"
    print(
        f"job/hello {outcome} in {time.monotonic() - began:.1f}s on the local node; "
        f"pod {pod['metadata']['name']} reported: {ended.get('message', '').strip()}"
    )


def _down(args: argparse.Namespace) -> int:
    workdir = state_dir()
    operator = stop_operator(workdir)
    agent = launcher.stop_detached(workdir)
    plane = ControlPlane.stop_detached(workdir)
    print("stopped" if operator or agent or plane else "nothing was running")
    return 0


def _logs(args: argparse.Namespace) -> int:
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
        except (ControlPlaneBuildError, ControlPlaneError) as error:
            print(f"torchyard local {args.local_command}: {error}", file=sys.stderr)
            return 2

    return run


def add_local_commands(commands: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    local = commands.add_parser("local", help="the local cluster (no Docker needed)")
    sub = local.add_subparsers(dest="local_command", required=True)

    build = sub.add_parser("build", help="build (or find cached) control plane binaries")
    build.set_defaults(func=_guarded(_build))

    up = sub.add_parser(
        "up", help="start the control plane, the node agent and the operator, detached"
    )
    up.add_argument(
        "--samples",
        action="store_true",
        help="apply manifests/samples, wait, and run the example Job to completion",
    )
    up.add_argument("--no-operator", action="store_true", help="do not start the operator")
    up.add_argument("--no-agent", action="store_true", help="do not start the node agent")
    up.set_defaults(func=_guarded(_up))

    down = sub.add_parser("down", help="stop everything `up` started")
    down.set_defaults(func=_guarded(_down))

    logs = sub.add_parser("logs", help="a container's log (the node agent keeps them in files)")
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
