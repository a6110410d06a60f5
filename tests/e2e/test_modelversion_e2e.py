"""ModelVersions served by real server pods on the local cluster: first version, a digest
mismatch that is never served, promotion, pause, manual and automatic rollback, deleting
the serving version; a client sends requests through the model's Service meanwhile."""

from __future__ import annotations

import json
import os
import secrets
import shutil
from datetime import datetime, timedelta
from pathlib import Path

import pytest

from tests.cluster.torchyard import (
    apply,
    events,
    get,
    wait_for,
    wait_until,
)
from tests.e2e.conftest import python_pod
from tests.workload.quality import BASE, over_pruned, perturbed, reference, trained
from torchyard.resources.pods import owner_labels
from torchyard.storage import describe
from torchyard.workloads.artifacts import save_artifact
from torchyard.workloads.models import mlp

FACTORY = "torchyard.workloads.models:mlp"


@pytest.fixture(scope="module")
def root():
    """Where pods can read the test's files (not /tmp: that is their own emptyDir)."""
    root = Path("/opt") / f"torchyard-e2e-{secrets.token_hex(4)}"
    root.mkdir(parents=True)
    os.chmod(root, 0o755)
    yield root
    shutil.rmtree(root, ignore_errors=True)


@pytest.fixture(scope="module")
def artifacts(root):
    """Small torchyard artifacts, one per version."""
    found = {}
    for version in ("1", "2", "3"):
        artifact = save_artifact(
            f"file://{root}/v{version}", mlp(), base={"factory": FACTORY, "kwargs": {}}
        )
        found[version] = artifact
    for path in [root, *root.rglob("*")]:
        os.chmod(path, 0o755 if path.is_dir() else 0o644)
    return found


@pytest.fixture(scope="module")
def digits_artifacts(root):
    """A digits classifier trained here (1), its weights moved by 0.1 % (2), and it
    over-pruned (3): 3 answers every request, worse."""
    found = {}
    for version, model in (("1", trained()), ("2", perturbed()), ("3", over_pruned())):
        found[version] = save_artifact(f"file://{root}/digits-v{version}", model, base=BASE)
    for path in [root, *root.rglob("*")]:
        os.chmod(path, 0o755 if path.is_dir() else 0o644)
    return found


FAST_ANALYSIS = {"intervalSeconds": 3, "failureLimit": 2, "minRequestCount": 5}
STEPS = [{"setWeight": 50}, {"pause": {"durationSeconds": 2}}]


def _version(version, artifact, digest=None, **spec):
    return {
        "apiVersion": "torchyard.io/v1alpha1",
        "kind": "ModelVersion",
        "metadata": {"name": f"digits-v{version}", "labels": {"torchyard.io/model": "digits"}},
        "spec": {
            "model": "digits",
            "version": version,
            "artifact": {"uri": artifact.uri, "digest": digest or artifact.digest},
            "serving": {"replicas": 1},
            "rollout": {"steps": [{"setWeight": 50}, {"pause": {}}]},
            **spec,
        },
    }


def _status(cluster, namespace, name):
    return get(cluster.cp, "mv", name, "-n", namespace).get("status", {})


def _condition(status, kind):
    return next(c for c in status["conditions"] if c["type"] == kind)


def _time(stamp):
    return datetime.fromisoformat(stamp.replace("Z", "+00:00"))


def _wait_ready(cluster, namespace, name):
    wait_for(cluster.cp, namespace, f"mv/{name}", "Ready", 240)


def _wait_phase(cluster, namespace, name, phase, timeout=240):
    wait_until(
        f"{name} {phase}",
        lambda: _status(cluster, namespace, name).get("phase") == phase,
        timeout=timeout,
    )
    return _status(cluster, namespace, name)


