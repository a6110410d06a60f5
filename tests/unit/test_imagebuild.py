"""scripts/images without podman: what each image is built from, when it is built again,
the podman command lines, the Debian-made base and what the command prints.

The builds themselves, as root with podman, are in tests/images."""

from __future__ import annotations

import os
import resource
import subprocess
import sys
from pathlib import Path

import pytest

from tests.objects import REPO
from torchyard.imagebuild import base, podman, tools
from torchyard.imagebuild.build import (
    CA_TARGET,
    IMAGES,
    PIP_CACHE_TARGET,
    Image,
    Options,
    default_base,
    plan,
)
from torchyard.imagebuild.inputs import (
    INPUTS_LABEL,
    arg_defaults,
    copy_sources,
    ignore_patterns,
    ignored,
    image_inputs,
    input_key,
)
from torchyard.imagebuild.report import format_seconds, format_size
from torchyard.images import OPERATOR_IMAGE, WORKER_IMAGE

# -- what goes into each image --------------------------------------------------------


def test_the_images_are_tagged_as_the_manifests_name_them():
    assert IMAGES["operator"].tag == OPERATOR_IMAGE
    assert IMAGES["worker"].tag == WORKER_IMAGE


@pytest.mark.parametrize("name", ["operator", "worker"])
def test_each_image_takes_its_lock_the_package_and_nothing_else(name):
    _, files = image_inputs(REPO, REPO / IMAGES[name].dockerfile)
    other = "worker" if name == "operator" else "operator"
    assert f"images/{name}/requirements.lock" in files
    assert f"images/{other}/requirements.lock" not in files
    assert {"pyproject.toml", "README.md", "operator/torchyard/cli.py"} <= set(files)
    assert all(
        path in ("pyproject.toml", "README.md")
        or path.startswith(("operator/torchyard/", f"images/{name}/"))
        for path in files
    ), sorted(files)
    assert not [path for path in files if "__pycache__" in path or ".egg-info" in path]


DOCKERIGNORE = [
    "*",
    "!pyproject.toml",
    "!operator/",
    "!images/*/requirements*.lock",
    "**/__pycache__",
]


@pytest.mark.parametrize(
    ("path", "left_out"),
    [
        ("pyproject.toml", False),
        ("operator/torchyard/cli.py", False),
        ("images/worker/requirements.lock", False),
        ("images/worker/requirements-cpu.lock", False),
        ("images/worker/Dockerfile", True),
        ("operator/torchyard/__pycache__/cli.cpython-311.pyc", True),
        ("__pycache__/x.pyc", True),
        (".venv/bin/python", True),
        ("tests/unit/test_images.py", True),
    ],
)
def test_dockerignore_last_matching_pattern_decides(path, left_out):
    assert ignored(path, DOCKERIGNORE) is left_out


def test_dockerignore_comments_and_blank_lines_are_not_patterns():
    assert ignore_patterns("# comment\n\n*\n  !a  \n") == ["*", "!a"]


def test_copy_sources_skip_other_stages_and_flags():
    dockerfile = (
        "FROM x AS a\nCOPY --chown=1:1 a.txt b/ /dst/\nCOPY --from=a /opt /opt\n"
        "ADD c \\\n  d /e\nRUN cp x y\n"
    )
    assert copy_sources(dockerfile) == ["a.txt", "b", "c", "d"]


def test_arg_defaults():
    dockerfile = 'ARG A=1\nFROM x\nARG B\nARG C=""\nARG D=requirements.lock'
    assert arg_defaults(dockerfile) == {"A": "1", "B": None, "C": "", "D": "requirements.lock"}


def test_both_dockerfiles_build_on_the_same_default_python():
    defaults = {
        arg_defaults((REPO / i.dockerfile).read_text())["PYTHON_IMAGE"] for i in IMAGES.values()
    }
    assert defaults == {default_base()}
    assert "3.11" in default_base() and "bookworm" in default_base()


# -- when an image is built again -------------------------------------------------------


