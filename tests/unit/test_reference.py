"""docs/reference.md is rendered from the CRDs, is up to date, and is valid Markdown;
the guides' links into it resolve; the GitOps example holds valid objects."""

from __future__ import annotations

import copy
import re
from collections.abc import Iterator
from typing import Any

import pytest
import yaml

from tests.objects import REPO
from torchyard.api import KINDS, KINDS_BY_NAME
from torchyard.api.crd import render_crd
from torchyard.api.reference import render_reference
from torchyard.cli import main
from torchyard.validation import parse_spec

REFERENCE = REPO / "docs" / "reference.md"
GITOPS = REPO / "manifests" / "examples" / "gitops"


def _fields(node: dict[str, Any], path: str) -> Iterator[str]:
    for name, child in node.get("properties", {}).items():
        field = f"{path}.{name}"
        yield field
        while child.get("type") == "array":
            child, field = child["items"], field + "[]"
        yield from _fields(child, field)


def _schema(crd: dict[str, Any]) -> dict[str, Any]:
    return crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]


def test_reference_file_is_up_to_date():
    assert REFERENCE.exists(), "docs/reference.md missing: run `torchyard crds`"
    assert REFERENCE.read_text() == render_reference(), (
        "docs/reference.md is stale: run `torchyard crds`"
    )


@pytest.mark.parametrize("kind", KINDS, ids=lambda k: k.kind)
def test_every_field_of_every_kind_appears(kind):
    text = render_reference()
    section = text.split(f"\n## {kind.kind}\n", 1)[1].split("\n## ", 1)[0]
    schema = _schema(render_crd(kind))
    fields = [
        *_fields(schema["properties"]["spec"], "spec"),
        *_fields(schema["properties"]["status"], "status"),
    ]
    assert "spec.method" in fields or kind.kind != "CompressionJob"
    missing = [field for field in fields if f"| `{field}` |" not in section]
    assert not missing, f"{kind.kind} fields missing from the reference: {missing}"


def test_types_defaults_and_constraints_are_shown():
    rows = {
        line.split(" | ")[0].strip("| `"): line
        for line in render_reference().splitlines()
        if line.startswith("| `")
    }
    sparsity = rows["spec.prune.sparsity"]
    assert "| number |" in sparsity and "required" in sparsity and "0 < value < 1" in sparsity
    assert "| `3` |" in rows["spec.backoffLimit"] and "0 ≤ value ≤ 100" in rows["spec.backoffLimit"]
    assert "one of `dynamic`, `weight_only`, `static`, `fp16`, `bf16`" in rows["spec.quantize.mode"]
    assert "pattern `^sha256:[a-f0-9]{64}$`" in rows["spec.artifact.digest"]
    assert "map of int-or-string" in rows["spec.resources.requests"]
    assert "model is immutable" in rows["spec.model"]
    assert "list of [object](#modelversion-spec-rollout-steps)" in rows["spec.rollout.steps"]


def test_a_description_change_shows():
    crds = [render_crd(kind) for kind in KINDS]
    changed = copy.deepcopy(crds)
    prune = _schema(changed[0])["properties"]["spec"]["properties"]["prune"]
    prune["properties"]["sparsity"]["description"] = "How much of the model | to cut <away>."
    before, after = render_reference(crds), render_reference(changed)
    assert "How much of the model" not in before
    assert "How much of the model \\| to cut &lt;away&gt;." in after


def test_rules_are_listed_under_their_object():
    text = render_reference()
    section = text.split("### CompressionJob `spec.quantize`", 1)[1].split("\n### ", 1)[0]
    assert "- `spec.quantize.calibration`: calibration is required when mode is static" in section


def test_tables_are_well_formed_and_links_resolve():
    text = render_reference()
    for line in text.splitlines():
        if line.startswith("| "):
            cells = re.split(r"(?<!\\)\|", line)[1:-1]
            assert len(cells) == 5, line
    anchors = set(re.findall(r'<a id="([^"]+)"></a>', text))
    targets = set(re.findall(r"\]\(#([^)]+)\)", text))
    assert targets <= anchors, targets - anchors
    assert len(anchors) == len(re.findall(r"<a id=", text)), "duplicate anchors"