def _start_client(cluster, namespace, stop):
    """A client of the model's Service that counts answers by version until `stop`."""
    url = _status(cluster, namespace, "digits-v1")["url"]
    command = ["python", "-m", "torchyard.workloads.serve.client", url, "--stop-file", str(stop)]
    command.append("--times")  # when each version answered, and what no version did
    client = python_pod(
        "client",
        namespace,
        "",
        command=[*command, "--output", "/dev/termination-log"],
        terminationMessagePolicy="FallbackToLogsOnError",
    )
    cluster.apply(client)
    cluster.wait_phase("client", namespace, "Running", timeout=60)


def _stop_client(cluster, namespace, stop):
    stop.touch()
    pod = cluster.wait_phase("client", namespace, "Succeeded", "Failed", timeout=60)
    ended = pod["status"]["containerStatuses"][0]["state"]["terminated"]
    assert pod["status"]["phase"] == "Succeeded", ended
    timed = json.loads(ended["message"])
    print(f"client: {timed}")  # shown with a failure: when, and what went unanswered
    if timed["unanswered"]:
        # What the router pods said meanwhile (the agent keeps logs as files).
        logs = cluster.state_dir.glob(f"pods/{namespace}_digits-router-*/containers/*/*.log")
        for log in sorted(logs):
            lines = log.read_text().splitlines()
            said = [line for line in lines if " INFO " not in line]
            tables = [line for line in lines if "routes generation" in line]
            print(f"{log.parent.parent.parent.name}: {tables[-6:]} {said[-20:]}")
    return timed["counts"]


def test_first_version_serves_and_is_ready(cluster, namespace, operator, artifacts):
    apply(cluster.cp, namespace, _version("1", artifacts["1"]))
    _wait_ready(cluster, namespace, "digits-v1")
    status = _status(cluster, namespace, "digits-v1")
    assert status["phase"] == "Serving"
    assert status["weight"] == 100
    assert status["readyReplicas"] == 1
    assert status["url"].endswith("/v2/models/digits")


def test_digest_mismatch_is_never_served_and_v1_keeps_serving(
    cluster, namespace, operator, artifacts
):
    apply(cluster.cp, namespace, _version("1", artifacts["1"]))
    _wait_ready(cluster, namespace, "digits-v1")
    apply(cluster.cp, namespace, _version("2", artifacts["2"], digest="sha256:" + "0" * 64))
    wait_until(
        "v2 Failed",
        lambda: _status(cluster, namespace, "digits-v2").get("phase") == "Failed",
        timeout=240,
    )
    status = _status(cluster, namespace, "digits-v2")
    verified = next(c for c in status["conditions"] if c["type"] == "ArtifactVerified")
    assert verified["status"] == "False" and verified["reason"] == "DigestMismatch"
    assert status.get("readyReplicas", 0) == 0
    assert _status(cluster, namespace, "digits-v1")["phase"] == "Serving"


def test_an_artifact_naming_a_foreign_factory_is_never_served_and_v1_keeps_serving(
    cluster, namespace, operator, artifacts, root
):
    # Published with a correct digest: its manifest names code to run at load.
    hostile = root / "hostile"
    save_artifact(f"file://{hostile}", mlp(), base={"factory": FACTORY, "kwargs": {}})
    manifest = hostile / "manifest.json"
    content = json.loads(manifest.read_text())
    content["base"] = {"factory": "os:system", "kwargs": {"command": "id"}}
    manifest.write_text(json.dumps(content))
    for path in [hostile, *hostile.rglob("*")]:
        os.chmod(path, 0o755 if path.is_dir() else 0o644)
    apply(cluster.cp, namespace, _version("1", artifacts["1"]))
    _wait_ready(cluster, namespace, "digits-v1")
    apply(cluster.cp, namespace, _version("2", describe(f"file://{hostile}")))
    _wait_phase(cluster, namespace, "digits-v2", "Failed")
    serving_pods = ",".join(
        f"{k}={v}" for k, v in owner_labels("ModelVersion", "digits-v2").items()
    )
    # A Failed version runs no pods: its status is read once they are gone, so that it
    # is the lasting one, not the moment the pods still reported the refusal.
    wait_until(
        "v2's pods gone",
        lambda: not get(cluster.cp, "pods", "-n", namespace, "-l", serving_pods)["items"],
        timeout=120,
    )
    status = _status(cluster, namespace, "digits-v2")
    healthy = _condition(status, "Healthy")
    assert healthy["status"] == "False" and healthy["reason"] == "FactoryNotAllowed"
    assert "'os:system'" in healthy["message"] and "--allowed-factories" in healthy["message"]
    assert status.get("readyReplicas", 0) == 0
    assert events(cluster.cp, namespace, "digits-v2", "FactoryNotAllowed")
    v1 = _status(cluster, namespace, "digits-v1")
    assert v1["phase"] == "Serving" and v1["weight"] == 100


