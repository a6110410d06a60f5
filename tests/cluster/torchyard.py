"""Installing torchyard into the local control plane and running its operator, for tests."""

from __future__ import annotations

import json
import os
import re
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from tests.objects import REPO
from torchyard.local.controlplane import ControlPlane

OPERATOR_NAMESPACE = "torchyard-system"
OPERATOR_ACCOUNT = "torchyard-operator"


def install(cp: ControlPlane, kustomization: str = "manifests/base") -> None:
    """Apply a kustomization server-side and wait until the CRDs serve."""
    cp.kubectl("apply", "--server-side", "-k", str(REPO / kustomization))
    cp.kubectl(
        "wait",
        "--for=condition=Established",
        "--timeout=60s",
        "crd/compressionjobs.torchyard.io",
        "crd/trainingjobs.torchyard.io",
        "crd/modelversions.torchyard.io",
    )


def wait_for(
    cp: ControlPlane, namespace: str, ref: str, condition: str, timeout: float = 300
) -> dict[str, Any]:
    """`kubectl wait --for=condition=CONDITION REF` for up to `timeout` seconds, then the
    object. kubectl's own clock decides; the process gets a margin beyond it, so that a
    slow machine fails with kubectl's message, not with the wrapper's 120 s limit."""
    cp.kubectl(
        "wait", ref, "-n", namespace, f"--for=condition={condition}",
        f"--timeout={timeout:.0f}s", timeout=timeout + 30,
    )  # fmt: skip
    kind, name = ref.split("/")
    return get(cp, kind, name, "-n", namespace)


def get(cp: ControlPlane, *args: str) -> dict[str, Any]:
    return json.loads(cp.kubectl("get", *args, "-o", "json").stdout)


def apply(
    cp: ControlPlane, namespace: str, obj: dict[str, Any], check: bool = True
) -> subprocess.CompletedProcess[str]:
    """`kubectl apply` one object (a builder's obj(), a sample) in `namespace`."""
    return cp.kubectl("apply", "-n", namespace, "-f", "-", input=yaml.safe_dump(obj), check=check)


def list_pods(cp: ControlPlane, namespace: str, selector: str) -> list[dict[str, Any]]:
    """The pods of `namespace` that match a label selector."""
    return get(cp, "pods", "-n", namespace, "-l", selector)["items"]


def wait_until(what: str, check: Callable[[], Any], timeout: float = 60.0) -> Any:
    """Poll until check() returns something truthy; fail naming what never happened."""
    deadline = time.monotonic() + timeout
    while True:
        result = check()
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:.0f}s waiting for {what}")
        time.sleep(0.2)


def events(
    cp: ControlPlane, namespace: str, name: str, reason: str, timeout: float = 30.0
) -> list[dict[str, Any]]:
    """The Events with this reason about the named object, waiting until there is one:
    kopf posts Events from a queue of its own, after the status they go with."""
    selector = f"--field-selector=involvedObject.name={name},reason={reason}"
    return wait_until(  # type: ignore[no-any-return]
        f"a {reason} Event about {name}",
        lambda: get(cp, "events", "-n", namespace, selector)["items"],
        timeout=timeout,
    )


