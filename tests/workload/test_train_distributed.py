"""The training workload with real torch across processes: gloo on CPU, 2 ranks.

Every run is `torchyard workload train` launched as the operator launches pods, on the
digits dataset (64 features, 10 classes), an MLP 64-64-64-10, 20 AdamW steps of a global
batch of 64, checkpoints every 5 steps. The reference is the same job on one process.

Tolerance: a 2-rank step sums the same per-sample gradients as a 1-rank step, only in
another order (two partial sums, then an all-reduce), so the two runs differ by float32
rounding, which Adam's normalisation can amplify over the steps. Observed: at most
2.4e-7 (a few float32 ulps of the loss) in every mode. The tests allow
LOSS_TOLERANCE = 1e-4 per step: room for other CPUs' kernels, yet far below what one step
changes (>1e-2), so a wrong batch, a missing rank or a wrongly scaled gradient fails them.
A resumed run repeats the uninterrupted one's arithmetic exactly (same world size, same
order): it must match within 1e-6.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from tests.workload.training import (
    CHECKPOINT_EVERY,
    STEPS,
    Run,
    launch,
    training_spec,
)
from torchyard.storage import compute_digest

LOSS_TOLERANCE = 1e-4
# Killed just before this step; the latest checkpoint then is that of step 10.
FAULT_STEP = 13


@pytest.fixture(scope="module")
def workdir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("training")


def run_job(
    workdir: Path, uris: tuple[str, str], name: str, mode: str, replicas: int, procs: int
) -> Run:
    root = workdir / name
    run = launch(training_spec(*uris, root, mode, replicas, procs), root)
    assert run.returncodes == [0] * replicas, "\n".join(run.logs)
    return run


@pytest.fixture(scope="module")
def single(workdir: Path, uris: tuple[str, str]) -> Run:
    """The reference: one pod, one process."""
    return run_job(workdir, uris, "single", "data", 1, 1)


@pytest.fixture(scope="module")
def data_two_pods(workdir: Path, uris: tuple[str, str]) -> Run:
    """Two pods of one process each, rendezvous at pod 0."""
    return run_job(workdir, uris, "data", "data", 2, 1)


@pytest.fixture(scope="module")
def model_two_procs(workdir: Path, uris: tuple[str, str]) -> Run:
    """One pod running two processes."""
    return run_job(workdir, uris, "model", "model", 1, 2)


@pytest.fixture(scope="module")
def gradient_two_procs(workdir: Path, uris: tuple[str, str]) -> Run:
    return run_job(workdir, uris, "gradient", "gradient", 1, 2)


def assert_same_trajectory(run: Run, reference: Run) -> None:
    ours, theirs = run.losses(), reference.losses()
    worst = max(abs(a - b) for a, b in zip(ours, theirs, strict=True))
    assert worst <= LOSS_TOLERANCE, f"losses differ by {worst}: {ours} vs {theirs}"
    assert ours[-1] < ours[0] - 0.5, "training should lower the loss"


def test_single_process_reports_result_and_progress(single: Run):
    result = single.termination()
    assert result["steps"] == STEPS
    assert result["artifact"]["format"] == "torchyard"
    assert result["artifact"]["digest"].startswith("sha256:")
    assert result["finalLoss"] == pytest.approx(single.losses()[-1], abs=1e-6)
    assert result["samplesPerSecond"] > 0
    progress = single.progress()
    assert progress["step"] == progress["totalSteps"] == STEPS
    assert {"epoch", "loss", "samplesPerSecond", "updateTime"} <= progress.keys()


def test_data_parallel_loss_matches_single_process(data_two_pods: Run, single: Run):
    assert_same_trajectory(data_two_pods, single)
    manifest = data_two_pods.manifest()["training"]
    assert (manifest["mode"], manifest["worldSize"], manifest["globalBatchSize"]) == ("data", 2, 64)
    # Only replica 0 (rank 0) reports; replica 1 writes no result.
    assert not (data_two_pods.root / "termination-1.json").exists()


def test_model_parallel_ranks_hold_only_their_stage(model_two_procs: Run, single: Run):
    assert_same_trajectory(model_two_procs, single)
    total = sum(p.numel() for p in torch.nn.Linear(64, 64).parameters()) * 2 + 64 * 10 + 10
    holdings = model_two_procs.checkpoint_manifest(STEPS)["holdings"]
    held = [rank["parameters"] for rank in holdings]
    assert sum(held) == total and all(0 < count < total for count in held), holdings
    # Each rank's checkpoint holds its own layers' weights, none of the other's.
    step_dir = model_two_procs.checkpoints() / f"step-{STEPS:09d}"
    keys = [
        set(torch.load(step_dir / f"rank-{rank:05d}.pt", weights_only=True)["model"])
        for rank in (0, 1)
    ]
    assert keys[0] and keys[1] and not keys[0] & keys[1]
    assert keys[0] | keys[1] == set(single_weights(single))


def single_weights(run: Run) -> dict[str, torch.Tensor]:
    from safetensors.torch import load_file

    return load_file(str(run.output() / "weights.safetensors"))


def test_gradient_mode_shards_optimizer_state(gradient_two_procs: Run, single: Run):
    assert_same_trajectory(gradient_two_procs, single)
    full = single.checkpoint_manifest(STEPS)["holdings"][0]["optimizerStateBytes"]
    holdings = gradient_two_procs.checkpoint_manifest(STEPS)["holdings"]
    for rank in holdings:
        # Half of Adam's moments each (the last slice is padded by at most one element).
        assert abs(rank["optimizerStateBytes"] - full / 2) <= 16, (rank, full)
        # Parameters stay replicated.
        assert rank["parameters"] == single.checkpoint_manifest(STEPS)["holdings"][0]["parameters"]


def test_resume_continues_from_the_latest_checkpoint(
    workdir: Path, uris: tuple[str, str], gradient_two_procs: Run
):
    root = workdir / "resumed"
    spec = training_spec(*uris, root, "gradient", 1, 2)
    crashed = launch(spec, root, env={"TORCHYARD_FAULT_AT_STEP": str(FAULT_STEP)})
    assert crashed.returncodes != [0], "\n".join(crashed.logs)
    failure = crashed.termination()
    assert failure["reason"] == "WorkerFailed" and failure["rank"] == 1, failure
    latest = (FAULT_STEP // CHECKPOINT_EVERY) * CHECKPOINT_EVERY
    assert crashed.checkpoint_manifest(latest)["step"] == latest

    # The gang restart: the same pods again (the fault fires only in a fresh start).
    resumed = launch(spec, root, env={"TORCHYARD_FAULT_AT_STEP": str(FAULT_STEP)})
    assert resumed.returncodes == [0], "\n".join(resumed.logs)
    result = resumed.termination()
    assert result["resumedFromStep"] == latest
    assert result["steps"] == STEPS
    assert f"resumed from the checkpoint of step {latest}" in resumed.logs[0]
    assert "step 1/20 " not in resumed.logs[0]  # no step before the checkpoint ran again
    # Same data order and optimizer state as the run that never stopped.
    assert resumed.losses() == pytest.approx(gradient_two_procs.losses(), abs=1e-6)
    ours, theirs = single_weights(resumed), single_weights(gradient_two_procs)
    for name, weight in theirs.items():
        torch.testing.assert_close(ours[name], weight, atol=1e-6, rtol=0)


def test_a_restart_after_publishing_keeps_going_and_another_job_is_refused(
    workdir: Path, uris: tuple[str, str]
):
    """A gang restart after replica 0 had published is the same job: it publishes again.
    Another job with the same output.uri fails at once with OutputExists, on every
    replica, and the artifact stays as it was; output.overwrite replaces it."""
    root = workdir / "published"
    spec = training_spec(*uris, root, "data", 2, 1)
    first = launch(spec, root)
    assert first.returncodes == [0, 0], "\n".join(first.logs)
    restarted = launch(spec, root)  # same workdir: the same job (uid)
    assert restarted.returncodes == [0, 0], "\n".join(restarted.logs)
    assert restarted.termination()["resumedFromStep"] == STEPS
    digest = restarted.termination()["artifact"]["digest"]

    other = {"TORCHYARD_JOB": "TrainingJob/other", "TORCHYARD_JOB_UID": "uid-other"}
    refused = launch(spec, root, env=other)
    assert refused.returncodes == [3, 3], "\n".join(refused.logs)
    for replica in (0, 1):
        failure = refused.termination(replica)
        assert failure["reason"] == "OutputExists", failure
        assert "TrainingJob/published" in failure["message"]
    assert compute_digest(refused.output()) == digest

    spec["output"]["overwrite"] = True
    replaced = launch(spec, root, env=other)
    assert replaced.returncodes == [0, 0], "\n".join(replaced.logs)
    assert replaced.manifest()["producedBy"]["uid"] == "uid-other"


def test_refuses_a_batch_larger_than_the_data_as_permanent(workdir: Path, uris: tuple[str, str]):
    root = workdir / "refused"
    spec = training_spec(*uris, root, "data", 1, 1)
    spec["dataset"]["maxSamples"] = 50
    run = launch(spec, root)
    assert run.returncodes == [3], "\n".join(run.logs)
    failure = run.termination()
    assert failure["reason"] == "BatchLargerThanDataset"
    assert "globalBatchSize 64" in failure["message"]


_RELOAD = """
import json, sys
from pathlib import Path
import torch
from torchyard.storage import compute_digest
from torchyard.workloads.artifacts import load_artifact
from torchyard.workloads.datasets import load_dataset
from torchyard.api.common import DatasetSource

