"""Installing host packages: the command a person would run, a refusal that names it, and
the daemons a package starts stopped again."""

from __future__ import annotations

import subprocess
from pathlib import Path

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


def _installed_as_root(monkeypatch: pytest.MonkeyPatch, services: tuple[str, ...]) -> list[str]:
    """Install prometheus as root with every command faked; return the commands run."""
    monkeypatch.setattr("os.geteuid", lambda: 0)
    monkeypatch.setattr(hostpackages.shutil, "which", lambda name: f"/usr/bin/{name}")
    ran: list[str] = []

    def run(command: list[str], **_: object) -> subprocess.CompletedProcess[str]:
        ran.append(" ".join(command))
        return subprocess.CompletedProcess(command, 0, "", "")

    monkeypatch.setattr(hostpackages.subprocess, "run", run)
    hostpackages.install(
        ["prometheus"], lambda _: None, "promtool", recommends=False, services=services
    )
    return ran


def test_a_daemon_its_package_started_is_stopped_and_disabled_under_systemd(
    monkeypatch, tmp_path: Path
):
    monkeypatch.setattr(hostpackages, "SYSTEMD", tmp_path)
    ran = _installed_as_root(monkeypatch, ("prometheus",))
    assert ran == [
        "sh -c apt-get update && apt-get install -y --no-install-recommends prometheus",
        "systemctl disable --now prometheus.service",
    ]


def test_a_daemon_its_package_started_is_stopped_and_disabled_under_sysv_init(
    monkeypatch, tmp_path: Path
):
    monkeypatch.setattr(hostpackages, "SYSTEMD", tmp_path / "absent")
    monkeypatch.setattr(hostpackages, "INIT_D", tmp_path)
    (tmp_path / "prometheus").touch()
    ran = _installed_as_root(monkeypatch, ("prometheus",))
    assert ran[1:] == [f"{tmp_path}/prometheus stop", "update-rc.d prometheus disable"]
    assert _installed_as_root(monkeypatch, ())[1:] == []
