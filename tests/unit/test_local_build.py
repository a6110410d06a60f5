"""Finding, caching and building the control plane binaries, with a fake `go`."""

import os
import shutil
import stat
from pathlib import Path

import pytest

from torchyard.local import build
from torchyard.local.build import Binaries, ControlPlaneBuildError

REPO_SRC = Path(__file__).resolve().parents[2] / "controlplane"
NAMES = [
    "etcd", "kube-apiserver", "kube-controller-manager", "kube-scheduler", "kubectl",
    "kubelet", "kube-proxy",
]  # fmt: skip

# Writes one executable per binary into the `-o` directory and records each call.
FAKE_GO_OK = """#!/bin/sh
while [ $# -gt 0 ]; do
  if [ "$1" = "-o" ]; then out="$2"; fi
  shift
done
for b in NAMES; do
  printf '#!/bin/sh\\n' > "$out/$b"
  chmod +x "$out/$b"
done
echo call >> "$FAKE_GO_CALLS"
""".replace("NAMES", " ".join([*NAMES, "coredns", "kubeadm"]))

FAKE_GO_FAIL = """#!/bin/sh
i=1
while [ $i -le 30 ]; do echo "go: error line $i"; i=$((i+1)); done
exit 1
"""


@pytest.fixture
def src(tmp_path, monkeypatch) -> Path:
    """A copy of the wrapper module's key files, so tests can edit them."""
    copy = tmp_path / "controlplane"
    shutil.copytree(REPO_SRC, copy, ignore=shutil.ignore_patterns("bin"))
    monkeypatch.setenv(build.SRC_ENV, str(copy))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.delenv(build.BINARIES_ENV, raising=False)
    return copy


def _fake_go(tmp_path: Path, monkeypatch, script: str) -> Path:
    bindir = tmp_path / "fakebin"
    bindir.mkdir()
    go = bindir / "go"
    go.write_text(script)
    go.chmod(go.stat().st_mode | stat.S_IXUSR)
    calls = tmp_path / "go-calls"
    calls.touch()
    monkeypatch.setenv("FAKE_GO_CALLS", str(calls))
    # Only the fake go and the basic tools it needs: never the real toolchain.
    monkeypatch.setenv("PATH", f"{bindir}:/usr/bin:/bin")
    return calls


def test_the_repository_pins_a_kubernetes_version():
    assert build.kubernetes_version(REPO_SRC).startswith("v1.")


def test_cache_dir_is_keyed_by_version_under_xdg_cache(src, tmp_path):
    version = build.kubernetes_version(src)
    cache = build.cache_dir()
    assert cache.parent == tmp_path / "cache" / "torchyard" / "controlplane"
    assert cache.name.startswith(f"{version}-")


@pytest.mark.parametrize("edit", ["go.sum", "go.mod", "cmd/kubectl/main.go", "cmd/kubelet/main.go"])
def test_cache_key_changes_when_a_pin_or_main_changes(src, edit):
    before = build.cache_dir()
    with (src / edit).open("a") as f:
        f.write("\n// changed\n")
    assert build.cache_dir() != before


def test_cache_key_is_stable(src):
    assert build.cache_dir() == build.cache_dir()


def test_missing_go_is_one_clear_error(src, tmp_path, monkeypatch):
    empty = tmp_path / "empty"
    empty.mkdir()
    monkeypatch.setenv("PATH", str(empty))
    with pytest.raises(ControlPlaneBuildError) as err:
        build.ensure_binaries(log=lambda _: None)
    message = str(err.value)
    assert "`go` is not on PATH" in message
    assert build.BINARIES_ENV in message  # says what to do instead
    assert not (build.cache_dir() / "bin").exists()


def test_failed_build_reports_the_tail_and_leaves_no_half_cache(src, tmp_path, monkeypatch):
    _fake_go(tmp_path, monkeypatch, FAKE_GO_FAIL)
    with pytest.raises(ControlPlaneBuildError) as err:
        build.ensure_binaries(log=lambda _: None)
    message = str(err.value)
    assert "exited with 1" in message
    assert "go: error line 30" in message
    assert "go: error line 11\n" in message
    assert "go: error line 10\n" not in message  # only the last 20 lines
    cache = build.cache_dir()
    assert not (cache / "bin").exists()
    assert not list(cache.glob(".build-*"))


def test_build_once_then_reuse_the_cache(src, tmp_path, monkeypatch):
    calls = _fake_go(tmp_path, monkeypatch, FAKE_GO_OK)
    messages: list[str] = []
    first = build.ensure_binaries(log=messages.append)
    assert first == Binaries.in_dir(build.cache_dir() / "bin")
    assert [p.name for p in first.all()] == NAMES
    assert not first.missing()
    assert messages  # the slow first build is announced
    assert not list(build.cache_dir().glob(".build-*"))

    second = build.ensure_binaries(log=messages.append)
    assert second == first
    assert calls.read_text().count("call") == 1


