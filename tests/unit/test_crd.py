"""The CRDs in crds/ are what the models render, and they are structural."""

from __future__ import annotations

from typing import Any

import pytest
import yaml

from tests.objects import REPO
from torchyard.api import KINDS
from torchyard.api.crd import crd_kustomization, render_all, render_crd, to_yaml
from torchyard.cli import main

CRDS = REPO / "crds"


def test_crds_directory_is_up_to_date():
    for name, crd in render_all().items():
        path = CRDS / name
        assert path.exists(), f"{path} missing: run `torchyard crds`"
        assert path.read_text() == to_yaml(crd), f"{path} is stale: run `torchyard crds`"
    assert (CRDS / "kustomization.yaml").read_text() == crd_kustomization(sorted(render_all()))


def test_check_command_fails_on_a_stale_file(tmp_path, capsys):
    assert main(["crds", "--dir", str(tmp_path)]) == 0
    assert main(["crds", "--dir", str(tmp_path), "--check"]) == 0
    victim = tmp_path / "torchyard.io_trainingjobs.yaml"
    victim.write_text(victim.read_text().replace("Number of pods", "Pods"))
    assert main(["crds", "--dir", str(tmp_path), "--check"]) == 1
    assert "torchyard.io_trainingjobs.yaml" in capsys.readouterr().err


def _walk(node: dict[str, Any], path: str):
    yield path, node
    for name, child in node.get("properties", {}).items():
        yield from _walk(child, f"{path}.{name}")
    if "items" in node:
        yield from _walk(node["items"], f"{path}[]")
    if isinstance(node.get("additionalProperties"), dict):
        yield from _walk(node["additionalProperties"], f"{path}{{}}")


def _schema(kind) -> dict[str, Any]:
    return render_crd(kind)["spec"]["versions"][0]["schema"]["openAPIV3Schema"]


@pytest.mark.parametrize("kind", KINDS, ids=lambda k: k.kind)
def test_schema_is_structural(kind):
    for path, node in _walk(_schema(kind), kind.kind):
        text = yaml.safe_dump(node)
        assert "$ref" not in text and "anyOf" not in text and "allOf" not in text, path
        assert "type" in node or node.get("x-kubernetes-int-or-string"), f"{path} has no type"
        assert not isinstance(node.get("exclusiveMinimum"), float | int) or isinstance(
            node.get("exclusiveMinimum"), bool
        ), path


@pytest.mark.parametrize("kind", KINDS, ids=lambda k: k.kind)
def test_every_spec_and_status_field_has_a_description(kind):
    schema = _schema(kind)
    for root in ("spec", "status"):
        for path, node in _walk(schema["properties"][root], f"{kind.kind}.{root}"):
            if path.endswith("{}"):
                continue  # map values (resource quantities) are described by their map
            assert node.get("description"), f"{path} has no description"


@pytest.mark.parametrize("kind", KINDS, ids=lambda k: k.kind)
def test_printer_columns_point_at_declared_fields(kind):
    schema = _schema(kind)
    for column in render_crd(kind)["spec"]["versions"][0]["additionalPrinterColumns"]:
        parts = column["jsonPath"].strip(".").split(".")
        if parts[0] == "metadata":
            continue
        node = schema
        for part in parts:
            node = node["properties"][part]
        assert node["type"] == column["type"] or column["type"] == "date", column


def test_names_short_names_and_category():
    crds = {crd["spec"]["names"]["kind"]: crd for crd in render_all().values()}
    assert set(crds) == {"CompressionJob", "TrainingJob", "ModelVersion"}
    short_names = [n for crd in crds.values() for n in crd["spec"]["names"]["shortNames"]]
    assert len(short_names) == len(set(short_names))
    # cj is CronJob's short name; ours must not shadow a built-in.
    assert not {"cj", "job", "po", "deploy", "svc"} & set(short_names)
    for crd in crds.values():
        assert crd["spec"]["names"]["categories"] == ["torchyard"]
        assert crd["spec"]["versions"][0]["subresources"] == {"status": {}}


def test_conditions_are_a_map_keyed_by_type():
    for kind in KINDS:
        conditions = _schema(kind)["properties"]["status"]["properties"]["conditions"]
        assert conditions["x-kubernetes-list-type"] == "map"
        assert conditions["x-kubernetes-list-map-keys"] == ["type"]
        assert set(conditions["items"]["required"]) >= {
            "type",
            "status",
            "reason",
            "lastTransitionTime",
        }


def test_model_version_identity_is_immutable():
    spec = _schema(KINDS[2])["properties"]["spec"]["properties"]
    for field in ("model", "version", "artifact"):
        rules = [rule["rule"] for rule in spec[field]["x-kubernetes-validations"]]
        assert "self == oldSelf" in rules, field
