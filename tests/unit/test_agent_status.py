"""Pod status as the kubelet computes it: phase, conditions, termination messages."""

from __future__ import annotations

import pytest

from torchyard.local.agent.policy import BackOff, crash_loop_message, should_restart
from torchyard.local.agent.status import (
    ContainerRecord,
    PodView,
    condition_dicts,
    exit_code_of,
    pod_conditions,
    pod_phase,
    pod_status,
    terminated,
    termination_message,
    waiting,
)

T0, T1 = "2026-01-01T00:00:00Z", "2026-01-01T00:01:00Z"


def running(name="main", ready=True):
    return ContainerRecord(name, "img", {"running": {"startedAt": T0}}, ready=ready, started=True)


def ended(code, name="main"):
    return ContainerRecord(name, "img", terminated(code, T0, T1))


def backing_off(code, name="main"):
    return ContainerRecord(
        name,
        "img",
        waiting("CrashLoopBackOff"),
        last_state=terminated(code, T0, T1),
        restart_count=1,
    )


@pytest.mark.parametrize(
    ("policy", "containers", "phase"),
    [
        ("Never", [ended(0)], "Succeeded"),
        ("Never", [ended(1)], "Failed"),
        ("Never", [ended(0), running("b")], "Running"),
        ("OnFailure", [ended(0)], "Succeeded"),
        ("OnFailure", [backing_off(1)], "Running"),
        ("Always", [ended(0)], "Running"),
        ("Always", [backing_off(0)], "Running"),
        ("Never", [ContainerRecord("main", "img", waiting("ErrImagePull"))], "Pending"),
        (
            "Always",
            [running(), ContainerRecord("b", "img", waiting("ContainerCreating"))],
            "Pending",
        ),
    ],
)
def test_phase_follows_get_phase(policy, containers, phase):
    assert pod_phase(policy, [], containers) == phase


def test_init_containers_keep_the_pod_pending_or_fail_it_under_never():
    app = [ContainerRecord("main", "img", waiting("PodInitializing"))]
    assert pod_phase("Always", [running("init")], app) == "Pending"
    assert pod_phase("OnFailure", [backing_off(1, "init")], app) == "Pending"
    assert pod_phase("Never", [ended(2, "init")], app) == "Failed"
    assert pod_phase("Always", [ended(0, "init")], [running()]) == "Running"


def test_a_pod_stopped_for_good_is_terminal_whatever_its_policy():
    assert pod_phase("Always", [], [ended(0)], terminal=True) == "Succeeded"
    assert pod_phase("Always", [], [ended(143)], terminal=True) == "Failed"
    assert (
        pod_phase("Always", [], [ContainerRecord("m", "i", waiting("ErrImagePull"))], terminal=True)
        == "Failed"
    )


def test_conditions_name_the_unready_containers():
    conds = {
        c.type: c
        for c in pod_conditions("Running", True, [], [running("a"), running("b", ready=False)])
    }
    assert conds["PodReadyToStartContainers"].status
    assert conds["Initialized"].status
    assert not conds["ContainersReady"].status
    assert conds["Ready"].message == "containers with unready status: [b]"


def test_readiness_gates_hold_ready_back():
    conds = pod_conditions("Running", True, [], [running()], ["example.com/feature"], current=[])
    ready = next(c for c in conds if c.type == "Ready")
    assert not ready.status and ready.reason == "ReadinessGatesNotReady"
    gate = [{"type": "example.com/feature", "status": "True"}]
    conds = pod_conditions("Running", True, [], [running()], ["example.com/feature"], current=gate)
    assert next(c for c in conds if c.type == "Ready").status


def test_finished_pods_are_not_ready_because_completed():
    conds = {c.type: c for c in pod_conditions("Succeeded", False, [], [ended(0)])}
    assert conds["Ready"].reason == "PodCompleted"
    assert conds["Initialized"].status


