"""Upgrading the CRDs in place: objects made under an earlier release of the API still
read back, keep what their users wrote and pass validation again under the new CRDs.

tests/data/upgrade/<commit>/ holds the CRDs and samples as they were at that commit
(`git show <commit>:crds/...`); add a directory per release.
"""

from __future__ import annotations

import pytest
import yaml

from tests.cluster.torchyard import get
from tests.objects import REPO, contains

CRDS = ("compressionjobs", "trainingjobs", "modelversions")
RELEASES = sorted(p.name for p in (REPO / "tests/data/upgrade").iterdir() if p.is_dir())


def _install_crds(control_plane, directory) -> None:
    control_plane.kubectl("apply", "--server-side", "--force-conflicts", "-k", str(directory))
    control_plane.kubectl(
        "wait",
        "--for=condition=Established",
        "--timeout=60s",
        *(f"crd/{plural}.torchyard.io" for plural in CRDS),
    )


@pytest.mark.parametrize("release", RELEASES)
def test_objects_of_an_earlier_release_survive_the_crd_upgrade(control_plane, namespace, release):
    old = REPO / "tests/data/upgrade" / release
    rendered = control_plane.kubectl("kustomize", str(old / "samples")).stdout
    objects = [o for o in yaml.safe_load_all(rendered) if o["kind"] != "Namespace"]
    for obj in objects:
        obj["metadata"]["namespace"] = namespace
    try:
        _install_crds(control_plane, old / "crds")
        control_plane.kubectl("apply", "-f", "-", input=yaml.safe_dump_all(objects))
        _install_crds(control_plane, REPO / "crds")
        for obj in objects:
            kind, name = obj["kind"].lower(), obj["metadata"]["name"]
            stored = get(control_plane, kind, name, "-n", namespace)
            assert contains(stored["spec"], obj["spec"]), f"{kind}/{name} lost fields"
            # Still valid under the new schema and CEL rules: a no-op update is accepted.
            control_plane.kubectl(
                "replace", "--dry-run=server", "-f", "-", input=yaml.safe_dump(stored)
            )
    finally:
        _install_crds(control_plane, REPO / "crds")
