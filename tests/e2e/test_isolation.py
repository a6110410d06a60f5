"""What the node agent isolates: each pod its own processes, a read-only /proc/sys, a
/dev where only the standard devices open; and what it refuses unless started with
--allow-privileged-pods (privileged, hostPath, the node's namespaces, uid 0).

The refusal tests run in a namespace whose Pod Security level lets such pods through
the API server, so that the agent is the one that refuses them.
"""

from __future__ import annotations

import json
import re
import secrets
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.conftest import Cluster, container_status, python_pod, remove_state
from torchyard.images import WORKER_IMAGE
from torchyard.local.agent import launcher
from torchyard.local.agent.podspec import ALLOW_PRIVILEGED_FLAG, REFUSED_REASON
from torchyard.local.agent.shim import PAUSE_NAME

pytestmark = pytest.mark.e2e

PRIVILEGED_NODE = "torchyard-e2e-privileged"
TAINT = "torchyard.io/privileged-tests"


def _report(pod: dict[str, Any]) -> dict[str, Any]:
    """The JSON a test container wrote as its termination message."""
    ended = container_status(pod)["state"]["terminated"]
    assert ended["exitCode"] == 0, ended
    return json.loads(ended["message"])  # type: ignore[no-any-return]


def _finished(cluster: Cluster, name: str, namespace: str) -> dict[str, Any]:
    return cluster.wait_phase(name, namespace, "Succeeded", "Failed", timeout=90)


def _pod_events(cluster: Cluster, name: str, namespace: str) -> list[dict[str, Any]]:
    out = cluster.cp.kubectl(
        "get", "events", "-n", namespace,
        f"--field-selector=involvedObject.name={name}", "-o", "json",
    ).stdout  # fmt: skip
    return json.loads(out)["items"]  # type: ignore[no-any-return]


def _root_pod(name: str, namespace: str, script: str, **spec: Any) -> dict[str, Any]:
    """A pod that asks for what the agent refuses by default: uid 0, plus `spec`."""
    container = spec.pop("container", {})
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "namespace": namespace},
        "spec": {
            "restartPolicy": "Never",
            "terminationGracePeriodSeconds": 2,
            "containers": [
                {
                    "name": "main",
                    "image": WORKER_IMAGE,
                    "command": ["python", "-c", script],
                    "terminationMessagePolicy": "FallbackToLogsOnError",
                    "securityContext": {"runAsUser": 0, "runAsGroup": 0},
                    **container,
                }
            ],
            **spec,
        },
    }


@pytest.fixture
def open_namespace(cluster: Cluster, request: pytest.FixtureRequest) -> Iterator[str]:
    """A namespace whose Pod Security level (privileged) admits every pod."""
    slug = re.sub(r"[^a-z0-9]+", "-", request.node.name.lower()).strip("-")[:40].strip("-")
    name = f"{slug}-{secrets.token_hex(3)}"
    cluster.apply(
        {
            "apiVersion": "v1",
            "kind": "Namespace",
            "metadata": {
                "name": name,
                "labels": {"pod-security.kubernetes.io/enforce": "privileged"},
            },
        }
    )
    deadline = time.monotonic() + 30
    while cluster.cp.kubectl("get", "sa", "default", "-n", name, check=False).returncode:
        assert time.monotonic() < deadline, f"no default ServiceAccount in {name}"
        time.sleep(0.1)
    yield name
    cluster.cp.kubectl("delete", "namespace", name, "--wait=false", check=False)


@pytest.fixture(scope="module")
def privileged_node(cluster: Cluster) -> Iterator[str]:
    """A second agent, started with --allow-privileged-pods, on a node tainted so that
    only the pods that name it (nodeName) run there."""
    state = Path(tempfile.mkdtemp(prefix="torchyard-e2e-privileged-"))
    flags = (*launcher.isolated_network_flags("tp"), ALLOW_PRIVILEGED_FLAG)
    agent = launcher.start(cluster.cp, state, node=PRIVILEGED_NODE, extra=flags)
    try:
        cluster.cp.kubectl("taint", "node", PRIVILEGED_NODE, f"{TAINT}=true:NoSchedule")
        yield PRIVILEGED_NODE
    finally:
        launcher.stop(agent)
        remove_state(state)
        cluster.cp.kubectl("delete", "node", PRIVILEGED_NODE, "--wait=false", check=False)


# -- processes ----------------------------------------------------------------------