test = load_dataset(DatasetSource(uri="builtin://digits", split="test"))
report = {}
for path in sys.argv[1:]:
    model = load_artifact(Path(path))
    with torch.no_grad():
        logits = model(test.features)
    report[path] = {
        "digest": compute_digest(Path(path)),
        "accuracy": float((logits.argmax(1) == test.labels).float().mean()),
        "logits": logits[:5].tolist(),
    }
print(json.dumps(report))
"""


def test_trained_artifacts_reload_in_a_fresh_process(
    single: Run, data_two_pods: Run, model_two_procs: Run
):
    runs = [single, data_two_pods, model_two_procs]
    paths = [str(run.output()) for run in runs]
    reloaded = subprocess.run(
        [sys.executable, "-c", _RELOAD, *paths], capture_output=True, text=True, check=True
    )
    report = json.loads(reloaded.stdout)
    reference = torch.tensor(report[paths[0]]["logits"])
    for run, path in zip(runs, paths, strict=True):
        assert report[path]["digest"] == run.termination()["artifact"]["digest"]
        assert report[path]["accuracy"] > 0.85, report[path]["accuracy"]
        # The stages of mode model merge back into the whole model.
        torch.testing.assert_close(
            torch.tensor(report[path]["logits"]), reference, atol=1e-3, rtol=0
        )
