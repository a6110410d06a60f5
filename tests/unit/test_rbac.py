"""The operator's RBAC: least privilege in manifests/base, and the namespaced overlay's
Roles, bindings and --namespace flags kept in step with it.

Whether the rules are enough is the cluster tests' job: they run the operator under
exactly these rules (tests/cluster/test_hostile_rbac.py for the namespaced install).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from tests.objects import REPO

BASE = REPO / "manifests" / "base" / "rbac.yaml"
NAMESPACED = REPO / "manifests" / "overlays" / "namespaced"
KINDS = ("compressionjobs", "trainingjobs", "modelversions")


def _documents(path: Path) -> list[dict[str, Any]]:
    return [doc for doc in yaml.safe_load_all(path.read_text()) if doc]


def _one(documents: list[dict[str, Any]], kind: str, name: str) -> dict[str, Any]:
    (found,) = [d for d in documents if d["kind"] == kind and d["metadata"]["name"] == name]
    return found


def _cluster_role() -> dict[str, Any]:
    return _one(_documents(BASE), "ClusterRole", "torchyard-operator")


def _grants(rules: list[dict[str, Any]]) -> set[tuple[str, str, str]]:
    return {
        (group, resource, verb)
        for rule in rules
        for group in rule["apiGroups"]
        for resource in rule["resources"]
        for verb in rule["verbs"]
    }


def test_the_operator_reads_no_secrets_and_has_no_wildcards():
    grants = _grants(_cluster_role()["rules"])
    assert not [g for g in grants if "*" in g], "wildcards grant more than the code uses"
    resources = {resource for _, resource, _ in grants}
    assert not resources & {"secrets", "configmaps", "serviceaccounts", "roles", "rolebindings"}
    # never writes spec: no update on the kinds themselves
    assert not [g for g in grants if g[1] in KINDS and g[2] == "update"]


def test_children_may_block_their_owners_deletion():
    # kopf.adopt sets blockOwnerDeletion; OwnerReferencesPermissionEnforcement (OpenShift)
    # then asks for update on the owner's finalizers
    grants = _grants(_cluster_role()["rules"])
    for kind in KINDS:
        assert ("torchyard.io", f"{kind}/finalizers", "update") in grants


def test_each_tenant_role_holds_the_cluster_roles_namespaced_rules():
    documents = _documents(NAMESPACED / "rbac.yaml")
    namespaced_rules = [
        rule
        for rule in _cluster_role()["rules"]
        if rule["apiGroups"] != ["apiextensions.k8s.io"]  # CRDs are cluster-scoped
    ]
    roles = [d for d in documents if d["kind"] == "Role"]
    assert roles
    for role in roles:
        assert role["rules"] == namespaced_rules, role["metadata"]["namespace"]


def _deployment_namespaces() -> list[str]:
    kustomization = yaml.safe_load((NAMESPACED / "kustomization.yaml").read_text())
    flags = []
    for patch in kustomization["patches"]:
        if (patch.get("target") or {}).get("kind") != "Deployment":
            continue
        for op in yaml.safe_load(patch["patch"]):
            if op["path"].endswith("/args/-"):
                flags.append(op["value"])
    return sorted(flag.removeprefix("--namespace=") for flag in flags)


def test_the_operator_watches_exactly_the_namespaces_it_has_roles_in():
    documents = _documents(NAMESPACED / "rbac.yaml")
    roles = sorted(d["metadata"]["namespace"] for d in documents if d["kind"] == "Role")
    bindings = [d for d in documents if d["kind"] == "RoleBinding"]
    assert sorted(b["metadata"]["namespace"] for b in bindings) == roles
    for binding in bindings:
        assert binding["roleRef"]["name"] == "torchyard-operator"
        (subject,) = binding["subjects"]
        assert subject == {
            "kind": "ServiceAccount",
            "name": "torchyard-operator",
            "namespace": "torchyard-system",
        }
    assert _deployment_namespaces() == roles == ["tenant-a", "tenant-b"]
    created = [d["metadata"]["name"] for d in _documents(NAMESPACED / "namespaces.yaml")]
    assert sorted(created) == roles


def test_the_namespaced_install_keeps_only_read_only_cluster_scoped_rules():
    documents = _documents(NAMESPACED / "rbac.yaml")
    (cluster_role,) = [d for d in documents if d["kind"] == "ClusterRole"]
    assert _grants(cluster_role["rules"]) == {
        ("apiextensions.k8s.io", "customresourcedefinitions", "list"),
        ("apiextensions.k8s.io", "customresourcedefinitions", "watch"),
        ("", "namespaces", "list"),
        ("", "namespaces", "watch"),
    }
    kustomization = yaml.safe_load((NAMESPACED / "kustomization.yaml").read_text())
    deleted = [
        yaml.safe_load(p["patch"])["kind"]
        for p in kustomization["patches"]
        if "$patch: delete" in p["patch"]
    ]
    assert sorted(deleted) == ["ClusterRole", "ClusterRoleBinding"]
