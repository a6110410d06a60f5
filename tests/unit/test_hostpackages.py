"""Installing host packages: the command a person would run, and a refusal that names it."""

from __future__ import annotations

import pytest

from torchyard import hostpackages


def test_the_install_command_is_the_one_a_person_would_type():
    assert hostpackages.install_command(["runc", "containerd"]) == (
        "apt-get update && apt-get install -y runc containerd"
    )
    assert hostpackages.install_command(["runc"], recommends=False) == (
        "apt-get update && apt-get install -y --no-install-recommends runc"
    )


def test_without_root_nothing_is_run_and_the_error_names_what_to_install(monkeypatch):
    monkeypatch.setattr("os.geteuid", lambda: 1000)
    ran: list[object] = []
    monkeypatch.setattr(hostpackages.subprocess, "run", lambda *a, **k: ran.append(a))
    with pytest.raises(hostpackages.PackagesMissing) as refused:
        hostpackages.install(["podman"], lambda _: None, needed_by="scripts/images")
    message = str(refused.value)
    assert "scripts/images needs podman" in message
    assert "`apt-get update && apt-get install -y podman`" in message
    assert ran == []
