"""Build torchyard's images with podman, each only when its inputs changed.

The plan for an image (its build arguments, mounts and input key) is computed purely
from the Dockerfile, the context and the options; `build` then asks podman whether the
image under its tag carries that key, and runs `podman build` only when it does not.
"""

from __future__ import annotations

import os
import subprocess
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from torchyard import __version__
from torchyard.imagebuild import base, podman, tools
from torchyard.imagebuild.inputs import INPUTS_LABEL, arg_defaults, image_inputs, input_key
from torchyard.images import OPERATOR_IMAGE, WORKER_IMAGE
from torchyard.local.build import file_lock
from torchyard.local.processes import log_tail

REPO = Path(__file__).resolve().parents[3]

Log = Callable[[str], None]

# Inside build steps: where the host's pip cache and CA bundle are mounted.
PIP_CACHE_TARGET = "/var/cache/torchyard/pip"
CA_TARGET = "/run/torchyard/ca-certificates.crt"


class ImageBuildError(RuntimeError):
    """An image could not be built; the message says why and where the log is."""


@dataclass(frozen=True)
class Image:
    name: str
    tag: str

    @property
    def dockerfile(self) -> Path:
        """Relative to the build context (the repository)."""
        return Path("images") / self.name / "Dockerfile"


IMAGES = {
    image.name: image
    for image in (Image("operator", OPERATOR_IMAGE), Image("worker", WORKER_IMAGE))
}


@dataclass(frozen=True)
class Options:
    """What `scripts/images build` was asked for."""

    python_image: str | None = None
    """The base image; None: the Dockerfiles' default, or the Debian-made base when that
    cannot be pulled."""
    debian_base: bool = False
    torch_index_url: str = ""
    """An index to take torch from besides PyPI (empty: PyPI's default build)."""
    worker_lock: str = "requirements.lock"
    """The worker's lock file under images/worker/ (one per source of torch)."""
    force: bool = False
    pip_cache: Path | None = None
    ca_bundle: Path | None = None


@dataclass(frozen=True)
class Plan:
    """How one image is built: the same inputs always give the same plan and key."""

    image: Image
    key: str
    build_args: dict[str, str]
    mounts: tuple[podman.Mount, ...]


@dataclass(frozen=True)
class Built:
    """An image as it stands after `build`."""

    image: Image
    id: str
    size: int
    seconds: float | None
    """How long the build took; None when the image was already up to date."""


def cache_dir() -> Path:
    base_dir = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base_dir) / "torchyard" / "images"


def content_args(dockerfile: str, options: Options, base_image: str) -> dict[str, str]:
    """The build arguments that shape the image, those the Dockerfile declares."""
    wanted = {
        "PYTHON_IMAGE": base_image,
        "VERSION": __version__,
        "TORCH_INDEX_URL": options.torch_index_url,
        "WORKER_LOCK": options.worker_lock,
    }
    declared = arg_defaults(dockerfile)
    return {name: value for name, value in wanted.items() if name in declared}


def environment(
    dockerfile: str, options: Options
) -> tuple[dict[str, str], tuple[podman.Mount, ...]]:
    """Build arguments and mounts that speed a build or let it reach PyPI without
    changing what it installs: pip's cache and a CA bundle (a proxy's, say) of the host."""
    declared = arg_defaults(dockerfile)
    args: dict[str, str] = {}
    mounts: list[podman.Mount] = []
    if options.pip_cache is not None and "PIP_CACHE_DIR" in declared:
        args["PIP_CACHE_DIR"] = PIP_CACHE_TARGET
        mounts.append(podman.Mount(options.pip_cache, PIP_CACHE_TARGET))
    if options.ca_bundle is not None and "PIP_CERT" in declared:
        args["PIP_CERT"] = CA_TARGET
        mounts.append(podman.Mount(options.ca_bundle, CA_TARGET, read_only=True))
    return args, tuple(mounts)


def plan(
    image: Image, options: Options, base_image: str, base_id: str, context: Path = REPO
) -> Plan:
    dockerfile, files = image_inputs(context, context / image.dockerfile)
    shaping = content_args(dockerfile, options, base_image)
    # The base counts by its ID: the same image under another name is the same input.
    keyed = {name: value for name, value in shaping.items() if name != "PYTHON_IMAGE"}
    key = input_key(dockerfile, files, keyed, base_id)
    extra, mounts = environment(dockerfile, options)
    return Plan(image, key, {**shaping, **extra}, mounts)


def default_base() -> str:
    """The Dockerfiles' default PYTHON_IMAGE (both name the same one)."""
    defaults = {
        arg_defaults((REPO / image.dockerfile).read_text()).get("PYTHON_IMAGE")
        for image in IMAGES.values()
    }
    (default,) = defaults
    assert default, "images/*/Dockerfile: ARG PYTHON_IMAGE has no default"
    return default