def test_promote_then_roll_back_the_serving_version(cluster, namespace, operator, artifacts):
    apply(cluster.cp, namespace, _version("1", artifacts["1"]))
    _wait_ready(cluster, namespace, "digits-v1")
    apply(cluster.cp, namespace, _version("2", artifacts["2"]))
    wait_until(
        "v2 at its first step",
        lambda: _status(cluster, namespace, "digits-v2").get("phase") in ("Progressing", "Paused"),
        timeout=120,
    )
    apply(cluster.cp, namespace, _version("2", artifacts["2"], promote=True))
    _wait_ready(cluster, namespace, "digits-v2")
    _wait_phase(cluster, namespace, "digits-v1", "Superseded", timeout=60)
    assert events(cluster.cp, namespace, "digits-v2", "Promoted")

    # Rolling back the version that serves restores the one before it.
    apply(cluster.cp, namespace, _version("2", artifacts["2"], rollback=True))
    status = _wait_phase(cluster, namespace, "digits-v2", "RolledBack", timeout=60)
    _wait_ready(cluster, namespace, "digits-v1")
    restored = _status(cluster, namespace, "digits-v1")
    assert restored["phase"] == "Serving" and restored["weight"] == 100
    wait_until(
        "v2's pods gone",
        lambda: _status(cluster, namespace, "digits-v2").get("readyReplicas") == 0,
        timeout=60,
    )
    assert status["weight"] == 0


def test_pause_holds_the_step_and_rollback_returns_traffic_at_once(
    cluster, namespace, operator, artifacts
):
    apply(cluster.cp, namespace, _version("1", artifacts["1"]))
    _wait_ready(cluster, namespace, "digits-v1")
    apply(
        cluster.cp, namespace, _version("2", artifacts["2"], paused=True, rollout={"steps": STEPS})
    )
    wait_until(
        "v2 paused at 50 % with a ready pod",
        lambda: (
            (s := _status(cluster, namespace, "digits-v2")).get("phase") == "Paused"
            and s.get("readyReplicas") == 1
        ),
        timeout=240,
    )
    status = _status(cluster, namespace, "digits-v2")
    assert status["weight"] == 50 and status["currentStep"] == 0
    assert _condition(status, "Progressing")["reason"] == "Paused"
    assert events(cluster.cp, namespace, "digits-v2", "Paused")

    rolled_back = _version("2", artifacts["2"], rollback=True, rollout={"steps": STEPS})
    apply(cluster.cp, namespace, rolled_back)
    status = _wait_phase(cluster, namespace, "digits-v2", "RolledBack", timeout=60)
    progressing = _condition(status, "Progressing")
    assert progressing["reason"] == "ManualRollback"
    assert "version 1" in progressing["message"]
    stable = _status(cluster, namespace, "digits-v1")
    assert stable["phase"] == "Serving" and stable["weight"] == 100
    assert events(cluster.cp, namespace, "digits-v2", "RolledBack")


