"""Build the control plane binaries from the pinned Go modules, once per pin.

The binaries land in the user's cache directory under a key made of the Kubernetes
version and a digest of the wrapper module's sources, so that changing a pin (go.mod,
go.sum) or a main.go builds a fresh set while an unchanged checkout reuses the old one.

CoreDNS, which only the container node needs, is a module of its own under
controlplane/coredns (its pins of gRPC and OpenTelemetry are newer than the Kubernetes
release's) and is built on first use of that node, cached the same way.
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
    kubelet: Path
    kube_proxy: Path

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
    match = re.search(
        r"^\s*(?:require\s+)?k8s\.io/kubernetes\s+(v\S+)", (src / "go.mod").read_text(), re.M
    )
    if match is None:
        raise ControlPlaneBuildError(f"{src / 'go.mod'} does not require k8s.io/kubernetes")
    return match.group(1)


def version_ldflags(version: str) -> str:
    """Linker flags that stamp the release into the binaries, as Kubernetes' build does.

    Without them the kubelet reports v0.0.0-master to the API server (and kubectl's
    client version is empty).
    """
    match = re.fullmatch(r"v(\d+)\.(\d+)\.\d+.*", version)
    if match is None:
        raise ControlPlaneBuildError(f"not a Kubernetes release version: {version!r}")
    values = {
        "gitVersion": version,
        "gitMajor": match.group(1),
        "gitMinor": match.group(2),
        "gitTreeState": "clean",
    }
    packages = ("k8s.io/component-base/version", "k8s.io/client-go/pkg/version")
    stamps = [f"-X {pkg}.{name}={value}" for pkg in packages for name, value in values.items()]
    return " ".join(["-s", "-w", *stamps])


def _key_files(src: Path) -> list[Path]:
    files = [src / "go.mod", src / "go.sum", *sorted(src.glob("cmd/*/main.go")), src / "main.go"]
    return [f for f in files if f.is_file()]


def _digest(src: Path, *extra: str) -> str:
    digest = hashlib.sha256()
    for path in _key_files(src):
        # Hash names as well as contents, so moving a main.go also changes the key.
        digest.update(path.relative_to(src).as_posix().encode() + b"\0")
        digest.update(path.read_bytes() + b"\0")
    for text in extra:
        digest.update(text.encode() + b"\0")
    return digest.hexdigest()[:12]


def cache_key(src: Path) -> str:
    version = kubernetes_version(src)
    return f"{version}-{_digest(src, version_ldflags(version))}"


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


@dataclass(frozen=True)
class _Recipe:
    """One `go build` of a wrapper module into a cached bin/ directory."""

    what: str  # for messages: "the Kubernetes control plane"
    src: Path
    packages: str  # "./cmd/..." or "."
    ldflags: str
    target: Path
    estimate: str  # how long a cold build takes, for the first message


def _go_build(recipe: _Recipe, out: Path, log_file: Path, log: Log) -> None:
    src = recipe.src
    go = shutil.which("go")
    if go is None:
        raise ControlPlaneBuildError(
            "the local control plane is built from Go modules on first use, but `go` is "
            "not on PATH.\n"
            "Install Go (see the `go` line of controlplane/go.mod for the minimum version, "
            f"https://go.dev/dl/), or set {BINARIES_ENV} to a directory holding prebuilt "
            "etcd, kube-apiserver, kube-controller-manager, kube-scheduler, kubectl, kubelet "
            "and kube-proxy (and coredns for the container node)."
        )
    out.mkdir(parents=True, exist_ok=True)
    # The trailing slash makes `go build` write every main package into the directory;
    # -v names each package as it is compiled, which the progress reports count.
    cmd = [
        go, "build", "-v", "-trimpath", f"-ldflags={recipe.ldflags}", "-o", f"{out}/",
        recipe.packages,
    ]  # fmt: skip
    with log_file.open("w") as sink:
        process = subprocess.Popen(cmd, cwd=src, stdout=sink, stderr=subprocess.STDOUT)
        _report_progress(process, log_file, log, recipe.what)
    if process.returncode != 0:
        raise ControlPlaneBuildError(
            f"building {recipe.what} failed: `{' '.join(cmd[1:])}` in {src} exited "
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
    process: subprocess.Popen[bytes],
    log_file: Path,
    log: Log,
    what: str = "the control plane",
    every: float = PROGRESS_SECONDS,
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
            log(f"[{elapsed // 60}:{elapsed % 60:02d}] still building {what}: {so_far}")


def ensure_binaries(log: Log = _stderr) -> Binaries:
    """Return the control plane and node binaries, building them first if the cache lacks them."""
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
    version = kubernetes_version(src)
    recipe = _Recipe(
        what=f"the Kubernetes control plane {version}",
        src=src,
        packages="./cmd/...",
        ldflags=version_ldflags(version),
        target=cache_root() / cache_key(src),
        estimate="about 10 minutes on 2 cores (20 on a slow machine)",
    )
    binaries = Binaries.in_dir(recipe.target / "bin")
    _ensure_built(recipe, binaries.missing, log)
    return binaries


def ensure_kubeadm(log: Log = _stderr) -> Path:
    """Return kubeadm of the pinned release, building it on first use.

    Only the kind node image needs it (`scripts/images kind-node`), so it has a wrapper
    module of its own (controlplane/kubeadm, like coredns/), and the control plane's
    cache key stays as it is.
    """
    src = source_dir() / "kubeadm"
    version = kubernetes_version(src)
    recipe = _Recipe(
        what=f"kubeadm {version}",
        src=src,
        packages=".",
        ldflags=version_ldflags(version),
        target=cache_root() / f"kubeadm-{cache_key(src)}",
        estimate="about 2 minutes on 2 cores once the control plane is built",
    )
    return _ensure_one(recipe, "kubeadm", log)


def ensure_coredns(log: Log = _stderr) -> Path:
    """Return the CoreDNS binary (controlplane/coredns), building it on first use."""
    prebuilt = os.environ.get(BINARIES_ENV)
    if prebuilt:
        path = Path(prebuilt) / "coredns"
        if not (path.is_file() and os.access(path, os.X_OK)):
            raise ControlPlaneBuildError(f"{BINARIES_ENV}={prebuilt} lacks executables: coredns")
        return path
    src = source_dir() / "coredns"
    recipe = _Recipe(
        what="CoreDNS",
        src=src,
        packages=".",
        ldflags="-s -w",
        target=cache_root() / f"coredns-{_digest(src)}",
        estimate="about 5 minutes on 2 cores",
    )
    return _ensure_one(recipe, "coredns", log)


def _ensure_one(recipe: _Recipe, name: str, log: Log) -> Path:
    """Build a recipe of one binary unless it is there; return the binary."""
    path = recipe.target / "bin" / name
    _ensure_built(
        recipe, lambda: [] if path.is_file() and os.access(path, os.X_OK) else [path], log
    )
    return path


def _ensure_built(recipe: _Recipe, missing: Callable[[], list[Path]], log: Log) -> None:
    target = recipe.target
    if not missing():
        return
    with file_lock(target / ".lock"):
        if not missing():  # another process built it while we waited
            return
        # Anything left from an earlier, killed build is junk: we hold the lock.
        for stale in target.glob(".build-*"):
            shutil.rmtree(stale, ignore_errors=True)
        if (target / "bin").exists():
            shutil.rmtree(target / "bin")
        log(
            f"building {recipe.what} into {target}: first use only, {recipe.estimate}; "
            f"later runs reuse it. Progress every {PROGRESS_SECONDS:.0f}s; the full log is "
            f"{target / 'build.log'}"
        )
        started = time.monotonic()
        staging = Path(tempfile.mkdtemp(prefix=".build-", dir=target))
        try:
            _go_build(recipe, staging / "bin", target / "build.log", log)
            # One rename publishes all the binaries together: a build that is killed
            # half-way leaves only a .build-* directory, never a half-filled bin/.
            os.rename(staging / "bin", target / "bin")
        finally:
            shutil.rmtree(staging, ignore_errors=True)
        log(f"built {recipe.what} in {time.monotonic() - started:.0f}s")
    if still := missing():
        raise ControlPlaneBuildError(
            "`go build` succeeded but did not produce: " + ", ".join(p.name for p in still)
        )
