"""The model router on the local cluster (on by default): a candidate at 25 % with one
pod per version serves a quarter of 2,000 requests through the model's Service, and its
status.weight says so; requests with the rollout's stickyHeader keep to one version per
session."""

from __future__ import annotations

import json

from tests.cluster.torchyard import apply, get, wait_until
from tests.e2e.conftest import python_pod
from tests.e2e.test_modelversion_e2e import _status, _version, _wait_ready, artifacts, root

__all__ = ["artifacts", "root"]  # the fixtures this module shares


def _routed(cluster, namespace):
    """Whether the model's Service sends to the model's router pods."""
    service = get(cluster.cp, "service", "digits-model", "-n", namespace)
    return service["spec"]["selector"].get("torchyard.io/router") == "true"


def test_the_router_serves_the_weight_asked_for_and_status_says_so(
    cluster, namespace, operator, artifacts
):
    apply(cluster.cp, namespace, _version("1", artifacts["1"]))
    _wait_ready(cluster, namespace, "digits-v1")
    quarter = {"steps": [{"setWeight": 25}, {"pause": {}}], "stickyHeader": "X-Session"}
    apply(cluster.cp, namespace, _version("2", artifacts["2"], rollout=quarter))
    # At 25 % (waiting for an analysis, then paused) with a ready pod.
    wait_until(
        "v2 at 25 % with a ready pod, behind the model's router",
        lambda: (
            (s := _status(cluster, namespace, "digits-v2")).get("desiredWeight") == 25
            and s.get("readyReplicas") == 1
            and _routed(cluster, namespace)
        ),
        timeout=240,
    )
    # One pod per version: replica ratios would serve 50 %.
    url = _status(cluster, namespace, "digits-v1")["url"]
    command = ["python", "-m", "torchyard.workloads.serve.client", url, "--interval", "0"]
    client = python_pod(
        "weights",
        namespace,
        "",
        command=[*command, "--requests", "2000", "--output", "/dev/termination-log"],
        terminationMessagePolicy="FallbackToLogsOnError",
    )
    cluster.apply(client)
    pod = cluster.wait_phase("weights", namespace, "Succeeded", "Failed", timeout=300)
    ended = pod["status"]["containerStatuses"][0]["state"]["terminated"]
    assert pod["status"]["phase"] == "Succeeded", ended
    counts = json.loads(ended["message"])
    assert set(counts) == {"1", "2"} and counts["1"][1] == counts["2"][1] == 0, counts
    served = 100 * counts["2"][0] / 2000
    print(f"2,000 requests at 25 %: {counts} ({served:.2f} % to v2)")
    assert abs(served - 25) <= 2, counts

    # status.weight is the share the routers counted; desiredWeight the step's.
    wait_until(
        "v2's status.weight is the share served",
        lambda: abs(_status(cluster, namespace, "digits-v2").get("weight", -10) - served) <= 1,
        timeout=60,
    )
    v2, v1 = _status(cluster, namespace, "digits-v2"), _status(cluster, namespace, "digits-v1")
    assert v2["desiredWeight"] == 25 and v1["desiredWeight"] == 75
    assert abs(v1["weight"] - (100 - served)) <= 1, v1

    # Sessions: every request of one X-Session value reaches one version.
    sessions = python_pod("sessions", namespace, SESSIONS.format(url=url))
    sessions["spec"]["containers"][0]["terminationMessagePolicy"] = "FallbackToLogsOnError"
    cluster.apply(sessions)
    pod = cluster.wait_phase("sessions", namespace, "Succeeded", "Failed", timeout=300)
    ended = pod["status"]["containerStatuses"][0]["state"]["terminated"]
    assert pod["status"]["phase"] == "Succeeded", ended
    by_session = json.loads(ended["message"])
    print(f"versions by session: {by_session}")
    assert all(len(versions) == 1 for versions in by_session.values()), by_session
    assert {v for versions in by_session.values() for v in versions} == {"1", "2"}, by_session


SESSIONS = """
import json
from torchyard.workloads.serve.client import call, request_body
url = "{url}"
body = request_body(json.loads(call(url)[2]))
seen = {{}}
for session in range(24):
    for _ in range(10):
        status, version, _ = call(url + "/infer", body, headers={{"X-Session": f"s{{session}}"}})
        assert status == 200, status
        seen.setdefault(str(session), set()).add(version)
open("/dev/termination-log", "w").write(json.dumps({{k: sorted(v) for k, v in seen.items()}}))
"""