def _v1_serving_with_a_client(cluster, namespace, artifacts, root):
    """v1 serving and a client of the model's Service counting answers by version;
    returns the file whose creation stops the client."""
    apply(cluster.cp, namespace, _version("1", artifacts["1"]))
    _wait_ready(cluster, namespace, "digits-v1")
    stop = root / f"stop-{namespace}"
    _start_client(cluster, namespace, stop)
    return stop


def _v2_promoted_over_v1(cluster, namespace, artifacts, root, rollout):
    """v1 serving, a client of the model's Service counting answers (stopped by touching
    the file returned), v2 rolled out with `rollout` and promoted by a passed analysis;
    returns the stop file and v2's status."""
    stop = _v1_serving_with_a_client(cluster, namespace, artifacts, root)
    apply(cluster.cp, namespace, _version("2", artifacts["2"], rollout=rollout))
    _wait_ready(cluster, namespace, "digits-v2")
    v2 = _status(cluster, namespace, "digits-v2")
    assert v2["analysis"]["verdict"] == "Pass", v2
    return stop, v2


def test_analysis_promotes_v2_rolls_back_failing_v3_and_v2_never_fails_a_client(
    cluster, namespace, operator, artifacts, root
):
    rollout = {"steps": STEPS, "analysis": FAST_ANALYSIS}
    # v2 passes an analysis of the client's real traffic at 50 % and is promoted.
    stop, v2 = _v2_promoted_over_v1(cluster, namespace, artifacts, root, rollout)
    assert v2["analysis"]["requests"] >= 5
    assert events(cluster.cp, namespace, "digits-v2", "StepCompleted")

    # v3 answers every inference request with 500: rolled back after failureLimit
    # failed analyses, with the figures in the message.
    faulty = {"replicas": 1, "env": [{"name": "TORCHYARD_FAULT_RATE", "value": "1.0"}]}
    apply(cluster.cp, namespace, _version("3", artifacts["3"], rollout=rollout, serving=faulty))
    v3 = _wait_phase(cluster, namespace, "digits-v3", "RolledBack")
    progressing = _condition(v3, "Progressing")
    assert progressing["reason"] == "AnalysisFailed"
    assert "error rate" in progressing["message"] and "version 2" in progressing["message"]
    assert v3["analysis"]["verdict"] == "Fail" and v3["analysis"]["failures"] == 2
    # Traffic went back in the reconcile that saw the last failure, not a window later;
    # a loaded machine may make a window Inconclusive (too few requests), so the time
    # from the step's start to the rollback is only bounded below. Whole seconds in status.
    rolled_back = _time(progressing["lastTransitionTime"])
    assert rolled_back - _time(v3["analysis"]["time"]) <= timedelta(seconds=1), v3
    limit = FAST_ANALYSIS["intervalSeconds"] * FAST_ANALYSIS["failureLimit"]
    assert (rolled_back - _time(v3["stepStartTime"])).total_seconds() >= limit - 1, v3
    assert _condition(v3, "Healthy")["status"] == "False"
    assert _status(cluster, namespace, "digits-v2")["phase"] == "Serving"

    # Deleting the serving version (from Git) restores v1, which takes over without a gap.
    cluster.cp.kubectl("delete", "mv/digits-v2", "-n", namespace, "--wait=false")
    _wait_ready(cluster, namespace, "digits-v1")
    cluster.wait_gone("mv", "digits-v2", namespace, timeout=120)

    counts = _stop_client(cluster, namespace, stop)
    assert counts["3"][1] > 0, counts
    assert counts["2"][0] > 0 and counts["2"][1] == 0, counts
    assert counts["1"][0] > 0 and counts["1"][1] == 0, counts
    assert "none" not in counts, counts