@pytest.fixture
def context(tmp_path: Path) -> Path:
    (tmp_path / "images" / "x").mkdir(parents=True)
    (tmp_path / "images" / "x" / "Dockerfile").write_text(
        "ARG PYTHON_IMAGE=python:3.11\nFROM ${PYTHON_IMAGE}\nARG VERSION=0.1.0\n"
        "ARG PIP_CERT\nARG PIP_CACHE_DIR=/root/.cache/pip\n"
        "COPY images/x/requirements.lock ./\nCOPY src ./src\n"
    )
    (tmp_path / "images" / "x" / "requirements.lock").write_text("a==1\n")
    (tmp_path / "src" / "__pycache__").mkdir(parents=True)
    (tmp_path / "src" / "main.py").write_text("print(1)\n")
    (tmp_path / "src" / "__pycache__" / "main.pyc").write_bytes(b"\0")
    (tmp_path / "tests").mkdir()
    (tmp_path / "tests" / "test_main.py").write_text("")
    (tmp_path / ".dockerignore").write_text("**/__pycache__\n")
    return tmp_path


def _key(context: Path, options: Options | None = None, base_id: str = "sha256:b1") -> str:
    image = Image("x", "example/x:1")
    return plan(image, options or Options(), "base:1", base_id, context).key


def test_unchanged_inputs_give_the_same_key(context):
    assert _key(context) == _key(context)


@pytest.mark.parametrize(
    "change",
    [
        lambda c: (c / "src" / "main.py").write_text("print(2)\n"),
        lambda c: (c / "src" / "new.py").write_text(""),
        lambda c: (c / "images" / "x" / "requirements.lock").write_text("a==2\n"),
        lambda c: (c / "images" / "x" / "Dockerfile").write_text(
            (c / "images" / "x" / "Dockerfile").read_text() + "USER 65532\n"
        ),
    ],
    ids=["source edited", "source added", "lock", "Dockerfile"],
)
def test_a_change_to_what_the_image_copies_changes_the_key(context, change):
    before = _key(context)
    change(context)
    assert _key(context) != before


@pytest.mark.parametrize(
    "change",
    [
        lambda c: (c / "tests" / "test_main.py").write_text("assert 0\n"),
        lambda c: (c / "src" / "__pycache__" / "main.pyc").write_bytes(b"\1"),
        lambda c: (c / "notes.md").write_text("x"),
    ],
    ids=["tests", "pycache", "a file not copied"],
)
def test_a_change_to_anything_else_keeps_the_key(context, change):
    before = _key(context)
    change(context)
    assert _key(context) == before


def test_the_base_counts_by_its_id_and_the_build_environment_not_at_all(context, tmp_path):
    plain = _key(context)
    assert _key(context, base_id="sha256:b2") != plain
    with_environment = Options(pip_cache=tmp_path / "pip", ca_bundle=tmp_path / "ca.pem")
    assert _key(context, with_environment) == plain


def test_input_key_covers_the_build_arguments():
    key = input_key("FROM x", {"a": b"1"}, {"VERSION": "0.1.0"}, "sha256:b")
    assert key != input_key("FROM x", {"a": b"1"}, {"VERSION": "0.2.0"}, "sha256:b")
    assert key != input_key("FROM x", {"b": b"1"}, {"VERSION": "0.1.0"}, "sha256:b")
    assert len(key) == 64


def test_the_worker_takes_the_source_of_torch_and_the_operator_does_not(tmp_path):
    options = Options(
        torch_index_url="https://download.pytorch.org/whl/cpu",
        worker_lock="requirements-cpu.lock",
    )
    worker = plan(IMAGES["worker"], options, "base:1", "sha256:b")
    operator = plan(IMAGES["operator"], options, "base:1", "sha256:b")
    assert worker.build_args["TORCH_INDEX_URL"] == options.torch_index_url
    assert worker.build_args["WORKER_LOCK"] == "requirements-cpu.lock"
    assert "TORCH_INDEX_URL" not in operator.build_args
    assert worker.key != plan(IMAGES["worker"], Options(), "base:1", "sha256:b").key
    assert operator.key == plan(IMAGES["operator"], Options(), "base:1", "sha256:b").key
    assert worker.build_args["PYTHON_IMAGE"] == "base:1"


def test_the_hosts_pip_cache_and_ca_bundle_are_mounted_into_build_steps(tmp_path):
    options = Options(pip_cache=tmp_path / "pip", ca_bundle=tmp_path / "ca.pem")
    planned = plan(IMAGES["worker"], options, "base:1", "sha256:b")
    assert planned.build_args["PIP_CACHE_DIR"] == PIP_CACHE_TARGET
    assert planned.build_args["PIP_CERT"] == CA_TARGET
    flags = {mount.flag() for mount in planned.mounts}
    assert flags == {
        f"--volume={tmp_path / 'pip'}:{PIP_CACHE_TARGET}",
        f"--volume={tmp_path / 'ca.pem'}:{CA_TARGET}:ro",
    }
    bare = plan(IMAGES["worker"], Options(), "base:1", "sha256:b")
    assert "PIP_CERT" not in bare.build_args and not bare.mounts


