"""The local control plane is a real, RBAC-enforcing cluster, and it cleans up after itself."""

import dataclasses
import json
import os
import socket
import ssl
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

import pytest

from torchyard.local import controlplane
from torchyard.local.build import ensure_binaries
from torchyard.local.controlplane import ControlPlane, ControlPlaneError, stop_detached

pytestmark = pytest.mark.cluster

T = TypeVar("T")


def eventually(check: Callable[[], T], timeout: float = 30) -> T:
    """Retry `check` until it returns a truthy value without raising."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            result = check()
            if result:
                return result
        except Exception:
            if time.monotonic() > deadline:
                raise
        if time.monotonic() > deadline:
            raise AssertionError(f"not true after {timeout}s: {check}")
        time.sleep(0.2)


def gone(pid: int) -> bool:
    """The process has exited (a zombie no one has reaped yet counts as exited)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    stat = Path(f"/proc/{pid}/stat").read_text()
    return stat.rsplit(")", 1)[1].split()[0] == "Z"


def test_apiserver_is_ready(control_plane):
    assert control_plane.kubectl("get", "--raw", "/readyz").stdout.strip() == "ok"
    assert control_plane.server.startswith("https://127.0.0.1:")


def test_rbac_is_enforced(control_plane, namespace):
    user = f"alice-{namespace}"
    kubeconfig = control_plane.user_kubeconfig(user, ["developers"])
    denied = control_plane.kubectl(
        "get", "pods", "-n", namespace, kubeconfig=kubeconfig, check=False
    )
    assert denied.returncode != 0
    assert "forbidden" in denied.stderr.lower()
    assert f'User "{user}" cannot list resource "pods"' in denied.stderr

    control_plane.kubectl(
        "create", "rolebinding", "alice-view", "--clusterrole=view", f"--user={user}",
        "-n", namespace,
    )  # fmt: skip
    eventually(lambda: control_plane.kubectl("get", "pods", "-n", namespace, kubeconfig=kubeconfig))
    # The binding grants nothing outside its namespace.
    elsewhere = control_plane.kubectl(
        "get", "pods", "-n", "kube-system", kubeconfig=kubeconfig, check=False
    )
    assert "forbidden" in elsewhere.stderr.lower()


def test_groups_from_the_client_certificate_count(control_plane, namespace):
    kubeconfig = control_plane.user_kubeconfig(f"bob-{namespace}", [f"team-{namespace}"])
    control_plane.kubectl(
        "create", "rolebinding", "team-view", "--clusterrole=view",
        f"--group=team-{namespace}", "-n", namespace,
    )  # fmt: skip
    eventually(lambda: control_plane.kubectl("get", "pods", "-n", namespace, kubeconfig=kubeconfig))


def test_service_account_token_kubeconfig(control_plane, namespace):
    control_plane.kubectl("create", "serviceaccount", "robot", "-n", namespace)
    control_plane.kubectl(
        "create", "rolebinding", "robot-view", "--clusterrole=view",
        f"--serviceaccount={namespace}:robot", "-n", namespace,
    )  # fmt: skip
    kubeconfig = control_plane.service_account_kubeconfig(namespace, "robot")
    whoami = control_plane.kubectl(
        "auth", "whoami", "-o", "jsonpath={.status.userInfo.username}", kubeconfig=kubeconfig
    )
    assert whoami.stdout == f"system:serviceaccount:{namespace}:robot"
    eventually(lambda: control_plane.kubectl("get", "pods", "-n", namespace, kubeconfig=kubeconfig))
    denied = control_plane.kubectl(
        "create", "configmap", "x", "-n", namespace, kubeconfig=kubeconfig, check=False
    )
    assert "forbidden" in denied.stderr.lower()


def test_pod_security_admission_is_enforced(control_plane, namespace):
    control_plane.kubectl(
        "label", "namespace", namespace, "pod-security.kubernetes.io/enforce=restricted"
    )
    refused = control_plane.kubectl(
        "run", "root", "--image=registry.k8s.io/pause:3.10", "-n", namespace, check=False
    )
    assert refused.returncode != 0
    assert "violates PodSecurity" in refused.stderr