def test_a_version_that_regresses_after_promotion_goes_back_to_the_one_it_replaced(
    cluster, namespace, operator, artifacts, root
):
    stop = _v1_serving_with_a_client(cluster, namespace, artifacts, root)

    # v2 is healthy for its rollout, promoted, then answers every request with a 500
    # from 60 s after its server started: the watch after promotion catches it.
    watched = {
        "steps": [{"setWeight": 100}],
        "analysis": {**FAST_ANALYSIS, "afterPromotionSeconds": 600},
    }
    regresses = {
        "replicas": 1,
        "env": [
            {"name": "TORCHYARD_FAULT_RATE", "value": "1.0"},
            {"name": "TORCHYARD_FAULT_AFTER_SECONDS", "value": "60"},
        ],
    }
    apply(cluster.cp, namespace, _version("2", artifacts["2"], rollout=watched, serving=regresses))
    _wait_ready(cluster, namespace, "digits-v2")
    promoted = _status(cluster, namespace, "digits-v2")
    assert promoted["phase"] == "Serving" and "watchedUntil" in promoted, promoted
    assert _condition(promoted, "Progressing")["reason"] == "Promoted"

    v2 = _wait_phase(cluster, namespace, "digits-v2", "RolledBack", timeout=180)
    progressing = _condition(v2, "Progressing")
    assert progressing["reason"] == "RegressedAfterPromotion", v2
    assert "error rate" in progressing["message"] and "version 1" in progressing["message"]
    assert events(cluster.cp, namespace, "digits-v2", "RolledBack")
    _wait_ready(cluster, namespace, "digits-v1")
    restored = _status(cluster, namespace, "digits-v1")
    assert restored["phase"] == "Serving" and restored["weight"] == 100

    counts = _stop_client(cluster, namespace, stop)
    assert counts["2"][0] > 0 and counts["2"][1] > 0, counts  # served, then failed
    assert counts["1"][0] > 0 and counts["1"][1] == 0, counts


def test_a_candidate_that_answers_200_but_worse_is_rolled_back_for_quality(
    cluster, namespace, operator, digits_artifacts, root
):
    artifacts = digits_artifacts
    quality = reference("agreement", 0.9, rows=32)
    rollout = {"steps": STEPS, "analysis": {**FAST_ANALYSIS, "quality": quality}}
    # v2 (a faithful compression of v1) answers the reference rows as v1 does: promoted.
    stop, v2 = _v2_promoted_over_v1(cluster, namespace, artifacts, root, rollout)
    assert v2["analysis"]["quality"]["score"] >= 0.9 and v2["analysis"]["quality"]["rows"] == 32

    # v3 (over-pruned) answers every request with a 200, but disagrees with v2 on the
    # reference rows: rolled back for quality, the figures in status.
    apply(cluster.cp, namespace, _version("3", artifacts["3"], rollout=rollout))
    v3 = _wait_phase(cluster, namespace, "digits-v3", "RolledBack")
    progressing = _condition(v3, "Progressing")
    assert progressing["reason"] == "QualityRegression", v3
    assert "below the minimum 90.00%" in progressing["message"], v3
    assert "version 2" in progressing["message"]
    assert v3["analysis"]["errorRate"] == 0.0 and v3["analysis"]["requests"] >= 5, v3
    assert v3["analysis"]["quality"]["metric"] == "agreement"
    assert v3["analysis"]["quality"]["score"] < 0.9, v3
    assert events(cluster.cp, namespace, "digits-v3", "RolledBack")
    v2 = _status(cluster, namespace, "digits-v2")
    assert v2["phase"] == "Serving"
    # The model's rollouts, newest first, on every version.
    history = [(e["version"], e["outcome"], e["reason"]) for e in v2["history"]]
    assert history == [
        ("3", "RolledBack", "QualityRegression"),
        ("2", "Serving", "Promoted"),
        ("1", "Serving", "Serving"),
    ], v2["history"]

    counts = _stop_client(cluster, namespace, stop)
    # Every request v3 received was answered 200: only its answers' quality failed it.
    assert counts["3"][0] > 0 and counts["3"][1] == 0, counts
    assert counts["2"][1] == 0 and counts["1"][1] == 0, counts
