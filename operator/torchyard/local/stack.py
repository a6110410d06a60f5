"""The local torchyard stack: control plane, torchyard's manifests, and the operator process.

The operator runs on the host (there is no node to run its Deployment yet), but it
authenticates as the torchyard-operator ServiceAccount, so it has exactly the
permissions that manifests/ grants it in a real cluster.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path

from torchyard.local.controlplane import ControlPlane, state_dir

REPO_ROOT = Path(__file__).resolve().parents[3]
OPERATOR_NAMESPACE = "torchyard-system"
OPERATOR_ACCOUNT = "torchyard-operator"
OPERATOR_STATE = "operator.json"
CRDS = ("compressionjobs", "trainingjobs", "modelversions")


def install(cp: ControlPlane, kustomization: Path) -> None:
    """Apply a kustomization server-side and wait until torchyard's CRDs serve."""
    cp.kubectl("apply", "--server-side", "--force-conflicts", "-k", str(kustomization))
    cp.kubectl(
        "wait",
        "--for=condition=Established",
        "--timeout=60s",
        *(f"crd/{plural}.torchyard.io" for plural in CRDS),
    )


def start_operator(
    cp: ControlPlane, workdir: Path | None = None, extra_args: Sequence[str] = ()
) -> int:
    """Start `torchyard operator` detached, as its ServiceAccount; return its pid."""
    workdir = workdir or state_dir()
    kubeconfig = cp.service_account_kubeconfig(
        OPERATOR_NAMESPACE, OPERATOR_ACCOUNT, duration_seconds=24 * 3600
    )
    log = workdir / "operator.log"
    with log.open("ab") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "torchyard.cli", "operator", "--liveness=", *extra_args],
            env={**os.environ, "KUBECONFIG": str(kubeconfig)},
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
    (workdir / OPERATOR_STATE).write_text(json.dumps({"pid": process.pid, "log": str(log)}))
    return process.pid


def stop_operator(workdir: Path | None = None, grace: float = 10.0) -> bool:
    """Stop the detached operator recorded in `workdir`; False if none was running."""
    state_path = (workdir or state_dir()) / OPERATOR_STATE
    try:
        pid = int(json.loads(state_path.read_text())["pid"])
    except FileNotFoundError:
        return False
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pid, signal.SIGTERM)
        deadline = time.monotonic() + grace
        while time.monotonic() < deadline and _alive(pid):
            time.sleep(0.1)
        if _alive(pid):
            os.killpg(pid, signal.SIGKILL)
    state_path.unlink(missing_ok=True)
    return True


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A zombie still answers kill(0) until its parent reaps it; it is gone for us.
    with contextlib.suppress(OSError):
        if Path(f"/proc/{pid}/stat").read_text().split(") ", 1)[1].startswith("Z"):
            return False
    return True