def test_controller_manager_and_scheduler_run(control_plane, namespace):
    control_plane.kubectl(
        "create", "deployment", "web", "--image=registry.k8s.io/pause:3.10", "-n", namespace
    )

    def items(kind: str) -> list[dict]:
        out = control_plane.kubectl("get", kind, "-l", "app=web", "-n", namespace, "-o", "json")
        return json.loads(out.stdout)["items"]

    # The deployment controller makes the ReplicaSet, the replicaset controller the Pod.
    (replica_set,) = eventually(lambda: items("replicasets"))
    assert replica_set["metadata"]["ownerReferences"][0]["kind"] == "Deployment"
    (pod,) = eventually(lambda: items("pods"))
    assert pod["metadata"]["ownerReferences"][0]["name"] == replica_set["metadata"]["name"]

    # The scheduler has looked at the pod and found no node for it: there are none.
    def unschedulable() -> dict | None:
        (pod,) = items("pods")
        conditions = pod["status"].get("conditions", [])
        return next((c for c in conditions if c["type"] == "PodScheduled"), None)

    condition = eventually(unschedulable)
    assert condition["status"] == "False"
    assert condition["reason"] == "Unschedulable"
    (pod,) = items("pods")
    assert pod["status"]["phase"] == "Pending"
    assert "nodeName" not in pod["spec"]


def test_stop_leaves_no_process_and_no_temporary_directory():
    cp = ControlPlane(controllers=True)
    cp.start()
    try:
        pids = cp.pids
        workdir = cp.workdir
        assert set(pids) == {"etcd", "kube-apiserver", "kube-controller-manager", "kube-scheduler"}
        assert not any(gone(pid) for pid in pids.values())
        assert workdir.is_dir()
    finally:
        cp.stop()
    assert [name for name, pid in pids.items() if not gone(pid)] == []
    assert not workdir.exists()
    cp.stop()  # a second stop is harmless


def test_detached_control_plane_outlives_python_until_stopped(tmp_path):
    workdir = tmp_path / "local"
    start = (
        "from pathlib import Path\n"
        "from torchyard.local.controlplane import ControlPlane\n"
        f"ControlPlane(Path({str(workdir)!r}), controllers=False).start(detach=True)\n"
    )
    subprocess.run([sys.executable, "-c", start], check=True, timeout=600)
    state = json.loads((workdir / "state.json").read_text())
    pids = [c["pid"] for c in state["children"]]
    try:
        assert not any(gone(pid) for pid in pids)
        ready = subprocess.run(
            [state["binaries"]["kubectl"], f"--kubeconfig={state['kubeconfig']}",
             "get", "--raw", "/readyz"],
            capture_output=True, text=True, check=True,
        )  # fmt: skip
        assert ready.stdout.strip() == "ok"
        with pytest.raises(RuntimeError, match="already running"):
            ControlPlane(workdir, controllers=False).start(detach=True)
    finally:
        assert stop_detached(workdir)
    eventually(lambda: all(gone(pid) for pid in pids), timeout=10)
    assert not (workdir / "state.json").exists()
    assert not stop_detached(workdir)


def test_a_crashing_python_still_stops_its_control_plane(tmp_path):
    # The atexit hook stops a control plane that nobody stopped, even on an exception.
    crash = (
        "import json\n"
        "from torchyard.local.controlplane import ControlPlane\n"
        "cp = ControlPlane(controllers=False).start()\n"
        "print(json.dumps({'pids': list(cp.pids.values()), 'workdir': str(cp.workdir)}))\n"
        "raise SystemExit('crash')\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", crash], capture_output=True, text=True, timeout=600
    )
    assert result.returncode == 1, result.stderr
    left = json.loads(result.stdout.splitlines()[-1])
    assert [pid for pid in left["pids"] if not gone(pid)] == []
    assert not Path(left["workdir"]).exists()