def _run(command: list[str], log_file: Path, what: str) -> None:
    """Run a command with its output in log_file; say every minute that it is running."""
    log_file.parent.mkdir(parents=True, exist_ok=True)
    with log_file.open("w") as sink:
        process = subprocess.Popen(command, stdout=sink, stderr=subprocess.STDOUT)
        started = time.monotonic()
        while True:
            try:
                process.wait(timeout=60)
                break
            except subprocess.TimeoutExpired:
                elapsed = int(time.monotonic() - started)
                last = log_tail(log_file, 1).strip()[:120]
                print(f"images: [{elapsed // 60}:{elapsed % 60:02d}] {what}: {last}", flush=True)
    if process.returncode != 0:
        raise ImageBuildError(
            f"{what} failed (exit {process.returncode}). Last lines of {log_file}:\n"
            f"{log_tail(log_file, 30)}"
        )


def ensure_debian_base(log: Log) -> str:
    """The Debian-made Python base, made first if missing or of an older recipe."""
    found = podman.inspect(base.DEBIAN_BASE)
    if found is not None and podman.label(found, INPUTS_LABEL) == base.recipe_key():
        return base.DEBIAN_BASE
    tools.ensure(["mmdebstrap"], log)
    log(
        f"making {base.DEBIAN_BASE} from Debian packages ({base.SUITE}: "
        f"{', '.join(base.PACKAGES)}); about a minute"
    )
    began = time.monotonic()
    cache_dir().mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=cache_dir(), prefix="base-") as scratch:
        tarball = Path(scratch) / "rootfs.tar"
        _run(base.mmdebstrap_command(tarball), cache_dir() / "base.log", "mmdebstrap")
        _run(
            podman.podman(*base.import_args(tarball)),
            cache_dir() / "base-import.log",
            "podman import",
        )
    log(f"made {base.DEBIAN_BASE} in {time.monotonic() - began:.0f} s")
    return base.DEBIAN_BASE


def resolve_base(options: Options, log: Log) -> str:
    """The base image to build on: the one asked for, else the Dockerfiles' default if it
    is here or can be pulled, else (and from then on) the Debian-made one."""
    if options.python_image:
        if podman.inspect(options.python_image) is None:
            _run(
                podman.podman("pull", options.python_image),
                cache_dir() / "pull.log",
                f"pulling {options.python_image}",
            )
        return options.python_image
    if options.debian_base:
        return ensure_debian_base(log)
    default = default_base()
    if podman.inspect(default) is not None:
        return default
    if podman.inspect(base.DEBIAN_BASE) is not None:
        return ensure_debian_base(log)
    pulled = subprocess.run(
        podman.podman("pull", default), capture_output=True, text=True, check=False, timeout=600
    )
    if pulled.returncode == 0:
        return default
    reason = (pulled.stderr.strip().splitlines() or ["no reason given"])[-1]
    log(
        f"cannot pull {default} ({reason}); building on a Python base made from Debian "
        "packages instead"
    )
    return ensure_debian_base(log)


def build_one(image: Image, options: Options, base_image: str, log: Log) -> Built:
    base_found = podman.inspect(base_image)
    assert base_found is not None, base_image
    planned = plan(image, options, base_image, str(base_found["Id"]))
    current = podman.inspect(image.tag)
    if (
        current is not None
        and not options.force
        and podman.label(current, INPUTS_LABEL) == planned.key
    ):
        return Built(image, str(current["Id"]), int(current["Size"]), None)
    log(
        f"building {image.tag} on {base_image} (inputs {planned.key[:12]}); "
        f"log: {cache_dir() / (image.name + '.log')}"
    )
    command = podman.build_command(
        tag=image.tag,
        dockerfile=REPO / image.dockerfile,
        context=REPO,
        build_args=planned.build_args,
        labels={INPUTS_LABEL: planned.key},
        mounts=planned.mounts,
        limits=podman.own_limits(),
    )
    began = time.monotonic()
    _run(command, cache_dir() / f"{image.name}.log", f"building {image.name}")
    seconds = time.monotonic() - began
    built = podman.inspect(image.tag)
    assert built is not None, image.tag
    return Built(image, str(built["Id"]), int(built["Size"]), seconds)


def build(names: list[str], options: Options, log: Log) -> list[Built]:
    """Build the named images (each only when its inputs changed); one build at a time."""
    tools.ensure(["podman", "runc"], log)
    cache_dir().mkdir(parents=True, exist_ok=True)
    with file_lock(cache_dir() / ".lock"):
        base_image = resolve_base(options, log)
        return [build_one(IMAGES[name], options, base_image, log) for name in names]
