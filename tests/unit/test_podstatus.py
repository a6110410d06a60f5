"""What a finished pod says, as the controllers see it (their index keeps a snapshot)."""

from __future__ import annotations

from tests.builders import pod
from torchyard.controllers.children import snapshot
from torchyard.podstatus import OOM_KILLED, pod_outcome


def _killed_pod(limits: dict[str, str]) -> dict:
    return (
        pod("job-abc", "team-a")
        .uid("u1")
        .container(limits=limits)
        .empty_dir("tmp")
        .phase("Failed")
        .terminated(137, reason=OOM_KILLED)
        .obj()
    )


def test_a_container_killed_at_its_memory_limit_is_told_with_the_limit_and_the_fix():
    outcome = pod_outcome(snapshot(_killed_pod({"memory": "96Mi", "cpu": "1"})))
    assert outcome is not None
    assert (outcome.reason, outcome.exit_code) == (OOM_KILLED, 137)
    assert "memory limit of 96Mi" in outcome.message
    assert "spec.resources.limits.memory" in outcome.message


def test_the_snapshot_keeps_only_the_memory_limits_of_the_spec():
    kept = snapshot(_killed_pod({"memory": "1Gi", "cpu": "2"}))
    assert kept["spec"] == {
        "containers": [{"name": "worker", "resources": {"limits": {"memory": "1Gi"}}}]
    }


def test_an_oom_kill_without_a_limit_still_says_what_to_change():
    outcome = pod_outcome(_killed_pod({}))
    assert outcome is not None
    assert "more memory than its memory limit;" in outcome.message


def test_a_workload_s_own_termination_message_wins_over_the_kubelet_s_reason():
    said = '{"reason": "ModelNotFound", "message": "no model at pvc://m/x"}'
    killed = pod("job-abc", "team-a").phase("Failed").terminated(137, OOM_KILLED, said).obj()
    outcome = pod_outcome(killed)
    assert outcome is not None
    assert (outcome.reason, outcome.message) == ("ModelNotFound", "no model at pvc://m/x")