@dataclass(frozen=True)
class Session:
    """One namespace of the control plane, as a test drives it: the harness's calls
    bound to (control plane, namespace), in place of passing both to each helper."""

    cp: ControlPlane
    namespace: str

    def kubectl(self, *args: str) -> subprocess.CompletedProcess[str]:
        """`kubectl ARGS` in the namespace (delete, create, ...)."""
        return self.cp.kubectl(*args, "-n", self.namespace)

    def apply(self, obj: dict[str, Any], check: bool = True) -> subprocess.CompletedProcess[str]:
        return apply(self.cp, self.namespace, obj, check)

    def get(self, kind: str, name: str) -> dict[str, Any]:
        return get(self.cp, kind, name, "-n", self.namespace)

    def objects(self, kind: str, *selectors: str) -> list[dict[str, Any]]:
        """The objects of a kind, or those a `--field-selector=...` or `-l ...` picks."""
        return get(self.cp, kind, "-n", self.namespace, *selectors)["items"]

    def pods(self, selector: str) -> list[dict[str, Any]]:
        return list_pods(self.cp, self.namespace, selector)

    def events(self, name: str, reason: str, timeout: float = 30.0) -> list[dict[str, Any]]:
        return events(self.cp, self.namespace, name, reason, timeout)

    def wait(self, what: str, check: Callable[[], Any], timeout: float = 60.0) -> Any:
        """wait_until: poll check() until it returns something truthy."""
        return wait_until(what, check, timeout)

    def wait_for(self, ref: str, condition: str, timeout: float = 300) -> dict[str, Any]:
        """wait_for: until the object REF has CONDITION, then the object."""
        return wait_for(self.cp, self.namespace, ref, condition, timeout)

    def patch_status(self, kind: str, name: str, status: dict[str, Any]) -> None:
        """Merge `status` into the object's status, as its controller (or, for a pod,
        its kubelet: no node runs the pods here) would write it."""
        patch = json.dumps({"status": status})
        self.kubectl("patch", kind, name, "--subresource=status", "--type=merge", "-p", patch)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextmanager
def running_operator(
    cp: ControlPlane, kubeconfig: Path, log: Path, metrics_port: int = 0
) -> Iterator[str]:
    """`torchyard operator` as a process authenticated by `kubeconfig`; yields its liveness URL."""
    liveness = f"http://127.0.0.1:{free_port()}/healthz"
    extra = [f"--liveness={liveness}"]
    if metrics_port:
        extra.append(f"--metrics-port={metrics_port}")
    with operator_process(kubeconfig, log, *extra) as process:
        _wait_listening(liveness, process, log)
        yield liveness


def _wait_listening(url: str, process: subprocess.Popen[bytes], log: Path) -> None:
    """Until the operator's liveness endpoint answers at all (its watches are up): tests
    that start right after must not race its start-up."""
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise AssertionError(
                f"the operator exited with {process.returncode}:\n{log.read_text()}"
            )
        try:
            with urllib.request.urlopen(url, timeout=2):
                return
        except urllib.error.HTTPError:
            return  # it answers, if unhealthy: some tests make it so
        except OSError:
            time.sleep(0.2)
    raise AssertionError(f"the operator's liveness endpoint {url} never answered in 60 s")


@contextmanager
def operator_process(kubeconfig: Path, log: Path, *args: str) -> Iterator[subprocess.Popen[bytes]]:
    """`torchyard operator ARGS` as a process; stopped (SIGTERM, then SIGKILL) at exit."""
    env = {**os.environ, "KUBECONFIG": str(kubeconfig)}
    command = [sys.executable, "-m", "torchyard.cli", "operator", *args]
    with log.open("w") as out:
        process = subprocess.Popen(
            command,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        yield process
    finally:
        process.terminate()
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


_REQUESTS = re.compile(r"^apiserver_request_total\{(?P<labels>[^}]*)\} (?P<value>\S+)$")


def api_requests(cp: ControlPlane, resources: set[str]) -> Counter[tuple[str, str, str]]:
    """The API server's own count of the requests it has answered for `resources`
    (watches aside), by (resource[/subresource], verb, code): what a client cost it."""
    counts: Counter[tuple[str, str, str]] = Counter()
    for line in cp.kubectl("get", "--raw", "/metrics").stdout.splitlines():
        match = _REQUESTS.match(line)
        if not match:
            continue
        labels = dict(re.findall(r'(\w+)="([^"]*)"', match["labels"]))
        if labels.get("resource") not in resources or labels.get("verb") == "WATCH":
            continue
        sub = labels.get("subresource")
        resource = labels["resource"] + (f"/{sub}" if sub else "")
        counts[(resource, labels["verb"], labels["code"])] += int(float(match["value"]))
    return counts
