"""`torchyard local ...`: build, start and stop the local cluster and operator."""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from collections.abc import Callable

from torchyard.local.build import ControlPlaneBuildError, ensure_binaries
from torchyard.local.controlplane import ControlPlane, ControlPlaneError, state_dir
from torchyard.local.stack import REPO_ROOT, install, start_operator, stop_operator


def _build(args: argparse.Namespace) -> int:
    began = time.monotonic()
    binaries = ensure_binaries()
    print(f"control plane binaries ready in {time.monotonic() - began:.1f}s:")
    for name, path in vars(binaries).items():
        print(f"  {name}: {path}")
    return 0


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
    try:
        install(cp, REPO_ROOT / "manifests" / "overlays" / "local")
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
            print(cp.kubectl("get", "torchyard", "-A").stdout)
    except BaseException:
        stop_operator(workdir)
        ControlPlane.stop_detached(workdir)
        raise
    print(
        "The cluster keeps running. Use it with:\n"
        f"  export KUBECONFIG={cp.kubeconfig}\n"
        f"  export PATH={cp.binaries.kubectl.parent}:$PATH\n"
        "  kubectl get torchyard -A\n"
        "Stop everything with: torchyard local down"
    )
    return 0


def _down(args: argparse.Namespace) -> int:
    workdir = state_dir()
    operator = stop_operator(workdir)
    plane = ControlPlane.stop_detached(workdir)
    print("stopped" if operator or plane else "nothing was running")
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

    up = sub.add_parser("up", help="start the control plane and the operator, detached")
    up.add_argument("--samples", action="store_true", help="apply manifests/samples and wait")
    up.add_argument("--no-operator", action="store_true", help="do not start the operator")
    up.set_defaults(func=_guarded(_up))

    down = sub.add_parser("down", help="stop everything `up` started")
    down.set_defaults(func=_guarded(_down))

    kubectl = sub.add_parser("kubectl", help="the pinned kubectl against the local cluster")
    kubectl.add_argument("args", nargs=argparse.REMAINDER)
    kubectl.set_defaults(func=_guarded(_kubectl))