LIST_PROCESSES = """
import json, os, sys
mine = sorted(int(p) for p in os.listdir('/proc') if p.isdigit())
cmdlines = {}
for pid in mine:
    try:
        cmdlines[pid] = open(f'/proc/{pid}/cmdline', 'rb').read().replace(b'\\0', b' ').decode()
    except OSError:
        pass
other = sys.argv[1]
try:
    os.listdir(f'/proc/{other}/root')
    reached = 'listed'
except OSError as error:
    reached = type(error).__name__
try:
    os.kill(int(other), 0)
    signalled = 'delivered'
except OSError as error:
    signalled = type(error).__name__
open('/dev/termination-log', 'w').write(json.dumps(
    {'pids': mine, 'cmdlines': list(cmdlines.values()), 'reached': reached,
     'signalled': signalled}))
"""


def _host_pids_with(marker: str) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if marker.encode() in (entry / "cmdline").read_bytes():
                    found.append(int(entry.name))
            except OSError:
                continue
    return found


def test_a_pod_sees_and_reaches_only_its_own_processes(cluster, namespace):
    marker = f"marker-{secrets.token_hex(4)}"
    victim = python_pod("victim", namespace, "import time; time.sleep(600)", args=[marker])
    victim["spec"]["restartPolicy"] = "Always"
    cluster.apply(victim)
    cluster.wait_phase("victim", namespace, "Running")
    deadline = time.monotonic() + 30
    while not (victim_pids := _host_pids_with(marker)):
        assert time.monotonic() < deadline, "the victim's process never showed on the node"
        time.sleep(0.1)

    cluster.apply(python_pod("snoop", namespace, LIST_PROCESSES, args=[str(victim_pids[0])]))
    report = _report(_finished(cluster, "snoop", namespace))

    assert not any(marker in line for line in report["cmdlines"]), report
    # Its own PID namespace: pid 1 is the pod's pause process, then its container.
    assert report["pids"][0] == 1 and PAUSE_NAME in report["cmdlines"][0], report
    assert len(report["pids"]) <= 3, report
    # The victim's pid (as the node numbers it) names nothing inside the snooping pod.
    assert report["reached"] == "FileNotFoundError", report
    assert report["signalled"] == "ProcessLookupError", report
    assert _host_pids_with(marker) == victim_pids  # the victim runs on, untouched


# -- /proc/sys and /dev -------------------------------------------------------------

MOUNTS = """
import json
options = {}
for line in open('/proc/self/mountinfo'):
    fields = line.split()
    options[fields[4]] = fields[5].split(',')
open('/dev/null', 'w').write('the standard devices still work')
assert open('/dev/zero', 'rb').read(4) == bytes(4)
open('/dev/termination-log', 'w').write(json.dumps(
    {point: options.get(point) for point in ('/proc/sys', '/dev', '/proc', '/run', '/')}))
"""


def test_proc_sys_is_read_only_and_dev_nodev_nosuid(cluster, namespace):
    cluster.apply(python_pod("mounts", namespace, MOUNTS))
    report = _report(_finished(cluster, "mounts", namespace))
    assert "ro" in report["/proc/sys"], report
    assert {"nodev", "nosuid", "noexec"} <= set(report["/dev"]), report
    assert {"nodev", "nosuid"} <= set(report["/proc"]), report
    # the node's root: read-only, and no setuid binary of the node raises privileges
    assert {"ro", "nosuid"} <= set(report["/"]), report
    assert report["/run"] is not None, "the node's /run (its sockets) is not hidden"


ROOT_PROBES = """
import errno, json, os
result = {}
value = open('/proc/sys/kernel/hostname').read()
try:
    # the same value back: harmless even if the mount were writable
    with open('/proc/sys/kernel/hostname', 'w') as f:
        f.write(value)
    result['proc_sys'] = 'written'
except OSError as error:
    result['proc_sys'] = errno.errorcode[error.errno]
os.mknod('/dev/mine', 0o600 | 0o020000, os.makedev(1, 3))  # a character device, as null
try:
    open('/dev/mine', 'w').close()
    result['own_device'] = 'opened'
except OSError as error:
    result['own_device'] = errno.errorcode[error.errno]
result['uid'] = os.getuid()
open('/dev/termination-log', 'w').write(json.dumps(result))
"""


def test_root_in_a_container_cannot_write_proc_sys_nor_open_a_device_it_makes(
    cluster, open_namespace, privileged_node
):
    # uid 0 with containerd's default capabilities (MKNOD among them): only where the
    # agent allows root pods
    pod = _root_pod("root", open_namespace, ROOT_PROBES, nodeName=privileged_node)
    cluster.apply(pod)
    report = _report(_finished(cluster, "root", open_namespace))
    assert report == {"proc_sys": "EROFS", "own_device": "EACCES", "uid": 0}