def test_transition_times_move_only_when_status_changes():
    conds = pod_conditions("Running", True, [], [running()])
    first = condition_dicts(conds, [], T0)
    again = condition_dicts(conds, first, T1)
    assert {c["lastTransitionTime"] for c in again} == {T0}
    flipped = condition_dicts(
        pod_conditions("Running", True, [], [running(ready=False)]), first, T1
    )
    assert next(c for c in flipped if c["type"] == "Ready")["lastTransitionTime"] == T1
    # reason and message are always sent (None clears them in a strategic merge patch)
    assert all("reason" in c and "message" in c for c in again)


def test_pod_status_carries_ips_and_container_statuses():
    view = PodView(
        init=[],
        containers=[running()],
        sandbox_ready=True,
        pod_ip="10.244.0.5",
        host_ip="10.244.0.1",
        start_time=T0,
    )
    view.containers[0].container_id = "torchyard://abc"
    status = pod_status({"spec": {"restartPolicy": "Always"}}, view, T1)
    assert status["phase"] == "Running"
    assert status["podIP"] == "10.244.0.5"
    assert status["podIPs"] == [{"ip": "10.244.0.5"}]
    assert status["hostIP"] == "10.244.0.1"
    assert status["containerStatuses"][0]["containerID"] == "torchyard://abc"
    assert status["containerStatuses"][0]["ready"] is True


def test_a_pod_failed_as_a_whole_says_why():
    view = PodView(
        init=[],
        containers=[ended(137)],
        terminal=True,
        reason="DeadlineExceeded",
        message="too long",
    )
    status = pod_status({"spec": {"restartPolicy": "Always"}}, view, T1)
    assert (status["phase"], status["reason"]) == ("Failed", "DeadlineExceeded")


def test_termination_message_prefers_the_file_and_falls_back_to_logs_on_error():
    assert termination_message(b'{"ok": 1}', "FallbackToLogsOnError", 1, b"log") == '{"ok": 1}'
    assert termination_message(b"", "FallbackToLogsOnError", 1, b"a\nb\n") == "a\nb\n"
    assert termination_message(b"", "FallbackToLogsOnError", 0, b"log") == ""
    assert termination_message(b"", "File", 1, b"log") == ""
    assert len(termination_message(b"x" * 10000, "File", 0, b"")) == 4096
    lines = b"".join(b"line %d\n" % i for i in range(200))
    tail = termination_message(b"", "FallbackToLogsOnError", 1, lines)
    assert tail.endswith("line 199\n") and "line 119\n" not in tail and len(tail) <= 2048


def test_exit_codes_of_signals():
    assert exit_code_of(-15) == (143, 15)
    assert exit_code_of(-9) == (137, 9)
    assert exit_code_of(3) == (3, None)


@pytest.mark.parametrize(
    ("policy", "code", "init", "restart"),
    [
        ("Always", 0, False, True),
        ("Always", 0, True, False),
        ("Always", 1, True, True),
        ("OnFailure", 0, False, False),
        ("OnFailure", 2, False, True),
        ("Never", 2, False, False),
        ("Never", 2, True, False),
    ],
)
def test_restart_policy(policy, code, init, restart):
    assert should_restart(policy, code, init) is restart


def test_back_off_is_immediate_then_doubles_to_the_cap_and_resets_after_a_long_run():
    backoff = BackOff(initial=10, cap=40, reset_after=600)
    waits, current = [], 0.0
    for _ in range(5):
        wait, current = backoff.next(current, ran_for=1)
        waits.append(wait)
    assert waits == [0, 10, 20, 40, 40]
    assert backoff.next(40, ran_for=700) == (0, 10)


def test_crash_loop_message_spells_durations_like_the_kubelet():
    assert (
        crash_loop_message(10, "c", "p", "ns", "u")
        == "back-off 10s restarting failed container=c pod=p_ns(u)"
    )
    assert "back-off 5m0s" in crash_loop_message(300, "c", "p", "ns", "u")