# -- podman command lines ---------------------------------------------------------------


def test_ulimits_keep_the_callers_limits_within_what_podman_grants():
    infinity = resource.RLIM_INFINITY
    flags = podman.ulimit_flags({"nofile": (1024, 20000), "nproc": (96363, 96363)})
    assert flags == ["--ulimit=nofile=1024:20000", "--ulimit=nproc=32768:32768"]
    assert podman.ulimit_flags({"nofile": (infinity, infinity)}) == [
        "--ulimit=nofile=1048576:1048576"
    ]
    assert podman.ulimit_flags({"nproc": (100, 200)}) == ["--ulimit=nproc=100:200"]


def test_own_limits_are_this_process():
    limits = podman.own_limits()
    assert limits["nofile"] == resource.getrlimit(resource.RLIMIT_NOFILE)


def test_the_build_command_uses_runc_layers_the_key_label_and_ulimits(tmp_path):
    command = podman.build_command(
        tag="example/x:1",
        dockerfile=tmp_path / "Dockerfile",
        context=tmp_path,
        build_args={"VERSION": "0.1.0", "PYTHON_IMAGE": "base:1"},
        labels={INPUTS_LABEL: "k" * 64},
        mounts=[podman.Mount(tmp_path / "pip", "/cache")],
        limits={"nofile": (1024, 1024), "nproc": (1024, 1024)},
    )
    assert command[:3] == ["podman", "--runtime=runc", "build"]
    assert "--layers" in command and "--tag=example/x:1" in command
    assert f"--label={INPUTS_LABEL}={'k' * 64}" in command
    assert "--build-arg=PYTHON_IMAGE=base:1" in command
    assert f"--volume={tmp_path / 'pip'}:/cache" in command
    assert "--ulimit=nproc=1024:1024" in command
    assert command[-1] == str(tmp_path)


def test_run_command_runs_restricted_without_network_and_as_the_images_user():
    command = podman.run_command(
        "example/x:1", ["--version"], limits={"nofile": (8, 8)}, env={"A": "1"}
    )
    assert command[:4] == ["podman", "--runtime=runc", "run", "--rm"]
    assert "--network=none" in command and "--env=A=1" in command
    assert {"--read-only", "--cap-drop=all", "--security-opt=no-new-privileges"} <= set(command)
    assert not [flag for flag in command if flag.startswith(("--user", "--privileged"))]
    assert command[-2:] == ["example/x:1", "--version"]


def test_images_are_saved_as_oci_archives_to_a_file_or_streamed():
    assert podman.save_command(WORKER_IMAGE, Path("/x/w.tar"))[-2:] == [
        "--output=/x/w.tar",
        WORKER_IMAGE,
    ]
    # Streamed to stdout (into `ctr images import -`): podman takes no `-` for it.
    assert podman.save_command(WORKER_IMAGE, None) == [
        "podman",
        "--runtime=runc",
        "save",
        "--format=oci-archive",
        WORKER_IMAGE,
    ]


def test_labels_are_read_from_an_inspected_image():
    assert podman.label({"Config": {"Labels": {INPUTS_LABEL: "k"}}}, INPUTS_LABEL) == "k"
    assert podman.label({"Labels": {INPUTS_LABEL: "k"}}, INPUTS_LABEL) == "k"
    assert podman.label({"Config": {}}, INPUTS_LABEL) is None


# -- the Debian-made base ---------------------------------------------------------------


def test_the_debian_base_has_the_python_the_dockerfiles_call():
    command = base.mmdebstrap_command(Path("rootfs.tar"))
    included = next(arg for arg in command if arg.startswith("--include="))
    # `python -m venv` in the Dockerfiles: python-is-python3 provides `python`.
    assert {"python3", "python3-venv", "python-is-python3", "ca-certificates"} <= set(
        included.removeprefix("--include=").split(",")
    )
    assert "--variant=minbase" in command and base.SUITE == "bookworm"
    assert command[-1] == "rootfs.tar"