PAGES = [
    REPO / "README.md",
    REFERENCE,
    *(REPO / "docs" / f"guide-{kind.singular}.md" for kind in KINDS),
    REPO / "docs" / "troubleshooting.md",
    REPO / "docs" / "storage.md",
    GITOPS / "README.md",
]


def _links(page) -> list[tuple[str, str]]:
    """(target, anchor) of every Markdown link outside code."""
    text = re.sub(r"```.*?```", "", page.read_text(), flags=re.S)
    text = re.sub(r"`[^`]*`", "", text)
    return re.findall(r"\]\(([^)#\s]*)(?:#([^)\s]*))?\)", text)


@pytest.mark.parametrize("page", PAGES, ids=lambda p: p.name)
def test_documentation_links_resolve(page):
    anchors = set(re.findall(r'<a id="([^"]+)"></a>', REFERENCE.read_text()))
    for target, anchor in _links(page):
        if "://" in target:
            continue
        path = (page.parent / target) if target else page
        assert path.exists(), f"{page.name}: broken link {target}"
        if path.resolve() == REFERENCE.resolve() and anchor:
            assert anchor in anchors, f"{page.name}: reference.md#{anchor} does not exist"


def test_guides_link_into_the_reference():
    for kind in KINDS:
        guide = REPO / "docs" / f"guide-{kind.singular}.md"
        targets = [f"{target}#{anchor}" for target, anchor in _links(guide)]
        assert f"reference.md#{kind.singular}" in targets, guide.name


def test_check_reports_a_stale_or_missing_reference(tmp_path, capsys):
    reference = tmp_path / "reference.md"
    args = ["crds", "--dir", str(tmp_path / "crds"), "--reference", str(reference)]
    assert main(args) == 0
    assert reference.read_text() == render_reference()
    assert main([*args, "--check"]) == 0
    reference.write_text(reference.read_text().replace("Number of pods", "Pods"))
    assert main([*args, "--check"]) == 1
    err = capsys.readouterr().err
    assert "reference.md (the field reference)" in err and "run `torchyard crds`" in err
    reference.unlink()
    assert main([*args, "--check"]) == 1


def test_crds_elsewhere_leave_the_reference_alone(tmp_path):
    assert main(["crds", "--dir", str(tmp_path)]) == 0
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(
        ["kustomization.yaml", *(f"torchyard.io_{kind.plural}.yaml" for kind in KINDS)]
    )


def _documents(path) -> list[dict[str, Any]]:
    return [doc for doc in yaml.safe_load_all(path.read_text()) if doc]


def test_gitops_example_objects_are_valid():
    models = GITOPS / "models"
    kustomization = yaml.safe_load((models / "kustomization.yaml").read_text())
    kinds = []
    for name in kustomization["resources"]:
        for document in _documents(models / name):
            kinds.append(document["kind"])
            if document["kind"] in KINDS_BY_NAME:
                parse_spec(KINDS_BY_NAME[document["kind"]].spec, document["spec"])
    assert {"ModelVersion", "CompressionJob"} <= set(kinds)


def test_gitops_controllers_objects_stay_out_of_kustomizations():
    """Argo CD and Flux objects need those tools' CRDs: no kustomization may apply them."""
    listed = set()
    for path in (REPO / "manifests").glob("**/kustomization.yaml"):
        for name in yaml.safe_load(path.read_text()).get("resources", []):
            listed.add((path.parent / name).resolve())
    foreign = [
        path
        for path in GITOPS.glob("**/*.yaml")
        if path.name != "kustomization.yaml"
        and any(
            doc.get("apiVersion", "").split("/")[0].endswith(("argoproj.io", "fluxcd.io"))
            for doc in _documents(path)
        )
    ]
    assert len(foreign) >= 2
    for path in foreign:
        assert path.resolve() not in listed and path.parent.resolve() not in listed, path
