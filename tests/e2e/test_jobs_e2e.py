"""kubectl apply of a CompressionJob / TrainingJob -> real pods -> real torch -> status.

The operator runs as its ServiceAccount against the local cluster whose node agent runs
the pods as processes; models and outputs live on PersistentVolumeClaims.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
from pathlib import Path

import pytest
import torch

from tests.cluster.torchyard import (
    apply,
    events,
    get,
    wait_for,
    wait_until,
)
from tests.e2e.conftest import python_pod
from torchyard.api.common import DatasetSource
from torchyard.api.training import TrainingDataset
from torchyard.storage import compute_digest
from torchyard.workloads.datasets import load_dataset
from torchyard.workloads.models import mlp
from torchyard.workloads.records import open_records, write_records

FACTORY = "torchyard.workloads.models:mlp"


@pytest.fixture(scope="module")
def trained_model():
    """A digits MLP trained for a few hundred steps, saved where pods can read it."""
    torch.manual_seed(0)
    data = load_dataset(DatasetSource(uri="builtin://digits"))
    model = mlp()
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-2)
    for _ in range(150):
        optimizer.zero_grad()
        torch.nn.functional.cross_entropy(model(data.features), data.labels).backward()
        optimizer.step()
    # Pods see the host's files read-only (not /tmp, which is their own emptyDir).
    directory = Path("/opt") / f"torchyard-e2e-{secrets.token_hex(4)}"
    directory.mkdir(parents=True)
    torch.save(model.state_dict(), directory / "model.pt")
    os.chmod(directory, 0o755)
    os.chmod(directory / "model.pt", 0o644)
    yield f"file://{directory}/model.pt"
    shutil.rmtree(directory, ignore_errors=True)


def _claim(cluster, namespace, name):
    cluster.apply(
        {
            "apiVersion": "v1",
            "kind": "PersistentVolumeClaim",
            "metadata": {"name": name, "namespace": namespace},
            "spec": {
                "accessModes": ["ReadWriteMany"],
                "resources": {"requests": {"storage": "1Gi"}},
            },
        }
    )


def _claim_path(cluster, namespace, claim) -> Path:
    volume = get(cluster.cp, "pvc", claim, "-n", namespace)["spec"]["volumeName"]
    return Path(get(cluster.cp, "pv", volume)["spec"]["local"]["path"])


def _compression(name, model_uri, **spec):
    return {
        "apiVersion": "torchyard.io/v1alpha1",
        "kind": "CompressionJob",
        "metadata": {"name": name},
        "spec": {
            "model": {"uri": model_uri, "format": "state_dict", "factory": FACTORY},
            "method": "prune",
            "prune": {"kind": "unstructured", "sparsity": 0.5, "fineTuneSteps": 50},
            "evaluation": {
                "dataset": {"uri": "builtin://digits", "split": "test"},
                "metric": "accuracy",
                "maxDrop": 0.02,
            },
            "output": {"uri": "pvc://models/pruned"},
            "backoffLimit": 2,
            **spec,
        },
    }


def test_pruning_job_succeeds_and_its_registered_version_serves(
    cluster, namespace, operator, trained_model
):
    _claim(cluster, namespace, "models")
    register = {"registerAs": {"model": "digits", "version": "1"}}
    apply(cluster.cp, namespace, _compression("prune-digits", trained_model, **register))
    job = wait_for(cluster.cp, namespace, "cjob/prune-digits", "Succeeded")
    result = job["status"]["result"]
    published = _claim_path(cluster, namespace, "models") / "pruned"
    assert result["artifact"]["digest"] == compute_digest(published)
    assert result["after"]["sparsity"] >= 0.45
    assert result["metricDrop"] <= 0.02
    assert job["status"]["attempts"] == 1

    # registerAs: the artifact, with its digest, becomes the model's serving version.
    version = wait_for(cluster.cp, namespace, "mv/digits-v1", "Ready", 240)
    assert version["spec"]["artifact"]["digest"] == result["artifact"]["digest"]
    assert version["spec"]["artifact"]["uri"] == "pvc://models/pruned"
    assert version["status"]["phase"] == "Serving"
    assert version["metadata"]["labels"]["torchyard.io/registered-by"] == (
        "compressionjob.prune-digits"
    )


def test_quality_gate_failure_fails_at_once_and_publishes_nothing(
    cluster, namespace, operator, trained_model
):
    _claim(cluster, namespace, "models")
    job = _compression("too-sparse", trained_model)
    job["spec"]["prune"] = {"kind": "unstructured", "sparsity": 0.97}
    job["spec"]["evaluation"]["maxDrop"] = 0.0
    apply(cluster.cp, namespace, job)
    status = wait_for(cluster.cp, namespace, "cjob/too-sparse", "Failed")["status"]
    failed = next(c for c in status["conditions"] if c["type"] == "Failed")
    assert failed["reason"] == "QualityGateFailed"
    assert status["attempts"] == 1
    assert not (_claim_path(cluster, namespace, "models") / "pruned").exists()


def test_a_published_output_is_never_replaced_by_another_job(
    cluster, namespace, operator, trained_model
):
    """Published artifacts are immutable: a second CompressionJob into the same output
    fails at once with OutputExists, and the first artifact keeps its digest; with
    output.overwrite a third one replaces it."""
    _claim(cluster, namespace, "models")
    quick = {"kind": "unstructured", "sparsity": 0.5}
    first = _compression("first", trained_model)
    first["spec"]["prune"] = quick
    apply(cluster.cp, namespace, first)
    done = wait_for(cluster.cp, namespace, "cjob/first", "Succeeded")
    digest = done["status"]["result"]["artifact"]["digest"]
    published = _claim_path(cluster, namespace, "models") / "pruned"
    manifest = json.loads((published / "manifest.json").read_text())
    assert manifest["producedBy"] == {
        "kind": "CompressionJob",
        "name": "first",
        "uid": done["metadata"]["uid"],
    }

    second = _compression("second", trained_model)
    second["spec"]["prune"] = {**quick, "sparsity": 0.3}
    apply(cluster.cp, namespace, second)
    status = wait_for(cluster.cp, namespace, "cjob/second", "Failed", 180)["status"]
    failed = next(c for c in status["conditions"] if c["type"] == "Failed")
    assert failed["reason"] == "OutputExists"
    assert "pvc://models/pruned" in failed["message"] and digest in failed["message"]
    assert "CompressionJob/first" in failed["message"]
    assert status["attempts"] == 1  # permanent: not retried
    assert compute_digest(published) == digest

    third = _compression("third", trained_model)
    third["spec"]["prune"] = {**quick, "sparsity": 0.3}
    third["spec"]["output"]["overwrite"] = True
    apply(cluster.cp, namespace, third)
    replaced = wait_for(cluster.cp, namespace, "cjob/third", "Succeeded")["status"]["result"]
    assert replaced["artifact"]["digest"] == compute_digest(published) != digest


def test_missing_model_fails_fast_without_retries(cluster, namespace, operator):
    _claim(cluster, namespace, "models")
    apply(cluster.cp, namespace, _compression("no-model", "file:///opt/no-such-model/model.pt"))
    status = wait_for(cluster.cp, namespace, "cjob/no-model", "Failed", 120)["status"]
    failed = next(c for c in status["conditions"] if c["type"] == "Failed")
    assert failed["reason"] == "ModelNotFound"
    assert status["attempts"] == 1


def test_deadline_exceeded(cluster, namespace, operator, trained_model):
    _claim(cluster, namespace, "models")
    job = _compression("slow", trained_model, activeDeadlineSeconds=2)
    job["spec"]["prune"]["fineTuneSteps"] = 100000
    apply(cluster.cp, namespace, job)
    status = wait_for(cluster.cp, namespace, "cjob/slow", "Failed", 120)["status"]
    failed = next(c for c in status["conditions"] if c["type"] == "Failed")
    assert failed["reason"] == "DeadlineExceeded"


def _training(name, model_uri, **spec):
    return {
        "apiVersion": "torchyard.io/v1alpha1",
        "kind": "TrainingJob",
        "metadata": {"name": name},
        "spec": {
            "parallelism": {"mode": "data", "replicas": 2},
            "model": {"uri": model_uri, "format": "state_dict", "factory": FACTORY},
            "dataset": {"uri": "builtin://digits"},
            "hyperparameters": {
                "epochs": 1,
                "maxSteps": 30,
                "globalBatchSize": 64,
                "learningRate": 0.001,
                "seed": 1,
            },
            "checkpoint": {"uri": "pvc://training/ckpt", "intervalSteps": 10},
            "output": {"uri": "pvc://training/model"},
            "backoffLimit": 2,
            **spec,
        },
    }


@pytest.mark.parametrize("mode", ["data", "model", "gradient"])
def test_two_replica_training_succeeds_with_an_artifact(
    cluster, namespace, operator, trained_model, mode
):
    _claim(cluster, namespace, "training")
    job = _training("ddp", trained_model)
    job["spec"]["parallelism"]["mode"] = mode
    apply(cluster.cp, namespace, job)
    job = wait_for(cluster.cp, namespace, "tjob/ddp", "Succeeded", 400)
    published = _claim_path(cluster, namespace, "training") / "model"
    assert job["status"]["result"]["digest"] == compute_digest(published)
    restarts = job["status"].get("restarts", 0)
    # The Restarting Event names the replica that failed, its exit code and its last words.
    why = (
        [e.get("message") for e in events(cluster.cp, namespace, "ddp", "Restarting")]
        if restarts
        else []
    )
    assert restarts == 0, why


def test_killed_replica_restarts_from_checkpoint(cluster, namespace, operator, trained_model):
    _claim(cluster, namespace, "training")
    job = _training("ddp-kill", trained_model)
    # The last rank dies before step 15 (after the checkpoint at 10), once.
    job["spec"]["env"] = [{"name": "TORCHYARD_FAULT_AT_STEP", "value": "15"}]
    apply(cluster.cp, namespace, job)
    done = wait_for(cluster.cp, namespace, "tjob/ddp-kill", "Succeeded", 500)
    assert done["status"]["restarts"] == 1
    assert events(cluster.cp, namespace, "ddp-kill", "Restarting")


def test_killed_replica_is_recreated_alone_while_replica_0_waits(
    cluster, namespace, operator, trained_model
):
    """recovery inPlace: replica 1's pod fails before step 15; only it is recreated,
    replica 0's pod (same uid) stays up and both resume from the checkpoint of step 10."""
    _claim(cluster, namespace, "training")
    job = _training("ddp-heal", trained_model, recovery="inPlace")
    selector = "torchyard.io/trainingjob=ddp-heal"
    job["spec"]["env"] = [
        {"name": "TORCHYARD_FAULT_AT_STEP", "value": "15"},
        {"name": "TORCHYARD_FAULT_SCOPE", "value": "pod"},
    ]
    apply(cluster.cp, namespace, job)

    def both_pods() -> list[dict]:
        pods = get(cluster.cp, "pods", "-n", namespace, "-l", selector)["items"]
        return pods if len(pods) == 2 else []

    pods = wait_until("both replicas' pods", both_pods, timeout=120)
    first = {pod["metadata"]["name"]: pod["metadata"]["uid"] for pod in pods}
    done = wait_for(cluster.cp, namespace, "tjob/ddp-heal", "Succeeded", 500)
    status = done["status"]
    recovering = [e.get("message") for e in events(cluster.cp, namespace, "ddp-heal", "Recovering")]
    assert status.get("recoveries") == 1 and not status.get("restarts"), (status, recovering)
    assert any("recreating only replica 1" in message for message in recovering), recovering
    assert status["progress"]["resumedFromStep"] == 10, status["progress"]
    # Replica 0's pod is the one it started with; replica 1's is a new one, and the
    # one it replaced is the failure status counted.
    survivor = get(cluster.cp, "pod", "ddp-heal-worker-0", "-n", namespace)
    assert survivor["metadata"]["uid"] == first["ddp-heal-worker-0"]
    replacement = get(cluster.cp, "pod", "ddp-heal-worker-1", "-n", namespace)
    assert replacement["metadata"]["uid"] != first["ddp-heal-worker-1"]
    assert status["recoveredPods"] == [first["ddp-heal-worker-1"]]


