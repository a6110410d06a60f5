"""s3:// end to end: kubectl apply -> pods on the local node -> an S3-compatible server.

moto_server listens on the pods' bridge address (pods reach the node there, not at
127.0.0.1), the credentials live in a Secret that spec.storage.s3 names, and every test
ends by checking that the keys appear nowhere a person or a log collector could read
them: the objects' status, Events, pods (termination messages included), pod logs and
the operator's log.
"""

from __future__ import annotations

import base64
import ipaddress
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import torch

from tests.cluster.torchyard import (
    apply,
    wait_for,
    wait_until,
)
from tests.e2e.conftest import Cluster, python_pod
from tests.s3server import S3Server, s3_environment, s3_server
from torchyard.api.common import DatasetSource
from torchyard.storage import DIGEST, compute_digest, push
from torchyard.workloads.artifacts import save_artifact
from torchyard.workloads.datasets import load_dataset
from torchyard.workloads.models import mlp

FACTORY = "torchyard.workloads.models:mlp"
SECRET = "s3-credentials"


@pytest.fixture(scope="module")
def s3(cluster: Cluster, tmp_path_factory: pytest.TempPathFactory) -> Iterator[S3Server]:
    """moto_server on the node's bridge address, and this process configured for it."""
    gateway = str(next(ipaddress.ip_network(cluster.pod_cidr).hosts()))
    with (
        s3_server(host=gateway) as server,
        s3_environment(server, tmp_path_factory.mktemp("cache")),
    ):
        yield server


@pytest.fixture(scope="module")
def model_on_s3(s3: S3Server, tmp_path_factory: pytest.TempPathFactory) -> str:
    """A digits MLP trained for a few hundred steps, uploaded as one object (state_dict)."""
    torch.manual_seed(0)
    data = load_dataset(DatasetSource(uri="builtin://digits"))
    model = mlp()
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-2)
    for _ in range(150):
        optimizer.zero_grad()
        torch.nn.functional.cross_entropy(model(data.features), data.labels).backward()
        optimizer.step()
    path = tmp_path_factory.mktemp("model") / "model.pt"
    torch.save(model.state_dict(), path)
    return push(path, s3.uri("models/digits-mlp.pt")).uri


def _credentials(cluster: Cluster, namespace: str, s3: S3Server) -> None:
    cluster.apply(
        {
            "apiVersion": "v1",
            "kind": "Secret",
            "metadata": {"name": SECRET, "namespace": namespace},
            "type": "Opaque",
            "stringData": {
                "AWS_ACCESS_KEY_ID": s3.access_key,
                "AWS_SECRET_ACCESS_KEY": s3.secret_key,
            },
        }
    )


def _storage(s3: S3Server) -> dict[str, Any]:
    return {"s3": {"endpoint": s3.endpoint, "region": s3.region, "credentialsSecret": SECRET}}


def _published(s3: S3Server, uri: str, into: Path) -> tuple[str, str]:
    """(DIGEST on the store, digest of the content), read with the test's own client."""
    fs = s3.filesystem()
    prefix = uri.removeprefix("s3://").rstrip("/")
    for key in fs.find(prefix):
        name = key[len(prefix) + 1 :]
        if name != DIGEST:
            (into / name).parent.mkdir(parents=True, exist_ok=True)
            fs.get_file(key, str(into / name))
    return fs.cat_file(f"{prefix}/{DIGEST}").decode().strip(), compute_digest(into)


def _pod_logs(cluster: Cluster, namespace: str, pod: str = "*") -> dict[str, str]:
    """Every log file of the namespace's pods (the node agent keeps logs as files: there
    is no kubelet API for `kubectl logs`)."""
    files = (cluster.state_dir / "pods").glob(f"{namespace}_{pod}_*/containers/*/*.log")
    return {str(path.relative_to(cluster.state_dir)): path.read_text() for path in files}