def test_a_killed_build_leaves_junk_that_the_next_build_removes(src, tmp_path, monkeypatch):
    _fake_go(tmp_path, monkeypatch, FAKE_GO_OK)
    junk = build.cache_dir() / ".build-killed" / "bin"
    junk.mkdir(parents=True)
    (junk / "etcd").write_text("half")
    build.ensure_binaries(log=lambda _: None)
    assert not junk.parent.exists()


def test_binaries_dir_env_overrides_the_build(src, tmp_path, monkeypatch):
    prebuilt = tmp_path / "prebuilt"
    prebuilt.mkdir()
    monkeypatch.setenv(build.BINARIES_ENV, str(prebuilt))
    with pytest.raises(ControlPlaneBuildError, match="kube-scheduler"):
        build.ensure_binaries(log=lambda _: None)
    for name in NAMES:
        (prebuilt / name).write_text("#!/bin/sh\n")
        os.chmod(prebuilt / name, 0o755)
    monkeypatch.setenv("PATH", str(tmp_path))  # no go needed at all
    assert build.ensure_binaries(log=lambda _: None) == Binaries.in_dir(prebuilt)


def test_missing_source_is_a_clear_error(tmp_path, monkeypatch):
    monkeypatch.setenv(build.SRC_ENV, str(tmp_path / "nowhere"))
    monkeypatch.delenv(build.BINARIES_ENV, raising=False)
    with pytest.raises(ControlPlaneBuildError, match=build.SRC_ENV):
        build.ensure_binaries(log=lambda _: None)


FAKE_GO_SLOW = """#!/bin/sh
echo "go: downloading k8s.io/kubernetes v1.35.4"
sleep 0.6
echo "k8s.io/apimachinery/pkg/util/sets"
echo "k8s.io/apimachinery/pkg/runtime"
sleep 0.6
""" + FAKE_GO_OK.split("\n", 1)[1]


def test_a_long_build_says_how_far_it_has_got(src, tmp_path, monkeypatch):
    _fake_go(tmp_path, monkeypatch, FAKE_GO_SLOW)
    monkeypatch.setattr(build, "PROGRESS_SECONDS", 0.4)
    monkeypatch.setattr(build._report_progress, "__defaults__", ("the control plane", 0.4))
    messages: list[str] = []
    build.ensure_binaries(log=messages.append)
    progress = [m for m in messages if "still building" in m]
    assert any("downloading the pinned Go modules (1 so far)" in m for m in progress)
    assert any("compiled 2 packages" in m for m in progress)


def test_versions_are_stamped_into_the_binaries():
    flags = build.version_ldflags("v1.35.4")
    assert "-X k8s.io/component-base/version.gitVersion=v1.35.4" in flags
    assert "-X k8s.io/component-base/version.gitMajor=1" in flags
    assert "-X k8s.io/component-base/version.gitMinor=35" in flags
    assert "-X k8s.io/client-go/pkg/version.gitVersion=v1.35.4" in flags
    assert flags.startswith("-s -w ")


def test_a_version_that_is_not_a_release_is_refused():
    with pytest.raises(ControlPlaneBuildError, match="not a Kubernetes release"):
        build.version_ldflags("master")


@pytest.mark.parametrize("name", ["coredns", "kubeadm"])
def test_a_module_of_its_own_is_built_once_and_cached_apart(src, tmp_path, monkeypatch, name):
    ensure = {"coredns": build.ensure_coredns, "kubeadm": build.ensure_kubeadm}[name]
    calls = _fake_go(tmp_path, monkeypatch, FAKE_GO_OK)
    first = ensure(log=lambda _: None)
    assert first.name == name and first.parent.parent.name.startswith(f"{name}-")
    assert ensure(log=lambda _: None) == first
    assert calls.read_text().count("call") == 1
    # Its pins do not touch the control plane's cache key, nor the reverse.
    before = build.cache_dir()
    with (src / name / "go.sum").open("a") as f:
        f.write("\n")
    assert build.cache_dir() == before
    assert ensure(log=lambda _: None) != first


def _replace_block(go_mod: str) -> str:
    return go_mod[go_mod.index("replace (") :].split("\n)\n")[0]


def test_kubeadm_pins_the_same_release_and_staging_modules_as_the_control_plane():
    control_plane = (REPO_SRC / "go.mod").read_text()
    kubeadm = (REPO_SRC / "kubeadm" / "go.mod").read_text()
    assert build.kubernetes_version(REPO_SRC / "kubeadm") == build.kubernetes_version(REPO_SRC)
    assert _replace_block(kubeadm) == _replace_block(control_plane)