def test_running_job_reports_live_progress_in_status(cluster, namespace, operator, trained_model):
    """The operator's poller copies replica 0's progress into status while the job runs."""
    _claim(cluster, namespace, "training")
    job = _training("ddp-long", trained_model)
    job["spec"]["hyperparameters"].update(epochs=1000, maxSteps=100_000)
    apply(cluster.cp, namespace, job)

    def reported():
        status = get(cluster.cp, "tjob", "ddp-long", "-n", namespace).get("status") or {}
        step = (status.get("progress") or {}).get("step") or 0
        return status.get("phase") == "Running" and step > 0 and status

    status = wait_until("progress in status while Running", reported, timeout=240)
    progress = status["progress"]
    assert status["progressSummary"] == f"{progress['step']}/{progress['totalSteps']}"
    assert progress["loss"] > 0 and progress["samplesPerSecond"] > 0
    later = wait_until(
        "progress moving on",
        lambda: (
            (s := get(cluster.cp, "tjob", "ddp-long", "-n", namespace)["status"])["progress"][
                "step"
            ]
            > status["progress"]["step"]
            and s
        ),
        timeout=60,
    )
    assert later["phase"] == "Running"
    cluster.cp.kubectl("delete", "tjob", "ddp-long", "-n", namespace, "--wait=false")


