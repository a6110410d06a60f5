"""Build the control plane binaries from the pinned Go modules, once per pin.

The binaries land in the user's cache directory under a key made of the Kubernetes
version and a digest of the wrapper module's sources, so that changing a pin (go.mod,
go.sum) or a main.go builds a fresh set while an unchanged checkout reuses the old one.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, fields
from pathlib import Path

# The wrapper module sits next to the Python package in the repository checkout:
# operator/torchyard/local/build.py -> <repo>/controlplane.
_DEFAULT_SRC = Path(__file__).resolve().parents[3] / "controlplane"

SRC_ENV = "TORCHYARD_CONTROLPLANE_SRC"
BINARIES_ENV = "TORCHYARD_BINARIES_DIR"

_TAIL_LINES = 20
PROGRESS_SECONDS = 30.0
"""How often a running build says how far it has got."""

Log = Callable[[str], None]


class ControlPlaneBuildError(RuntimeError):
    """The binaries could not be found or built; the message says what to do."""


@dataclass(frozen=True)
class Binaries:
    etcd: Path
    kube_apiserver: Path
    kube_controller_manager: Path
    kube_scheduler: Path
    kubectl: Path

    @classmethod
    def in_dir(cls, directory: Path) -> Binaries:
        # Field names are the binary names with '-' spelled '_'.
        return cls(**{f.name: directory / f.name.replace("_", "-") for f in fields(cls)})

    def all(self) -> list[Path]:
        return [getattr(self, f.name) for f in fields(self)]

    def missing(self) -> list[Path]:
        return [p for p in self.all() if not (p.is_file() and os.access(p, os.X_OK))]


def _stderr(message: str) -> None:
    print(f"torchyard: {message}", file=sys.stderr, flush=True)


def source_dir() -> Path:
    """The wrapper Go module (controlplane/) to build from."""
    src = Path(os.environ.get(SRC_ENV) or _DEFAULT_SRC)
    if not (src / "go.mod").is_file():
        raise ControlPlaneBuildError(
            f"cannot find the control plane's Go module: {src / 'go.mod'} does not exist.\n"
            f"Run from a torchyard checkout, or set {SRC_ENV} to its controlplane/ directory "
            f"(or {BINARIES_ENV} to a directory of prebuilt binaries)."
        )
    return src


def kubernetes_version(src: Path) -> str:
    """The k8s.io/kubernetes version that go.mod pins, e.g. 'v1.35.4'."""
    match = re.search(r"^\s*k8s\.io/kubernetes\s+(v\S+)", (src / "go.mod").read_text(), re.M)
    if match is None:
        raise ControlPlaneBuildError(f"{src / 'go.mod'} does not require k8s.io/kubernetes")
    return match.group(1)


def _key_files(src: Path) -> list[Path]:
    files = [src / "go.mod", src / "go.sum", *sorted(src.glob("cmd/*/main.go"))]
    return [f for f in files if f.is_file()]


def cache_key(src: Path) -> str:
    digest = hashlib.sha256()
    for path in _key_files(src):
        # Hash names as well as contents, so moving a main.go also changes the key.
        digest.update(path.relative_to(src).as_posix().encode() + b"\0")
        digest.update(path.read_bytes() + b"\0")
    return f"{kubernetes_version(src)}-{digest.hexdigest()[:12]}"


def cache_root() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "torchyard" / "controlplane"


def cache_dir() -> Path:
    """Where the binaries of the current pin live (in its `bin/`)."""
    return cache_root() / cache_key(source_dir())


@contextlib.contextmanager
def file_lock(path: Path) -> Iterator[None]:
    # Two test sessions (or xdist workers) starting at once must not build twice.
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def _tail(text: str, lines: int = _TAIL_LINES) -> str:
    return "\n".join(text.rstrip().splitlines()[-lines:])


def _go_build(src: Path, out: Path, log_file: Path, log: Log) -> None:
    go = shutil.which("go")
    if go is None:
        raise ControlPlaneBuildError(
            "the local control plane is built from Go modules on first use, but `go` is "
            "not on PATH.\n"
            "Install Go (see the `go` line of controlplane/go.mod for the minimum version, "
            f"https://go.dev/dl/), or set {BINARIES_ENV} to a directory holding prebuilt "
            "etcd, kube-apiserver, kube-controller-manager, kube-scheduler and kubectl."
        )
    out.mkdir(parents=True, exist_ok=True)
    # The trailing slash makes `go build` write every main package into the directory;
    # -v names each package as it is compiled, which the progress reports count.
    cmd = [go, "build", "-v", "-trimpath", "-ldflags=-s -w", "-o", f"{out}/", "./cmd/..."]
    with log_file.open("w") as sink:
        process = subprocess.Popen(cmd, cwd=src, stdout=sink, stderr=subprocess.STDOUT)
        _report_progress(process, log_file, log)
    if process.returncode != 0:
        raise ControlPlaneBuildError(
            f"building the control plane failed: `{' '.join(cmd[1:])}` in {src} exited "
            f"with {process.returncode}. Last lines of {log_file}:\n"
            f"{_tail(log_file.read_text(errors='replace'))}\n"
            "Fix the Go toolchain or module download (GOPROXY, network) and retry, or set "
            f"{BINARIES_ENV} to a directory of prebuilt binaries."
        )


def build_progress(log_text: str) -> str:
    """What a `go build -v` log says so far: modules fetched, then packages compiled."""
    lines = log_text.splitlines()
    downloads = sum(1 for line in lines if line.startswith("go: downloading "))
    compiled = sum(1 for line in lines if line and not line.startswith("go: "))
    if compiled:
        return f"compiled {compiled} packages"
    if downloads:
        return f"downloading the pinned Go modules ({downloads} so far)"
    return "resolving the pinned Go modules"


def _report_progress(
    process: subprocess.Popen[bytes], log_file: Path, log: Log, every: float = PROGRESS_SECONDS
) -> None:
    """Wait for the build, saying every so often how far it has got: it takes minutes."""
    started = time.monotonic()
    while True:
        try:
            process.wait(timeout=every)
            return
        except subprocess.TimeoutExpired:
            elapsed = int(time.monotonic() - started)
            so_far = build_progress(log_file.read_text(errors="replace"))
            log(f"[{elapsed // 60}:{elapsed % 60:02d}] still building the control plane: {so_far}")


def ensure_binaries(log: Log = _stderr) -> Binaries:
    """Return the five control plane binaries, building them first if the cache lacks them."""
    prebuilt = os.environ.get(BINARIES_ENV)
    if prebuilt:
        binaries = Binaries.in_dir(Path(prebuilt))
        if missing := binaries.missing():
            raise ControlPlaneBuildError(
                f"{BINARIES_ENV}={prebuilt} lacks executables: "
                + ", ".join(p.name for p in missing)
            )
        return binaries

    src = source_dir()
    target = cache_root() / cache_key(src)
    binaries = Binaries.in_dir(target / "bin")
    if not binaries.missing():
        return binaries

    with file_lock(target / ".lock"):
        if not binaries.missing():  # another process built it while we waited
            return binaries
        # Anything left from an earlier, killed build is junk: we hold the lock.
        for stale in target.glob(".build-*"):
            shutil.rmtree(stale, ignore_errors=True)
        if (target / "bin").exists():
            shutil.rmtree(target / "bin")
        log(
            f"building the Kubernetes control plane {target.name} into {target}: first use "
            "only, about 10 minutes on 2 cores (20 on a slow machine); later runs reuse it. "
            f"Progress every {PROGRESS_SECONDS:.0f}s; the full log is {target / 'build.log'}"
        )
        started = time.monotonic()
        staging = Path(tempfile.mkdtemp(prefix=".build-", dir=target))
        try:
            _go_build(src, staging / "bin", target / "build.log", log)
            # One rename publishes all five binaries together: a build that is killed
            # half-way leaves only a .build-* directory, never a half-filled bin/.
            os.rename(staging / "bin", target / "bin")
        finally:
            shutil.rmtree(staging, ignore_errors=True)
        log(f"built the control plane in {time.monotonic() - started:.0f}s")
    if missing := binaries.missing():
        raise ControlPlaneBuildError(
            "`go build` succeeded but did not produce: " + ", ".join(p.name for p in missing)
        )
    return binaries
