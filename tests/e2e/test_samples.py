"""The samples as a user runs them: the README's commands, then the quickstart's mission,
then deleting the namespace. Real pods on the local node agent, real torch.

The tests run in file order on one namespace (torchyard-demo, as the samples name it):
each builds on what the one before left, the way a person would go through them.
"""

from __future__ import annotations

import re
import shlex
import time
from pathlib import Path

import pytest

from tests.cluster.torchyard import (
    events,
    get,
)
from tests.objects import REPO
from torchyard.local.quickstart.run import Quickstart

NAMESPACE = "torchyard-demo"


def readme_commands() -> list[list[str]]:
    """The kubectl commands of the README's 'Install on a cluster' section (all its
    shell blocks) that concern the samples: applying them, and every wait."""
    readme = (REPO / "README.md").read_text()
    section = readme[readme.index("## Install on a cluster") :]
    end = section.find("\n## ", 1)
    section = section if end == -1 else section[:end]
    blocks = [part.split("```", 1)[0] for part in section.split("```sh")[1:]]
    commands = []
    for line in "\n".join(blocks).splitlines():
        words = shlex.split(line.split("#", 1)[0])
        if words[:2] == ["kubectl", "wait"] or "manifests/samples" in words:
            commands.append(words[1:])
    return commands


@pytest.fixture(scope="module", autouse=True)
def _leave_no_demo_namespace(cluster):
    yield
    cluster.cp.kubectl("delete", "namespace", NAMESPACE, "--wait=false", check=False)


def _objects(cluster, kind):
    return {o["metadata"]["name"]: o for o in get(cluster.cp, kind, "-n", NAMESPACE)["items"]}


def test_the_readme_commands_run_the_samples_to_the_end(cluster, operator):
    commands = readme_commands()
    assert len([c for c in commands if c[0] == "wait"]) >= 3, commands
    for command in commands:
        args = [str(REPO / a) if a.startswith("manifests/") else a for a in command]
        began = time.monotonic()
        result = cluster.cp.kubectl(*args, check=False, timeout=1500)
        seen = cluster.cp.kubectl("get", "torchyard,pods", "-n", NAMESPACE).stdout
        assert result.returncode == 0, (
            f"kubectl {' '.join(command)} failed after {time.monotonic() - began:.0f}s:\n"
            f"{result.stderr}\n{seen}"
        )
    versions = _objects(cluster, "mv")
    assert versions["digits-v2"]["status"]["phase"] == "Serving"
    assert versions["digits-v1"]["status"]["phase"] == "Superseded"
    assert versions["minilm-v1"]["status"]["phase"] == "Serving"


def test_each_digest_matches_along_the_chain_and_status_tells_the_lineage(cluster, operator):
    trained = _objects(cluster, "tjob")["digits-train"]["status"]
    jobs = _objects(cluster, "cjob")
    pruned, quantized = jobs["digits-pruned"]["status"], jobs["minilm-int8"]["status"]
    versions = _objects(cluster, "mv")

    # TrainingJob -> v1: the registered version serves what the training wrote.
    assert trained["input"] == {"factory": "torchyard.workloads.models:mlp"}
    assert versions["digits-v1"]["spec"]["artifact"]["digest"] == trained["result"]["digest"]
    labels = versions["digits-v1"]["metadata"]["labels"]
    assert labels["torchyard.io/registered-by"] == "trainingjob.digits-train"

    # CompressionJob read exactly that artifact, and v2 serves what it wrote.
    assert pruned["input"]["uri"] == trained["result"]["uri"] == "pvc://models/digits/v1"
    assert pruned["input"]["digest"] == trained["result"]["digest"]
    assert pruned["input"]["producedBy"] == "TrainingJob/digits-train"
    assert versions["digits-v2"]["spec"]["artifact"] == {
        "uri": "pvc://models/digits/v2",
        "digest": pruned["result"]["artifact"]["digest"],
        "format": "torchyard",
    }
    labels = versions["digits-v2"]["metadata"]["labels"]
    assert labels["torchyard.io/registered-by"] == "compressionjob.digits-pruned"
    # It waited for the training instead of failing on a model not yet written.
    assert events(cluster.cp, NAMESPACE, "digits-pruned", "WaitingForInput")

    # The figures a user reads: smaller and no worse than the gate allows.
    assert pruned["result"]["compressionRatio"] > 2 and pruned["result"]["metricDrop"] <= 0.02
    assert quantized["result"]["compressionRatio"] > 3.5
    assert quantized["result"]["minCosine"] >= 0.98
    assert quantized["result"]["search"]["trials"] >= 1
    assert quantized["result"]["measuredOn"]["dataset"] == "builtin://sentences (test)"
    assert quantized["input"]["uri"] == "builtin://all-minilm-l6-v2"
    assert quantized["input"]["digest"] == versions["minilm-v1"]["spec"]["artifact"]["digest"]


def test_the_quickstart_rolls_a_broken_version_back_then_one_by_hand(cluster, operator, tmp_path):
    mission = Quickstart(
        repo=REPO,
        kubeconfig=cluster.cp.kubeconfig,
        kubectl=cluster.cp.binaries.kubectl,
        state=tmp_path,
        pods_dir=cluster.state_dir / "pods",
        out=open(tmp_path / "live.log", "w"),  # noqa: SIM115 - closed with the test's files
    )
    summary = mission.run()
    versions = _objects(cluster, "mv")
    broken = versions["digits-v3"]["status"]
    assert broken["phase"] == "RolledBack"
    progressing = next(c for c in broken["conditions"] if c["type"] == "Progressing")
    assert progressing["reason"] == "AnalysisFailed"
    assert "error rate 100.00%" in progressing["message"]
    by_hand = next(
        c for c in versions["digits-v2"]["status"]["conditions"] if c["type"] == "Progressing"
    )
    assert by_hand["reason"] == "ManualRollback"
    assert versions["digits-v1"]["status"]["phase"] == "Serving"

    # What the person reads at the end.
    assert "AnalysisFailed: analysis failed 2 times" in summary
    assert "ManualRollback: version 2 rolled back by spec.rollback" in summary
    assert re.search(
        r"digits version 1, asked about a test image of the digit (\d): .*highest for \1", summary
    )
    assert "minilm version 1" in summary and "embedding of 384 numbers" in summary
    assert re.search(r"clients sent \d+ requests .*v3: 0 answered, [1-9]\d* failed", summary)
    live = (tmp_path / "live.log").read_text()
    assert "ModelVersion/digits-v3" in live and "analysis Fail" in live
    page = (tmp_path / "rollout.html").read_text()
    assert page.count("<polyline") >= 4  # v1, v2, v3 weights and the error rate
    assert Path(tmp_path / "summary.txt").read_text() == summary


def test_deleting_the_namespace_completes_within_a_minute(cluster, operator):
    began = time.monotonic()
    result = cluster.cp.kubectl(
        "delete", "namespace", NAMESPACE, "--wait", "--timeout=60s", check=False, timeout=90
    )
    took = time.monotonic() - began
    assert result.returncode == 0, (
        f"namespace {NAMESPACE} not gone after {took:.0f}s: {result.stderr}\n"
        + cluster.cp.kubectl("get", "torchyard", "-n", NAMESPACE, "-o", "yaml", check=False).stdout
    )
    assert cluster.cp.kubectl("get", "namespace", NAMESPACE, check=False).returncode != 0