# -- refused unless the agent allows them --------------------------------------------

WRITE_HOST = """
import json, os, socket, sys
path = sys.argv[1]
open(os.path.join(path, 'written-by-pod'), 'w').write(str(os.getuid()))
open('/dev/termination-log', 'w').write(json.dumps({
    'uid': os.getuid(),
    'host_init': open('/proc/1/cmdline', 'rb').read().split(b'\\0')[0].decode(),
    'interfaces': sorted(name for _, name in socket.if_nameindex()),
}))
"""


def _refused(tmp: Path, namespace: str) -> dict[str, tuple[dict[str, Any], list[str]]]:
    """Pods the agent must refuse, each with the words its status must name."""
    host_dir = {"name": "host", "hostPath": {"path": str(tmp), "type": "DirectoryOrCreate"}}
    script = "print('ran')"
    return {
        "privileged": (
            _root_pod(
                "privileged", namespace, script,
                container={"securityContext": {"runAsUser": 65532, "privileged": True}},
            ),
            ['container "main" is privileged'],
        ),
        "host-path": (
            python_pod(
                "host-path", namespace, script,
                volumeMounts=[{"name": "host", "mountPath": "/mnt/host"}],
                pod_spec={"volumes": [host_dir]},
            ),
            [f'hostPath volume "host" ({tmp})'],
        ),
        "host-network": (
            python_pod("host-network", namespace, script, pod_spec={"hostNetwork": True}),
            ["hostNetwork: true"],
        ),
        "host-pid-ipc": (
            python_pod(
                "host-pid-ipc", namespace, script, pod_spec={"hostPID": True, "hostIPC": True}
            ),
            ["hostPID: true", "hostIPC: true"],
        ),
        "root": (_root_pod("root", namespace, script), ['container "main" runs as root']),
    }  # fmt: skip


def test_privileged_host_and_root_pods_are_refused_naming_what_and_the_flag(
    cluster, open_namespace, tmp_path
):
    host_dir = tmp_path / "never-created"
    cases = _refused(host_dir, open_namespace)
    cluster.apply(*(pod for pod, _ in cases.values()))
    for name, (_, words) in cases.items():
        pod = cluster.wait_pod(
            name,
            open_namespace,
            lambda p: (
                (container_status(p).get("state") or {}).get("waiting", {}).get("reason")
                == REFUSED_REASON
            ),
            timeout=30,
            what=f"the {REFUSED_REASON} waiting reason",
        )
        message = container_status(pod)["state"]["waiting"]["message"]
        for word in [*words, ALLOW_PRIVILEGED_FLAG]:
            assert word in message, message
        assert pod["status"]["phase"] == "Pending"
        events = [e for e in _pod_events(cluster, name, open_namespace)]
        assert any(
            e["reason"] == REFUSED_REASON and e["type"] == "Warning" and words[0] in e["message"]
            for e in events
        ), events
    # Refused before anything was set up on the node: no hostPath directory created,
    # and nothing ran, however long one waits.
    time.sleep(2)
    assert not host_dir.exists()
    for name in cases:
        pod = cluster.pod(name, open_namespace)
        assert "running" not in container_status(pod)["state"], pod["status"]
        assert "terminated" not in container_status(pod)["state"], pod["status"]


def test_with_the_flag_a_root_privileged_host_pod_runs(
    cluster, open_namespace, privileged_node, tmp_path
):
    pod = _root_pod(
        "host-everything",
        open_namespace,
        WRITE_HOST,
        container={
            "args": ["/mnt/host"],
            "securityContext": {"runAsUser": 0, "privileged": True},
            "volumeMounts": [{"name": "host", "mountPath": "/mnt/host"}],
        },
        nodeName=privileged_node,
        hostNetwork=True,
        hostPID=True,
        hostIPC=True,
        volumes=[{"name": "host", "hostPath": {"path": str(tmp_path), "type": "Directory"}}],
    )
    cluster.apply(pod)
    report = _report(_finished(cluster, "host-everything", open_namespace))
    assert report["uid"] == 0
    assert (tmp_path / "written-by-pod").read_text() == "0"
    # the node's PID namespace (its pid 1, not a pause) and the node's interfaces
    host_init = Path("/proc/1/cmdline").read_bytes().split(b"\0")[0].decode()
    assert report["host_init"] == host_init, report
    bridges = [name for name in report["interfaces"] if name.endswith("br")]
    assert bridges, report  # the agents' bridges, seen only from the node's network