def _bound_claim_path(cluster, namespace, claim) -> Path:
    wait_until(
        f"claim {claim} bound",
        lambda: (
            (get(cluster.cp, "pvc", claim, "-n", namespace).get("status") or {}).get("phase")
            == "Bound"
        ),
        timeout=60,
    )
    return _claim_path(cluster, namespace, claim)


def test_minilm_fine_tuned_on_files_by_two_replicas_registers_and_serves(
    cluster, namespace, operator
):
    """Records of text on a claim -> 2 replicas fine-tune MiniLM, evaluated after each
    epoch -> registerAs -> the version serves the classes over the inference protocol."""
    _claim(cluster, namespace, "reviews")
    folder = _bound_claim_path(cluster, namespace, "reviews")
    train = open_records(TrainingDataset(uri="builtin://reviews", max_samples=128))
    held_out = open_records(TrainingDataset(uri="builtin://reviews", split="test", max_samples=64))
    write_records(folder / "train.jsonl", train, "jsonl")
    write_records(folder / "test.csv", held_out, "csv")
    for name in ("train.jsonl", "test.csv"):
        os.chmod(folder / name, 0o644)
    job = {
        "apiVersion": "torchyard.io/v1alpha1",
        "kind": "TrainingJob",
        "metadata": {"name": "reviews"},
        "spec": {
            "parallelism": {"mode": "data", "replicas": 2},
            "model": {"uri": "builtin://all-minilm-l6-v2", "format": "huggingface"},
            "task": {"type": "classification", "textField": "text", "labelField": "label"},
            "dataset": {"uri": "pvc://reviews/train.jsonl"},
            "evaluation": {"dataset": {"uri": "pvc://reviews/test.csv"}},
            "hyperparameters": {
                "epochs": 2,
                "globalBatchSize": 16,
                "gradientAccumulationSteps": 2,
                "learningRate": 5e-5,
                "seed": 1,
            },
            "checkpoint": {"uri": "pvc://reviews/checkpoints", "intervalSteps": 4},
            "output": {"uri": "pvc://reviews/model"},
            "registerAs": {"model": "reviews", "version": "1"},
            "backoffLimit": 2,
        },
    }
    apply(cluster.cp, namespace, job)
    status = wait_for(cluster.cp, namespace, "tjob/reviews", "Succeeded", 600)["status"]
    assert status["result"]["digest"] == compute_digest(folder / "model")
    assert status["progressSummary"] == "16/16"
    evaluation = status["evaluation"]
    assert [e["epoch"] for e in evaluation["history"]] == [1, 2]
    accuracy = evaluation["history"][-1]["metrics"]["accuracy"]
    succeeded = next(c for c in status["conditions"] if c["type"] == "Succeeded")
    assert f"held-out accuracy {accuracy:.4f} after epoch 2" in succeeded["message"]

    version = wait_for(cluster.cp, namespace, "mv/reviews-v1", "Ready", 300)
    assert version["spec"]["artifact"]["digest"] == status["result"]["digest"]
    texts = ["Best purchase this year, it works perfectly.", "Broke on day two. Avoid."]
    request = {"inputs": [{"name": "text", "datatype": "BYTES", "shape": [2], "data": texts}]}
    script = (
        "import json\n"
        "from torchyard.workloads.serve.client import call\n"
        f"status, version, body = call({version['status']['url']!r} + '/infer', {request!r})\n"
        "answer = {'status': status, 'version': version, 'body': json.loads(body or b'{}')}\n"
        "open('/dev/termination-log', 'w').write(json.dumps(answer))\n"
    )
    cluster.apply(python_pod("client", namespace, script))
    pod = cluster.wait_phase("client", namespace, "Succeeded", "Failed", timeout=120)
    answer = json.loads(pod["status"]["containerStatuses"][0]["state"]["terminated"]["message"])
    assert answer["status"] == 200 and answer["version"] == "1", answer
    outputs = {output["name"]: output for output in answer["body"]["outputs"]}
    assert set(outputs) == {"label", "probabilities"}
    assert set(outputs["label"]["data"]) <= {"negative", "positive"}
    assert outputs["probabilities"]["shape"] == [2, 2]
