"""An artifact's manifest.json and a spec's model.factory name code that loading imports
and calls. Only torchyard's factories and the administrator's run: any other is refused
with FactoryNotAllowed before its module is imported, in the serving pod, the
compression job and the training job; a tampered manifest is refused without a crash.

Each hostile factory would leave a mark if it ran: `os:system` touches a file, and the
tenant's module writes one as soon as it is imported.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest
import torch

from tests.workload.compression import compress, job_spec
from tests.workload.serving import (
    FEATURES,
    MLP_BASE,
    free_port,
    infer_body,
    serving,
    serving_spec,
    small_mlp,
)
from torchyard.api.training import TrainingJobSpec
from torchyard.factories import FactoryNotAllowed
from torchyard.storage import describe
from torchyard.workloads.artifacts import load_artifact, save_artifact
from torchyard.workloads.models import ModelLoadError
from torchyard.workloads.report import PermanentError
from torchyard.workloads.serve.app import main as serve_main
from torchyard.workloads.train.inputs import load_initial_model

TENANT_MODULE = """
import os, pathlib
pathlib.Path(os.environ["TENANT_MARK"]).write_text("imported")
from torchyard.workloads.models import mlp
def build(**kwargs):
    return mlp(**kwargs)
"""


@pytest.fixture
def mark(tmp_path, monkeypatch) -> Path:
    """A tenant's module on the path (as if the worker image had it), and the file its
    import or a hostile command would write."""
    code = tmp_path / "code"
    code.mkdir()
    (code / "tenant_code.py").write_text(TENANT_MODULE)
    monkeypatch.syspath_prepend(str(code))
    monkeypatch.delitem(sys.modules, "tenant_code", raising=False)
    path = tmp_path / "pwned"
    monkeypatch.setenv("TENANT_MARK", str(path))
    monkeypatch.delenv("TORCHYARD_ALLOWED_FACTORIES", raising=False)
    return path


def _hostile(mark: Path) -> list[tuple[str, dict]]:
    return [
        ("os:system", {"command": f"touch {mark}"}),
        ("tenant_code:build", {"in_features": FEATURES, "hidden": [16], "classes": 3}),
        # torchyard's own module, but a loader, not a factory.
        ("torchyard.workloads.models:load_path", {"path": "/etc", "format": "torchscript"}),
    ]


def _artifact(directory: Path, factory: str, kwargs: dict) -> dict:
    """A torchyard artifact whose manifest names `factory`, with a correct digest: its
    publisher, not a thief, wrote it."""
    artifact = save_artifact(f"file://{directory}", small_mlp(), base=MLP_BASE)
    manifest = directory / "manifest.json"
    content = json.loads(manifest.read_text())
    content["base"] = {"factory": factory, "kwargs": kwargs}
    manifest.write_text(json.dumps(content))
    return serving_spec(describe(artifact.uri))


def _serve_once(tmp_path: Path, spec: dict, monkeypatch) -> tuple[int, dict]:
    monkeypatch.setenv("TORCHYARD_SPEC", json.dumps(spec))
    monkeypatch.setenv("TORCHYARD_PORT", str(free_port()))
    monkeypatch.setenv("TORCHYARD_HOST", "127.0.0.1")
    monkeypatch.setenv("TORCHYARD_TERMINATION_LOG", str(tmp_path / "termination-log"))
    code = serve_main([])
    return code, json.loads((tmp_path / "termination-log").read_text())


@pytest.mark.parametrize("case", range(3), ids=["os-system", "tenant-module", "loader"])
def test_a_serving_pod_refuses_an_artifact_with_a_foreign_factory(
    tmp_path, mark, case, monkeypatch
):
    factory, kwargs = _hostile(mark)[case]
    spec = _artifact(tmp_path / "model", factory, kwargs)
    code, result = _serve_once(tmp_path, spec, monkeypatch)
    assert code == 3  # permanent: never ready, never served, not restarted for nothing
    assert result["reason"] == "FactoryNotAllowed"
    assert f"'{factory}'" in result["message"]
    assert "--allowed-factories" in result["message"]
    assert not mark.exists()  # nothing ran, nothing was imported


def test_the_administrators_factory_is_served(tmp_path, mark, monkeypatch):
    factory, kwargs = _hostile(mark)[1]
    spec = _artifact(tmp_path / "model", factory, kwargs)
    monkeypatch.setenv("TORCHYARD_ALLOWED_FACTORIES", "tenant_code:build")
    with serving(tmp_path, spec) as server:
        status, response = server.infer(infer_body(torch.zeros(2, FEATURES)))
    assert status == 200 and response["outputs"][0]["shape"] == [2, 3]
    assert mark.read_text() == "imported"


def test_a_compression_job_refuses_an_artifact_with_a_foreign_factory(tmp_path, mark):
    spec = _artifact(tmp_path / "model", "os:system", {"command": f"touch {mark}"})
    result = compress(
        job_spec(
            {"uri": spec["artifact"]["uri"], "format": "torchyard"},
            tmp_path / "out",
            quantize={"mode": "dynamic"},
        )
    )
    assert result["reason"] == "FactoryNotAllowed" and "'os:system'" in result["message"]
    assert not mark.exists() and not (tmp_path / "out").exists()


def test_a_compression_job_refuses_a_spec_factory_that_is_not_allowed(tmp_path, mark):
    from safetensors.torch import save_file

    save_file(small_mlp().state_dict(), str(tmp_path / "weights.safetensors"))
    model = {
        "uri": f"file://{tmp_path}/weights.safetensors",
        "format": "safetensors",
        "factory": "tenant_code:build",
    }
    result = compress(job_spec(model, tmp_path / "out", quantize={"mode": "dynamic"}))
    assert result["reason"] == "FactoryNotAllowed" and "tenant_code:build" in result["message"]
    assert not mark.exists()


def test_a_training_job_refuses_a_spec_factory_that_is_not_allowed(mark):
    spec = TrainingJobSpec.model_validate(
        {
            "model": {"format": "state_dict", "factory": "tenant_code:build"},
            "dataset": {"uri": "builtin://digits"},
            "output": {"uri": "file:///tmp/never-written"},
        }
    )
    with pytest.raises(PermanentError) as refused:
        load_initial_model(spec)
    assert refused.value.reason == "FactoryNotAllowed"
    assert not mark.exists()


def _tampered(directory: Path, change) -> Path:
    save_artifact(f"file://{directory}", small_mlp(), base=MLP_BASE)
    manifest = directory / "manifest.json"
    content = json.loads(manifest.read_text())
    change(content)
    manifest.write_text(json.dumps(content) if isinstance(content, dict) else content)
    return directory


TAMPERED = [
    # A transform's name looks one up among torchyard's; it never imports a module.
    ("transform-module", lambda m: m.update(transforms=[{"name": "os.system"}]), "unknown"),
    ("transform-not-str", lambda m: m.update(transforms=[{"name": ["x"]}]), "unknown"),
    ("transforms-not-list", lambda m: m.update(transforms="prune_units"), "transforms"),
    ("transform-params", lambda m: m.update(transforms=[{"name": "prune_units"}]), "replayed"),
    ("kwargs-not-object", lambda m: m["base"].update(kwargs=[1, 2]), "kwargs"),
    ("base-not-object", lambda m: m.update(base="os:system"), "base"),
    ("no-base", lambda m: m.pop("base"), "base"),
    ("factory-not-str", lambda m: m["base"].update(factory=["os", "system"]), "not allowed"),
    ("bad-kwargs", lambda m: m["base"].update(kwargs={"layers": 3}), "failed with kwargs"),
    ("base-outside", lambda m: m.update(base={"huggingface": "../../etc"}), "inside"),
    ("base-absolute", lambda m: m.update(base={"huggingface": "/etc"}), "inside"),
    ("newer-format", lambda m: m.update(formatVersion="9"), "newer"),
]


@pytest.mark.parametrize(
    ("change", "words"), [c[1:] for c in TAMPERED], ids=[c[0] for c in TAMPERED]
)
def test_a_tampered_manifest_is_refused_never_a_crash(tmp_path, mark, change, words):
    directory = _tampered(tmp_path / "model", change)
    # Either refusal is permanent and names what is wrong (a factory that is not a
    # string is not an allowed factory).
    with pytest.raises((ModelLoadError, FactoryNotAllowed)) as refused:
        load_artifact(directory)
    assert words in str(refused.value)
    assert not mark.exists()


def test_a_manifest_that_is_not_json_is_refused(tmp_path):
    directory = tmp_path / "model"
    save_artifact(f"file://{directory}", small_mlp(), base=MLP_BASE)
    (directory / "manifest.json").write_text("[" * 100_000)
    with pytest.raises(ModelLoadError, match="not readable JSON"):
        load_artifact(directory)


def test_a_serving_pod_reports_a_tampered_manifest_as_model_load_error(tmp_path, monkeypatch):
    directory = _tampered(tmp_path / "model", lambda m: m.update(base={"huggingface": ".."}))
    spec = serving_spec(describe(f"file://{directory}"))
    code, result = _serve_once(tmp_path, spec, monkeypatch)
    assert code == 3 and result["reason"] == "ModelLoadError"
    assert "inside the artifact" in result["message"]