def _assert_never_leaked(cluster: Cluster, namespace: str, operator_log: Path, s3: S3Server):
    """The keys are referenced from the Secret and appear in nothing anyone reads."""
    listed = cluster.cp.kubectl(
        "get",
        "compressionjobs,trainingjobs,modelversions,jobs,deployments,pods,events",
        "-n",
        namespace,
        "-o",
        "json",
    ).stdout
    readable = {"objects, status, events, termination messages": listed}
    for pod in json.loads(cluster.cp.kubectl("get", "pods", "-n", namespace, "-o", "json").stdout)[
        "items"
    ]:
        name = pod["metadata"]["name"]
        readable[f"log of {name}"] = cluster.cp.kubectl(
            "logs", name, "-n", namespace, "--all-containers", check=False
        ).stdout
        env = {e["name"]: e for e in pod["spec"]["containers"][0].get("env", [])}
        if "AWS_SECRET_ACCESS_KEY" in env:
            assert env["AWS_SECRET_ACCESS_KEY"]["valueFrom"]["secretKeyRef"]["name"] == SECRET
    readable["operator log"] = operator_log.read_text()
    secrets = {
        s3.secret_key,
        s3.access_key,
        base64.b64encode(s3.secret_key.encode()).decode(),
    }
    for where, text in readable.items():
        for secret in secrets:
            assert secret not in text, f"a credential appears in the {where}"


def test_compression_job_reads_from_and_writes_to_s3(
    cluster, namespace, operator, s3, model_on_s3, tmp_path
):
    _credentials(cluster, namespace, s3)
    output = s3.uri(f"{namespace}/pruned")
    job = {
        "apiVersion": "torchyard.io/v1alpha1",
        "kind": "CompressionJob",
        "metadata": {"name": "prune-from-s3"},
        "spec": {
            "model": {"uri": model_on_s3, "format": "state_dict", "factory": FACTORY},
            "method": "prune",
            "prune": {"kind": "unstructured", "sparsity": 0.5, "fineTuneSteps": 50},
            "evaluation": {
                "dataset": {"uri": "builtin://digits", "split": "test"},
                "maxDrop": 0.02,
            },
            "output": {"uri": output},
            "storage": _storage(s3),
            "registerAs": {"model": "pruned", "version": "1"},
            "backoffLimit": 1,
        },
    }
    apply(cluster.cp, namespace, job)
    done = wait_for(cluster.cp, namespace, "cjob/prune-from-s3", "Succeeded")

    artifact = done["status"]["result"]["artifact"]
    assert artifact["uri"] == output
    stored, content = _published(s3, output, tmp_path / "pruned")
    assert artifact["digest"] == stored == content
    assert done["status"]["result"]["after"]["sparsity"] >= 0.45
    # The registered version reads the artifact from s3 with the job's settings. (The
    # job may report Succeeded a moment before the version exists.)
    wait_until("the registered version", lambda: cluster.get("mv", "pruned-v1", namespace))
    version = wait_for(cluster.cp, namespace, "mv/pruned-v1", "Ready", 240)
    assert version["spec"]["artifact"]["uri"] == output
    assert version["spec"]["artifact"]["digest"] == artifact["digest"]
    assert version["spec"]["storage"] == _storage(s3)
    _assert_never_leaked(cluster, namespace, operator, s3)


def test_a_model_missing_on_s3_fails_naming_the_uri_without_leaking(
    cluster, namespace, operator, s3
):
    _credentials(cluster, namespace, s3)
    missing = s3.uri("models/no-such-model.pt")
    job = {
        "apiVersion": "torchyard.io/v1alpha1",
        "kind": "CompressionJob",
        "metadata": {"name": "no-model"},
        "spec": {
            "model": {"uri": missing, "format": "state_dict", "factory": FACTORY},
            "method": "quantize",
            "quantize": {"mode": "dynamic"},
            "output": {"uri": s3.uri(f"{namespace}/out")},
            "storage": _storage(s3),
        },
    }
    apply(cluster.cp, namespace, job)
    status = wait_for(cluster.cp, namespace, "cjob/no-model", "Failed", 120)["status"]
    failed = next(c for c in status["conditions"] if c["type"] == "Failed")
    assert failed["reason"] == "ModelNotFound"
    assert missing in failed["message"]
    _assert_never_leaked(cluster, namespace, operator, s3)


