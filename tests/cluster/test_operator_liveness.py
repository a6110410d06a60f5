"""Liveness follows the operator's own background tasks (torchyard.controllers.
supervisor): the real operator process, under its own RBAC against a real API server,
with one extra supervised task that fails (tests/cluster/supervised_task.py).

- A task that dies for good turns `--liveness` into a 500 within 30 s, so the kubelet
  restarts the operator; the log says which task and why.
- A transient failure is survived: the task is restarted, liveness stays 200 and lists
  every supervised task as running.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from tests.cluster.torchyard import (
    OPERATOR_ACCOUNT,
    OPERATOR_NAMESPACE,
    free_port,
    install,
    wait_until,
)
from tests.objects import REPO


def _liveness(url: str) -> tuple[int, dict]:
    try:
        with urllib.request.urlopen(url, timeout=10) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, {}
    except OSError:
        return 0, {}  # not serving yet


@contextmanager
def _operator_with(task: str, control_plane, log: Path) -> Iterator[str]:
    install(control_plane)
    kubeconfig = control_plane.service_account_kubeconfig(OPERATOR_NAMESPACE, OPERATOR_ACCOUNT)
    liveness = f"http://127.0.0.1:{free_port()}/healthz"
    command = [
        sys.executable, "-m", "tests.cluster.supervised_task", task,
        "operator", f"--liveness={liveness}",
    ]  # fmt: skip
    env = {**os.environ, "KUBECONFIG": str(kubeconfig)}
    with log.open("w") as out:
        process = subprocess.Popen(
            command, cwd=REPO, env=env, stdout=out, stderr=subprocess.STDOUT,
            start_new_session=True,
        )  # fmt: skip
    try:
        wait_until("the liveness endpoint", lambda: _liveness(liveness)[0], timeout=60)
        yield liveness
    finally:
        process.terminate()
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def test_a_background_task_that_dies_for_good_makes_liveness_fail(control_plane, tmp_path):
    log = tmp_path / "operator.log"
    with _operator_with("doomed", control_plane, log) as liveness:
        wait_until("liveness to answer 500", lambda: _liveness(liveness)[0] == 500, timeout=30)
        text = log.read_text()
    assert "background task test-doomed stopped (RuntimeError: the test's doomed task" in text
    # The probe's reason, as kopf logs it (the count goes on: the task is still retried).
    assert re.search(
        r"backgroundTasks' failed permanently: background task test-doomed "
        r"failed \d+ times in a row \(last: RuntimeError",
        text,
    )


def test_a_transient_failure_is_survived_and_liveness_stays_healthy(control_plane, tmp_path):
    log = tmp_path / "operator.log"
    with _operator_with("flaky", control_plane, log) as liveness:
        wait_until(
            "the flaky task restarted",
            lambda: "background task test-flaky stopped" in log.read_text(),
            timeout=30,
        )
        answers = []
        for _ in range(4):  # past the probe's 10 s cache, and the 5 s to count as stable
            answers.append(_liveness(liveness))
            time.sleep(4)
    assert [status for status, _ in answers] == [200] * 4, answers
    assert answers[-1][1]["backgroundTasks"] == {
        "progress-poller": "running",
        "test-flaky": "running",
    }
    assert "ConnectionError: the test's flaky task failed once" in log.read_text()
