"""Recovery in place (spec.recovery inPlace): a replica's pod stops mid-run, and only it
is started again while replica 0 stays up; every rank meets again at torch's elastic
(c10d) rendezvous and resumes from the last checkpoint, and the job publishes the very
artifact an uninterrupted run publishes.

The "pods" are local processes (torchyard.workloads.train.local, which replaces a failed
replica as the operator does). The victim stops its own launcher
(TORCHYARD_FAULT_SCOPE=pod) at a random step after the first checkpoint, from a
random.Random whose seed the assertion messages name (TORCHYARD_RESUME_SEED replays it).
"""

from __future__ import annotations

import random
import re
from pathlib import Path

import pytest

from tests.workload.test_train_resume_exact import CHECKPOINT_EVERY, SEED_ENV, STEPS, chaos_seed
from tests.workload.training import Run, launch, training_spec
from torchyard.storage import compute_digest
from torchyard.workloads.report import PERMANENT, RENDEZVOUS_FAILED

REPLICAS = 2
LAUNCHED = "launcher INFO torchrun"
WORKER_FAILED = "failed (exitcode:"


@pytest.fixture(scope="module")
def workdir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("recovery")


def in_place_spec(uris: tuple[str, str], root: Path, mode: str) -> dict:
    spec = training_spec(*uris, root, mode, REPLICAS, 1, maxSteps=STEPS, epochs=2)
    spec["checkpoint"]["intervalSteps"] = CHECKPOINT_EVERY
    spec["recovery"] = "inPlace"
    return spec


def logs(run: Run) -> str:
    return "\n".join(f"--- replica {i}\n{log[-6000:]}" for i, log in enumerate(run.logs))


@pytest.mark.parametrize("mode", ["data", "model", "gradient"])
def test_a_replica_recreated_alone_rejoins_and_the_job_publishes_the_uninterrupted_artifact(
    workdir: Path, uris: tuple[str, str], mode: str
):
    seed = chaos_seed()
    step = random.Random(seed).randrange(CHECKPOINT_EVERY, STEPS)
    case = f"{SEED_ENV}={seed}: mode {mode}, replica 1 stopped before step {step}"
    job = {"TORCHYARD_JOB": f"TrainingJob/in-place-{mode}", "TORCHYARD_JOB_UID": f"uid-{mode}"}

    root = workdir / f"{mode}-uninterrupted"
    reference = launch(in_place_spec(uris, root, mode), root, env=job)
    assert reference.returncodes == [0] * REPLICAS, case + logs(reference)

    root = workdir / f"{mode}-recovered"
    fault = {
        "TORCHYARD_FAULT_AT_STEP": str(step),
        "TORCHYARD_FAULT_RANK": "1",
        "TORCHYARD_FAULT_SCOPE": "pod",
    }
    recovered = launch(
        in_place_spec(uris, root, mode), root, env={**job, **fault}, timeout=240, recreate=1
    )
    assert recovered.returncodes == [0] * REPLICAS, case + logs(recovered)
    replica0, replica1 = recovered.logs
    # Replica 1's pod stopped and a new one started; replica 0's launcher stayed up and
    # restarted its worker, which met the new replica at the rendezvous.
    assert "exits abruptly" in replica1 and replica1.count(LAUNCHED) == 2, case + logs(recovered)
    assert replica0.count(LAUNCHED) == 1, case + logs(recovered)
    assert replica0.count(WORKER_FAILED) == 1, case + logs(recovered)
    assert len(re.findall(rf"mode {mode} on {REPLICAS} ranks", replica0)) == 2, case

    latest = step // CHECKPOINT_EVERY * CHECKPOINT_EVERY
    result = recovered.termination()
    assert result["resumedFromStep"] == latest, (case, result)
    expected = reference.termination()["artifact"]["digest"]
    assert result["artifact"]["digest"] == expected, case
    assert compute_digest(recovered.output()) == expected, case


def test_a_permanent_error_is_not_retried_in_place(workdir: Path, uris: tuple[str, str]):
    """A rank that fails for good (here: a dataset that is not there) ends its launcher
    at once instead of being restarted backoffLimit times."""
    root = workdir / "permanent"
    spec = in_place_spec(uris, root, "data")
    spec["dataset"]["uri"] = f"file://{root}/no-such-dataset.pt"
    run = launch(spec, root)
    assert run.returncodes[0] == PERMANENT, logs(run)
    assert run.termination(0)["reason"] == "DatasetUnavailable", logs(run)
    # Replica 1 fails the same way, unless replica 0's launcher (the rendezvous host) has
    # already gone when its agent next talks to the store: both end the pod without a retry.
    if run.returncodes[1] != PERMANENT:
        assert run.termination(1)["reason"] == RENDEZVOUS_FAILED, logs(run)
    # torch's agent reports each failure of its workers once: there was no second try.
    failures = [log.count(WORKER_FAILED) for log in run.logs]
    assert failures[0] == 1 and failures[1] <= 1, logs(run)
