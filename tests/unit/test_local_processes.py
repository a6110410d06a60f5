"""Children of the local control plane are stopped and reaped, stubborn ones too."""

import os
import sys
import time
from pathlib import Path

from torchyard.local import processes


def _gone(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    return False


def test_stop_terminates_and_reaps(tmp_path):
    child = processes.spawn("sleeper", ["sleep", "60"], tmp_path / "sleeper.log")
    assert child.returncode() is None
    processes.stop([child], grace=5)
    assert child.returncode() is not None
    assert _gone(child.pid)


def test_stop_kills_a_child_that_ignores_sigterm_and_its_process_group(tmp_path):
    # The child ignores SIGTERM and forks a grandchild; both must be gone afterwards.
    script = (
        "import signal, subprocess, sys, time\n"
        "signal.signal(signal.SIGTERM, signal.SIG_IGN)\n"
        "p = subprocess.Popen(['sleep', '60'])\n"
        "print(p.pid, flush=True)\n"
        "time.sleep(60)\n"
    )
    log = tmp_path / "stubborn.log"
    child = processes.spawn("stubborn", [sys.executable, "-c", script], log)
    deadline = time.monotonic() + 10
    while not log.read_text().strip() and time.monotonic() < deadline:
        time.sleep(0.05)
    grandchild = int(log.read_text().split()[0])
    started = time.monotonic()
    processes.stop([child], grace=0.5)
    assert time.monotonic() - started < 5
    assert child.popen is not None and child.popen.returncode == -9
    deadline = time.monotonic() + 5
    while not _gone(grandchild) and time.monotonic() < deadline:
        time.sleep(0.05)  # init reaps the orphan shortly after the kill
    assert _gone(grandchild) or _is_zombie(grandchild)


def _is_zombie(pid: int) -> bool:
    stat = Path(f"/proc/{pid}/stat").read_text()
    return stat.rsplit(")", 1)[1].split()[0] == "Z"


def test_a_detached_record_of_a_dead_pid_is_not_ours(tmp_path):
    child = processes.spawn("short", ["true"], tmp_path / "short.log")
    assert child.popen is not None
    child.popen.wait()
    record = processes.Child(child.name, child.pid, child.exe, child.log)
    assert not record.is_ours()
    assert record.returncode() is not None


def test_a_detached_record_does_not_match_another_program(tmp_path):
    child = processes.spawn("sleeper", ["sleep", "60"], tmp_path / "s.log")
    try:
        impostor = processes.Child("etcd", child.pid, "/some/other/etcd", child.log)
        assert not impostor.is_ours()
        processes.stop([impostor], grace=0.1)  # must not signal a stranger
        assert child.returncode() is None
    finally:
        processes.stop([child], grace=5)


def test_log_tail(tmp_path):
    log = tmp_path / "x.log"
    log.write_text("".join(f"line {i}\n" for i in range(50)))
    assert processes.log_tail(log, 3) == "line 47\nline 48\nline 49"
    assert "does not exist" in processes.log_tail(tmp_path / "missing.log")
