"""Deleting a pod stops its processes within the grace period before the object goes;
stopping the agent leaves no process, namespace, veth or mount behind."""

from __future__ import annotations

import os
import secrets
import subprocess
import tempfile
import time
from pathlib import Path

import pytest

from tests.e2e.conftest import Cluster, python_pod, remove_state
from torchyard.local.agent import launcher

pytestmark = pytest.mark.e2e


def _pids_with(marker: str) -> list[int]:
    """Live processes whose command line contains `marker`."""
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            cmdline = Path(f"/proc/{entry}/cmdline").read_bytes()
            state = Path(f"/proc/{entry}/stat").read_text().rsplit(")", 1)[1].split()[0]
        except OSError:
            continue
        if marker.encode() in cmdline and state != "Z":
            found.append(int(entry))
    return found


def _wait_for(check, timeout=30.0, what=""):
    deadline = time.monotonic() + timeout
    while not (result := check()):
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.1)
    return result


# Ignores SIGTERM, so only the SIGKILL at the end of the grace period stops it.
STUBBORN = (
    "import signal, sys, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); time.sleep(600)"
)
POLITE = "import time; time.sleep(600)"


@pytest.mark.parametrize(
    ("script", "grace", "at_least", "at_most"),
    [(STUBBORN, 3, 2.5, 8), (POLITE, 30, 0, 5)],
    ids=["ignores-sigterm-killed-after-grace", "exits-on-sigterm"],
)
def test_deleting_a_pod_stops_its_processes_within_the_grace_period(
    cluster, namespace, script, grace, at_least, at_most
):
    marker = f"marker-{secrets.token_hex(4)}"
    pod = python_pod("doomed", namespace, script, restart_policy="Always", args=[marker])
    pod["spec"]["terminationGracePeriodSeconds"] = grace
    cluster.apply(pod)
    cluster.wait_phase("doomed", namespace, "Running")
    pids = _wait_for(lambda: _pids_with(marker), what="the container's process")
    began = time.monotonic()
    cluster.cp.kubectl("delete", "pod", "doomed", "-n", namespace, "--wait=false")
    cluster.wait_gone("pod", "doomed", namespace, timeout=at_most + 10)
    took = time.monotonic() - began
    # The object is released only once the processes are gone.
    assert _pids_with(marker) == [], pids
    assert at_least <= took <= at_most, took


def _mounts_under(path: Path) -> list[str]:
    prefix = str(path)
    with open("/proc/self/mountinfo") as f:
        return [line.split()[4] for line in f if line.split()[4].startswith(prefix)]


def _ip(*args: str) -> str:
    return subprocess.run(["ip", *args], capture_output=True, text=True, check=True).stdout


def test_stopping_the_agent_leaves_nothing_behind(cluster: Cluster, namespace):
    # A second agent, on its own node, bridge and prefix, so that stopping it leaves the
    # session's agent running.
    node = "torchyard-e2e-stop"
    state = Path(tempfile.mkdtemp(prefix="torchyard-e2e-stop-"))
    flags = launcher.isolated_network_flags("tz")
    prefix = next(f for f in flags if f.startswith("--prefix=")).split("=", 1)[1]
    agent = launcher.start(cluster.cp, state, node=node, extra=flags)
    marker = f"marker-{secrets.token_hex(4)}"
    mount_point = f"/mnt/{prefix}-{secrets.token_hex(3)}"
    # The container forks a child into a session of its own (out of its process group):
    # the agent must find it anyway.
    script = (
        "import subprocess, sys, time\n"
        "subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(600)',\n"
        f"                  '{marker}-child'], start_new_session=True)\n"
        "time.sleep(600)\n"
    )
    try:
        for i in range(2):
            pod = python_pod(
                f"busy-{i}",
                namespace,
                script,
                restart_policy="Always",
                args=[marker],
                volumeMounts=[
                    {"name": "scratch", "mountPath": mount_point},
                    {"name": "shm", "mountPath": "/cache"},
                ],
                pod_spec={
                    "nodeName": node,
                    "volumes": [
                        {"name": "scratch", "emptyDir": {}},
                        {"name": "shm", "emptyDir": {"medium": "Memory", "sizeLimit": "16Mi"}},
                    ],
                },
            )
            cluster.apply(pod)
        for i in range(2):
            cluster.wait_phase(f"busy-{i}", namespace, "Running")
        _wait_for(lambda: len(_pids_with(marker)) == 4, what="two containers and their children")
        assert Path(mount_point).is_dir()
        assert len(_ip("netns", "list").split(f"{prefix}-")) > 2
        assert _mounts_under(state)  # the memory-backed emptyDirs
    finally:
        launcher.stop(agent)

    assert _pids_with(marker) == []
    assert f"{prefix}-" not in _ip("netns", "list")
    assert [line for line in _ip("-o", "link").splitlines() if f": {prefix}" in line] == []
    assert _mounts_under(state) == []
    assert not Path(mount_point).exists()
    assert agent.returncode() == 0, Path(agent.log).read_text()[-3000:]
    remove_state(state)
    cluster.cp.kubectl("delete", "pods", "--all", "-n", namespace, "--force", "--grace-period=0")