def test_an_apiserver_that_dies_is_reported_with_its_log(tmp_path):
    fake = tmp_path / "kube-apiserver"
    fake.write_text("#!/bin/sh\necho 'E0101 fake failure: unknown flag --bogus' >&2\nexit 3\n")
    fake.chmod(0o755)
    binaries = dataclasses.replace(ensure_binaries(), kube_apiserver=fake)
    cp = ControlPlane(tmp_path / "cp", controllers=False, binaries=binaries)
    with pytest.raises(ControlPlaneError) as err:
        cp.start()
    message = str(err.value)
    assert "kube-apiserver exited with status 3" in message
    assert "fake failure: unknown flag --bogus" in message
    # The etcd it had started is stopped again.
    assert cp.pids == {}


@pytest.mark.parametrize("component", [0, 1], ids=["etcd", "kube-apiserver"])
def test_a_port_taken_by_someone_else_is_retried(monkeypatch, component):
    blocker = socket.socket()
    blocker.bind(("127.0.0.1", 0))
    blocker.listen()
    picked: list[list[int]] = []
    free_ports = controlplane.free_ports

    def first_pick_is_taken(count: int) -> list[int]:
        ports = free_ports(count)
        if not picked:
            ports[component] = blocker.getsockname()[1]
        picked.append(ports)
        return ports

    monkeypatch.setattr(controlplane, "free_ports", first_pick_is_taken)
    try:
        with ControlPlane(controllers=False) as cp:
            assert cp.kubectl("get", "--raw", "/readyz").stdout.strip() == "ok"
    finally:
        blocker.close()
    assert len(picked) == 2


def _etcd_health(cp: ControlPlane, context: ssl.SSLContext | None) -> str:
    """GET etcd's /health with `context`: the body, or the error's name and text."""
    try:
        with urllib.request.urlopen(f"{cp.etcd_url}/health", context=context, timeout=5) as resp:
            return str(resp.read().decode())
    except (urllib.error.URLError, OSError) as error:
        return f"{type(error).__name__}: {error}"


def _refused_by_tls(outcome: str) -> bool:
    # TLS 1.3 checks the client's certificate after the client's handshake is done, so
    # the refusal reaches the client as an alert (certificate required, unknown CA) or
    # as the connection closed in its face, whichever it reads first.
    return '"health"' not in outcome and outcome.startswith(
        ("SSLError", "ConnectionResetError", "URLError", "RemoteDisconnected", "SSLEOFError")
    )


def test_etcd_refuses_clients_without_its_own_certificate(control_plane):
    pki_dir = control_plane.workdir / "pki"
    trusting = ssl.create_default_context(cafile=str(pki_dir / "etcd-ca.crt"))
    # no client certificate at all
    refused = _etcd_health(control_plane, trusting)
    assert _refused_by_tls(refused), refused
    # the cluster admin's certificate: trusted by the API server, not by etcd
    admin = ssl.create_default_context(cafile=str(pki_dir / "etcd-ca.crt"))
    admin.load_cert_chain(pki_dir / "admin.crt", pki_dir / "admin.key")
    refused = _etcd_health(control_plane, admin)
    assert _refused_by_tls(refused), refused
    # plain HTTP gets no answer either
    plain = control_plane.etcd_url.replace("https:", "http:")
    try:
        with urllib.request.urlopen(f"{plain}/health", timeout=5) as resp:
            answered = resp.status
    except (urllib.error.URLError, OSError) as error:
        answered = type(error).__name__
    assert answered != 200, answered
    # the API server's own client certificate is accepted (the control)
    apiserver = ssl.create_default_context(cafile=str(pki_dir / "etcd-ca.crt"))
    apiserver.load_cert_chain(
        pki_dir / "apiserver-etcd-client.crt", pki_dir / "apiserver-etcd-client.key"
    )
    assert '"health":"true"' in _etcd_health(control_plane, apiserver)
    # and only root reads the keys
    for key in pki_dir.glob("*.key"):
        assert key.stat().st_mode & 0o077 == 0, key
    assert pki_dir.stat().st_mode & 0o077 == 0