def test_the_debian_base_is_made_again_only_when_its_recipe_changes(monkeypatch):
    key = base.recipe_key()
    assert key == base.recipe_key()
    import_args = base.import_args(Path("/x/rootfs.tar"))
    assert f"--change=LABEL {INPUTS_LABEL}={key}" in import_args
    assert import_args[-2:] == ["/x/rootfs.tar", base.DEBIAN_BASE]
    monkeypatch.setattr(base, "PACKAGES", (*base.PACKAGES, "curl"))
    assert base.recipe_key() != key


# -- host tools -------------------------------------------------------------------------


def test_each_tool_names_the_packages_that_provide_it():
    assert tools.packages_for(["podman", "runc", "ctr"]) == [
        "podman",
        "containernetworking-plugins",
        "runc",
        "containerd",
    ]


def test_a_missing_tool_without_root_names_the_command_to_install_it(monkeypatch):
    monkeypatch.setattr(tools.shutil, "which", lambda name: None)
    monkeypatch.setattr("os.geteuid", lambda: 1000)
    with pytest.raises(tools.ToolError) as refused:
        tools.ensure(["mmdebstrap"], lambda message: None)
    assert "apt-get install -y mmdebstrap debian-archive-keyring" in str(refused.value)


# -- what it prints, and what it needs ----------------------------------------------------


@pytest.mark.parametrize(
    ("size", "text"),
    [
        (512, "512 B"),
        (176_995_840, "177 MB"),
        (1_234_567_890, "1.23 GB"),
        (6_900_000_000, "6.9 GB"),
        (12_000, "12 kB"),
    ],
)
def test_sizes_read_as_podman_prints_them(size, text):
    assert format_size(size) == text


def test_durations_read_as_minutes_and_seconds():
    assert format_seconds(4.44) == "4.4 s"
    assert format_seconds(56.2) == "56 s"
    assert format_seconds(754.6) == "12 min 35 s"


def test_scripts_images_needs_only_the_standard_library():
    # -S: without site-packages, so nothing of .venv (pydantic, kopf, torch) is there.
    done = subprocess.run(
        [sys.executable, "-S", "-m", "torchyard.imagebuild", "--help"],
        env={**os.environ, "PYTHONPATH": str(REPO / "operator")},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    for command in ("build", "save", "load-containerd", "load-kind"):
        assert command in done.stdout


CTR_LISTING = """\
REF                                         TYPE                                       DIGEST      SIZE     PLATFORMS   LABELS
ghcr.io/torchyard/torchyard-worker:v0.1.0   application/vnd.oci.image.manifest.v1+json sha256:ad1 3.2 GiB  linux/amd64 io.cri-containerd.image=managed,io.torchyard.image-id=6b786f
ghcr.io/torchyard/torchyard-operator:v0.1.0 application/vnd.oci.image.manifest.v1+json sha256:5a0 89.3 MiB linux/amd64 io.cri-containerd.image=managed
sha256:6b786f                               application/vnd.oci.image.manifest.v1+json sha256:ad1 3.2 GiB  linux/amd64 io.cri-containerd.image=managed
"""  # noqa: E501


def test_an_image_is_loaded_again_unless_containerd_has_that_very_build():
    from torchyard.imagebuild.__main__ import loaded

    worker, operator = "ghcr.io/torchyard/torchyard-worker:v0.1.0", IMAGES["operator"].tag
    assert loaded(CTR_LISTING, worker, "6b786f")
    assert not loaded(CTR_LISTING, worker, "6b786")  # a prefix is another build
    assert not loaded(CTR_LISTING, worker, "0000aa")  # rebuilt since: import again
    assert not loaded(CTR_LISTING, operator, "5a0")  # imported by hand, unlabelled
    assert not loaded(CTR_LISTING, "sha256:6b786f", "6b786f")


def test_only_containerds_lost_snapshot_race_is_imported_again():
    from torchyard.imagebuild.__main__ import lost_snapshot

    race = (
        'ctr: failed to prepare extraction snapshot "extract-73338788-V7IQ sha256:e4e8": '
        "parent snapshot sha256:6dfa does not exist: not found"
    )
    assert lost_snapshot(race)
    assert not lost_snapshot("ctr: unrecognized image format")
    assert not lost_snapshot("ctr: failed to connect: connection refused")