def test_model_version_serves_an_artifact_from_s3(cluster, namespace, operator, s3):
    _credentials(cluster, namespace, s3)
    artifact = save_artifact(
        s3.uri(f"{namespace}/digits-v1"), mlp(), base={"factory": FACTORY, "kwargs": {}}
    )
    version = {
        "apiVersion": "torchyard.io/v1alpha1",
        "kind": "ModelVersion",
        "metadata": {"name": "digits-v1"},
        "spec": {
            "model": "digits",
            "version": "1",
            "artifact": {"uri": artifact.uri, "digest": artifact.digest},
            "serving": {"replicas": 1},
            "storage": _storage(s3),
        },
    }
    apply(cluster.cp, namespace, version)
    served = wait_for(cluster.cp, namespace, "mv/digits-v1", "Ready", 240)
    assert served["status"]["phase"] == "Serving"

    script = (
        "import json\n"
        "from torchyard.workloads.serve.client import call, request_body\n"
        f"url = {served['status']['url']!r}\n"
        "_, _, metadata = call(url)\n"
        "status, version, body = call(url + '/infer', request_body(json.loads(metadata)))\n"
        "answer = {'status': status, 'version': version, 'body': json.loads(body or b'{}')}\n"
        "open('/dev/termination-log', 'w').write(json.dumps(answer))\n"
    )
    cluster.apply(python_pod("client", namespace, script))
    pod = cluster.wait_phase("client", namespace, "Succeeded", "Failed", timeout=120)
    answer = json.loads(pod["status"]["containerStatuses"][0]["state"]["terminated"]["message"])
    assert answer["status"] == 200 and answer["version"] == "1"
    (output,) = answer["body"]["outputs"]
    assert output["shape"] == [1, 10] and len(output["data"]) == 10
    _assert_never_leaked(cluster, namespace, operator, s3)


def test_training_checkpoints_to_s3_and_resumes_after_a_killed_replica(
    cluster, namespace, operator, s3, model_on_s3, tmp_path
):
    _credentials(cluster, namespace, s3)
    checkpoints, output = s3.uri(f"{namespace}/ckpt"), s3.uri(f"{namespace}/model")
    job = {
        "apiVersion": "torchyard.io/v1alpha1",
        "kind": "TrainingJob",
        "metadata": {"name": "ddp-s3"},
        "spec": {
            "parallelism": {"mode": "data", "replicas": 2},
            "model": {"uri": model_on_s3, "format": "state_dict", "factory": FACTORY},
            "dataset": {"uri": "builtin://digits"},
            "hyperparameters": {"epochs": 2, "maxSteps": 30, "globalBatchSize": 64, "seed": 1},
            "checkpoint": {"uri": checkpoints, "intervalSteps": 10},
            "output": {"uri": output},
            "storage": _storage(s3),
            "backoffLimit": 2,
            # The last rank dies before step 15 (after the checkpoint at 10), once.
            "env": [{"name": "TORCHYARD_FAULT_AT_STEP", "value": "15"}],
        },
    }
    apply(cluster.cp, namespace, job)
    done = wait_for(cluster.cp, namespace, "tjob/ddp-s3", "Succeeded", 500)

    assert done["status"]["restarts"] == 1
    log = "".join(_pod_logs(cluster, namespace, "ddp-s3-worker-0").values())
    assert "resumed from the checkpoint of step 10" in log
    stored, content = _published(s3, output, tmp_path / "model")
    assert done["status"]["result"]["digest"] == stored == content
    fs = s3.filesystem()
    prefix = checkpoints.removeprefix("s3://")
    committed = sorted(k.split("/")[-2] for k in fs.find(prefix) if k.endswith(".json"))
    assert committed == ["step-000000020", "step-000000030"]
    _assert_never_leaked(cluster, namespace, operator, s3)
