"""Where volumes go in a container, which mount points the node must get, and the
shadowing of directories a container's user cannot enter."""

from __future__ import annotations

import os

import pytest

from torchyard.local.agent.mounts import (
    MountPoints,
    PointPlan,
    container_mounts,
    kept_in_private_tmp,
    mount_point_plan,
    shadow_plan,
    workdir_plan,
)
from torchyard.local.agent.volumes import Volume, VolumeError, write_files

ETC = {"/etc/hosts": "/pod/etc/hosts"}


def test_mounts_are_ordered_parents_first_with_subpaths_and_read_only():
    container = {
        "volumeMounts": [
            {"name": "cache", "mountPath": "/data/cache", "subPath": "me"},
            {"name": "data", "mountPath": "/data/"},
            {"name": "config", "mountPath": "/etc/app"},
        ]
    }
    volumes = {
        "cache": Volume("/pod/cache"),
        "data": Volume("/pvc/data", readonly=False),
        "config": Volume("/pod/config", readonly=True),
    }
    mounts = container_mounts(container, volumes, {}, ETC, "/pod/term")
    targets = [m["target"] for m in mounts]
    assert targets.index("/data") < targets.index("/data/cache")
    cache = next(m for m in mounts if m["target"] == "/data/cache")
    assert cache["source"] == "/pod/cache/me"
    assert next(m for m in mounts if m["target"] == "/etc/app")["readonly"]
    assert {
        "source": "/pod/term",
        "target": "/dev/termination-log",
        "readonly": False,
        "kind": "bind",
    } in mounts
    assert {
        "source": "/pod/etc/hosts",
        "target": "/etc/hosts",
        "readonly": True,
        "kind": "bind",
    } in mounts


def test_sub_path_expr_expands_and_escapes_are_refused():
    container = {"volumeMounts": [{"name": "v", "mountPath": "/out", "subPathExpr": "$(POD)"}]}
    mounts = container_mounts(container, {"v": Volume("/pod/v")}, {"POD": "p-0"}, {}, None)
    assert mounts[0]["source"] == "/pod/v/p-0"
    with pytest.raises(VolumeError):
        container_mounts(
            {"volumeMounts": [{"name": "v", "mountPath": "/o", "subPath": "../x"}]},
            {"v": Volume("/v")},
            {},
            {},
            None,
        )


def test_a_volume_that_would_hide_the_python_environment_is_refused():
    container = {"volumeMounts": [{"name": "v", "mountPath": "/work"}]}
    with pytest.raises(VolumeError, match=r"would hide /work/main/\.venv"):
        container_mounts(
            container, {"v": Volume("/v")}, {}, {}, None, keep_visible=["/work/main/.venv"]
        )


def test_mount_points_go_on_the_node_only_when_nothing_else_can_hold_them(tmp_path):
    volume = tmp_path / "vol"
    volume.mkdir()
    mounts = [
        {"source": str(volume), "target": "/data", "readonly": False, "kind": "bind"},
        {"source": str(volume), "target": "/data/sub", "readonly": False, "kind": "bind"},
        {
            "source": str(tmp_path / "file"),
            "target": "/dev/termination-log",
            "readonly": False,
            "kind": "bind",
        },
        {"source": str(volume), "target": "/tmp/x", "readonly": False, "kind": "bind"},
    ]
    plans = mount_point_plan(mounts, private_tmp=True)
    assert plans == [
        PointPlan("/data", False, on_node=True),
        PointPlan(str(volume / "sub"), False, on_node=False),
    ]
    assert workdir_plan("/data/run", mounts, True) == PointPlan(str(volume / "run"), False, False)
    assert workdir_plan("/srv/app", mounts, True) == PointPlan("/srv/app", False, True)
    assert workdir_plan("/", mounts, True) is None


def test_node_mount_points_are_counted_and_removed_with_their_last_user(tmp_path):
    points = MountPoints(tmp_path / "record.json")
    target = tmp_path / "mnt" / "pvc" / "models"
    first = points.acquire([PointPlan(str(target), False, True)])
    second = points.acquire([PointPlan(str(target), False, True)])
    assert target.is_dir()
    points.release(first)
    assert target.is_dir()
    points.release(second)
    assert not (tmp_path / "mnt").exists()


def test_recorded_mount_points_are_removed_after_a_crash(tmp_path):
    target = tmp_path / "a" / "b"
    crashed = MountPoints(tmp_path / "record.json", owner="999999999")  # no such process
    crashed.acquire([PointPlan(str(target), False, True)])
    MountPoints(tmp_path / "record.json").cleanup_recorded()
    assert not (tmp_path / "a").exists()


def test_a_mount_point_stays_while_another_agent_uses_it(tmp_path):
    target = tmp_path / "scratch"
    mine = MountPoints(tmp_path / "record.json", owner=str(os.getpid()))
    other = MountPoints(tmp_path / "record.json", owner="1")  # init: alive
    held = mine.acquire([PointPlan(str(target), False, True)])
    other_held = other.acquire([PointPlan(str(target), False, True)])
    mine.release(held)
    mine.cleanup_recorded()
    assert target.is_dir()
    other.release(other_held)
    assert not target.exists()


def test_shadow_plan_keeps_the_needed_paths_under_a_closed_directory():
    closed = {"/root"}
    plan = shadow_plan(
        ["/root/.pyenv/versions/3.11", "/work/venv", "/root/src"],
        uid=65532,
        groups=[65532],
        enter=lambda path, uid, groups: path not in closed,
    )
    assert plan == [{"path": "/root", "keep": ["/root/.pyenv/versions/3.11", "/root/src"]}]
    assert shadow_plan(["/root/x"], 0, [0], enter=lambda *a: False) == [
        {"path": "/root", "keep": ["/root/x"]}
    ]


def test_config_files_are_written_exactly_and_atomically(tmp_path):
    write_files(tmp_path / "cfg", {"a": (b"1", 0o644), "sub/b": (b"2", 0o600)}, None)
    write_files(tmp_path / "cfg", {"a": (b"3", 0o644)}, None)
    assert (tmp_path / "cfg" / "a").read_bytes() == b"3"
    assert not (tmp_path / "cfg" / "sub").exists()


def test_a_python_environment_under_tmp_is_kept_visible_in_the_private_tmp():
    paths = ["/tmp/checkout/.venv", "/tmp/checkout/operator", "/usr/local", "/var/tmp/py"]
    assert kept_in_private_tmp(paths) == [
        "/tmp/checkout/.venv",
        "/tmp/checkout/operator",
        "/var/tmp/py",
    ]
    assert kept_in_private_tmp(["/work/main/.venv", "/tmp"]) == []
