"""A pod's volumes as directories on the node, ready to be bind-mounted into containers.

emptyDir, configMap, secret, downwardAPI and projected volumes live in the pod's
directory; hostPath is the host's path; a persistentVolumeClaim is the directory of the
PersistentVolume bound to it (the agent's provisioner makes those, see provisioner.py).
Files of configMap-like volumes are rewritten atomically (rename), so a container that
reads one while it changes sees either version, never half of one.
"""

from __future__ import annotations

import base64
import contextlib
import os
import shutil
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from torchyard.local.agent.podspec import PodFacts, field_value, quantity, resource_value
from torchyard.local.agent.shim import MS_NODEV, MS_NOSUID, ShimError, mount, umount

SUPPORTED = (
    "emptyDir",
    "configMap",
    "secret",
    "downwardAPI",
    "projected",
    "hostPath",
    "persistentVolumeClaim",
    "ephemeral",
)


class VolumeError(Exception):
    """A volume cannot be set up yet or at all (the kubelet's FailedMount)."""


class Fetcher(Protocol):
    """What volumes need from the API, as the node."""

    async def get(self, kind: str, namespace: str, name: str) -> dict[str, Any] | None: ...

    async def token(
        self,
        namespace: str,
        account: str,
        audience: str | None,
        seconds: int,
        pod: Mapping[str, Any],
    ) -> str: ...


@dataclass(frozen=True)
class Volume:
    path: str
    readonly: bool = False
    # emptyDir with medium Memory: a tmpfs the agent mounted and must unmount
    tmpfs: bool = False


def volume_dir(pod_dir: Path, kind: str, name: str) -> Path:
    return pod_dir / "volumes" / kind / name


def write_files(target: Path, files: Mapping[str, tuple[bytes, int]], gid: int | None) -> None:
    """Make `target` hold exactly `files` (relative path -> (content, mode))."""
    target.mkdir(parents=True, exist_ok=True)
    os.chmod(target, 0o755)
    wanted = set()
    for rel, (content, mode) in files.items():
        path = target / rel
        wanted.add(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.parent / f".{path.name}.tmp"
        tmp.write_bytes(content)
        os.chmod(tmp, mode)
        if gid is not None:
            os.chown(tmp, -1, gid)
        os.replace(tmp, path)
    for path in sorted(target.rglob("*"), reverse=True):
        if path.is_file() and path not in wanted:
            path.unlink()
        elif path.is_dir() and not any(path.iterdir()):
            path.rmdir()


def _items(
    data: Mapping[str, bytes], items: list[dict[str, Any]] | None, default_mode: int, what: str
) -> dict[str, tuple[bytes, int]]:
    if not items:
        return {key: (value, default_mode) for key, value in data.items()}
    out = {}
    for item in items:
        if item["key"] not in data:
            raise VolumeError(f"configuration key {item['key']!r} not found in {what}")
        out[item["path"]] = (data[item["key"]], int(item.get("mode") or default_mode))
    return out


def _data(obj: Mapping[str, Any], kind: str) -> dict[str, bytes]:
    if kind == "Secret":
        return {k: base64.b64decode(v) for k, v in (obj.get("data") or {}).items()}
    out = {k: v.encode() for k, v in (obj.get("data") or {}).items()}
    out.update({k: base64.b64decode(v) for k, v in (obj.get("binaryData") or {}).items()})
    return out


async def _object_files(
    fetcher: Fetcher, kind: str, namespace: str, source: Mapping[str, Any], default_mode: int
) -> dict[str, tuple[bytes, int]]:
    name = source.get("name") or source.get("secretName") or ""
    obj = await fetcher.get(kind, namespace, name)
    if obj is None:
        if source.get("optional"):
            return {}
        raise VolumeError(f'{kind.lower()} "{name}" not found')
    return _items(_data(obj, kind), source.get("items"), default_mode, f"{kind} {namespace}/{name}")


def _downward_files(
    pod: Mapping[str, Any], facts: PodFacts, source: Mapping[str, Any], default_mode: int
) -> dict[str, tuple[bytes, int]]:
    out = {}
    containers = {c["name"]: c for c in pod["spec"].get("containers") or []}
    for item in source.get("items") or []:
        mode = int(item.get("mode") or default_mode)
        if "fieldRef" in item:
            value = field_value(pod, facts, item["fieldRef"]["fieldPath"])
        else:
            ref = item["resourceFieldRef"]
            container = containers.get(ref.get("containerName", ""), {})
            value = resource_value(container, ref, {})
        out[item["path"]] = (value.encode(), mode)
    return out


async def _projected_files(
    fetcher: Fetcher, pod: Mapping[str, Any], facts: PodFacts, source: Mapping[str, Any]
) -> dict[str, tuple[bytes, int]]:
    namespace = pod["metadata"]["namespace"]
    default_mode = int(source.get("defaultMode") or 0o644)
    files: dict[str, tuple[bytes, int]] = {}
    for part in source.get("sources") or []:
        if "configMap" in part:
            files.update(
                await _object_files(
                    fetcher, "ConfigMap", namespace, part["configMap"], default_mode
                )
            )
        elif "secret" in part:
            files.update(
                await _object_files(fetcher, "Secret", namespace, part["secret"], default_mode)
            )
        elif "downwardAPI" in part:
            files.update(_downward_files(pod, facts, part["downwardAPI"], default_mode))
        elif "serviceAccountToken" in part:
            sat = part["serviceAccountToken"]
            account = pod["spec"].get("serviceAccountName") or "default"
            token = await fetcher.token(
                namespace,
                account,
                sat.get("audience"),
                int(sat.get("expirationSeconds") or 3600),
                pod,
            )
            files[sat["path"]] = (token.encode(), default_mode)
        else:
            raise VolumeError(f"unsupported projected volume source {sorted(part)}")
    return files


async def _claim_path(fetcher: Fetcher, namespace: str, claim: str) -> str:
    pvc = await fetcher.get("PersistentVolumeClaim", namespace, claim)
    if pvc is None:
        raise VolumeError(f'persistentvolumeclaim "{claim}" not found')
    volume = (pvc.get("spec") or {}).get("volumeName")
    if not volume or (pvc.get("status") or {}).get("phase") != "Bound":
        raise VolumeError(f'persistentvolumeclaim "{claim}" is not bound yet')
    pv = await fetcher.get("PersistentVolume", "", volume)
    if pv is None:
        raise VolumeError(f'persistentvolume "{volume}" not found')
    spec = pv.get("spec") or {}
    path = (spec.get("hostPath") or spec.get("local") or {}).get("path")
    if not path:
        raise VolumeError(f"persistentvolume {volume} is neither hostPath nor local")
    Path(path).mkdir(parents=True, exist_ok=True)
    return str(path)


def _host_path(source: Mapping[str, Any]) -> str:
    path = source["path"]
    kind = source.get("type") or ""
    p = Path(path)
    if kind == "DirectoryOrCreate":
        p.mkdir(parents=True, exist_ok=True, mode=0o755)
    elif kind == "FileOrCreate":
        p.parent.mkdir(parents=True, exist_ok=True)
        p.touch(mode=0o644, exist_ok=True)
    elif kind == "Directory" and not p.is_dir():
        raise VolumeError(f"hostPath type check failed: {path} is not a directory")
    elif kind == "File" and not p.is_file():
        raise VolumeError(f"hostPath type check failed: {path} is not a file")
    elif kind in ("Socket", "CharDevice", "BlockDevice") and not p.exists():
        raise VolumeError(f"hostPath type check failed: {path} does not exist")
    return path


def _own(path: Path, gid: int, tree: bool) -> None:
    """fsGroup: group-own the volume and let the group write, as the kubelet does
    (directories setgid, so that new files keep the group)."""
    targets = [path, *(path.rglob("*") if tree else ())]
    for target in targets:
        if target.is_symlink():
            continue
        os.chown(target, -1, gid, follow_symlinks=False)
        extra = 0o2070 if target.is_dir() else 0o060
        os.chmod(target, os.stat(target).st_mode | extra)


def claim_owner(path: Path, pod: Mapping[str, Any], claims_root: Path | None) -> None:
    """Give a claim's directory to the pod that mounts it: group-owned by its fsGroup
    (the whole tree, unless the top already is: the kubelet's OnRootMismatch), or else
    owned by its runAsUser while root still owns it. A pod with neither gets it as it
    is: a claim is never writable by every user of the node. Only the agent's own
    claims (under `claims_root`): a PersistentVolume an administrator pointed at some
    other directory of the node keeps its owners, as the kubelet leaves hostPath alone."""
    if claims_root is None or claims_root.resolve() not in path.resolve().parents:
        return
    security = (pod.get("spec") or {}).get("securityContext") or {}
    if security.get("fsGroup") is not None:
        gid = int(security["fsGroup"])
        st = os.stat(path)
        if st.st_gid != gid or st.st_mode & 0o2070 != 0o2070:
            _own(path, gid, tree=True)
    elif security.get("runAsUser") not in (None, 0) and os.stat(path).st_uid == 0:
        os.chown(path, int(security["runAsUser"]), -1)


async def materialize(
    fetcher: Fetcher,
    pod: Mapping[str, Any],
    pod_dir: Path,
    facts: PodFacts,
    existing: Mapping[str, Volume] | None = None,
    claims_root: Path | None = None,
) -> dict[str, Volume]:
    """Set up (or refresh) every volume of the pod; name -> where it is on the node."""
    spec = pod["spec"]
    namespace = pod["metadata"]["namespace"]
    fs_group = (spec.get("securityContext") or {}).get("fsGroup")
    gid = int(fs_group) if fs_group is not None else None
    out: dict[str, Volume] = {}
    for vol in spec.get("volumes") or []:
        name = vol["name"]
        kind = next((k for k in SUPPORTED if k in vol), None)
        if kind is None:
            raise VolumeError(
                f"volume {name!r}: the torchyard node agent supports only {', '.join(SUPPORTED)}"
            )
        src = vol[kind]
        if kind == "emptyDir":
            if existing and name in existing:
                out[name] = existing[name]
                continue
            path = volume_dir(pod_dir, "empty-dir", name)
            path.mkdir(parents=True, exist_ok=True)
            os.chmod(path, 0o777)
            memory = src.get("medium") == "Memory"
            if memory and not os.path.ismount(path):
                size = src.get("sizeLimit")
                data = f"mode=777,size={int(quantity(size))}" if size else "mode=777"
                mount("tmpfs", str(path), "tmpfs", MS_NOSUID | MS_NODEV, data)
            if gid is not None:
                _own(path, gid, tree=False)
            out[name] = Volume(str(path), tmpfs=memory)
        elif kind in ("configMap", "secret", "downwardAPI", "projected"):
            mode = int(src.get("defaultMode") or 0o644)
            if kind == "configMap":
                files = await _object_files(fetcher, "ConfigMap", namespace, src, mode)
            elif kind == "secret":
                files = await _object_files(fetcher, "Secret", namespace, src, mode)
            elif kind == "downwardAPI":
                files = _downward_files(pod, facts, src, mode)
            else:
                files = await _projected_files(fetcher, pod, facts, src)
            path = volume_dir(pod_dir, kind.lower(), name)
            write_files(path, files, gid)
            if gid is not None:
                _own(path, gid, tree=False)
            out[name] = Volume(str(path), readonly=True)
        elif kind == "hostPath":
            out[name] = Volume(_host_path(src))
        elif kind == "persistentVolumeClaim":
            path = await _claim_path(fetcher, namespace, src["claimName"])
            claim_owner(Path(path), pod, claims_root)
            out[name] = Volume(path, readonly=bool(src.get("readOnly")))
        else:  # ephemeral: the ephemeral-volume controller names the claim pod-volume
            claim = f"{pod['metadata']['name']}-{name}"
            path = await _claim_path(fetcher, namespace, claim)
            claim_owner(Path(path), pod, claims_root)
            out[name] = Volume(path)
    return out


def release(volumes: Mapping[str, Volume]) -> None:
    """Unmount what materialize() mounted on the node (memory-backed emptyDirs)."""
    for vol in volumes.values():
        if vol.tmpfs:
            with contextlib.suppress(ShimError, OSError):
                umount(vol.path)


def mounts_under(path: Path) -> list[str]:
    """Mount points of the agent's namespace at or below `path`, deepest first."""
    prefix = str(path).rstrip("/")
    found = []
    with open("/proc/self/mountinfo") as f:
        for line in f:
            point = line.split()[4].encode().decode("unicode_escape")
            if point == prefix or point.startswith(prefix + "/"):
                found.append(point)
    return sorted(found, key=len, reverse=True)


def unmount_under(path: Path) -> None:
    for point in mounts_under(path):
        with contextlib.suppress(ShimError, OSError):
            umount(point)


def remove_pod_dir(pod_dir: Path) -> None:
    # Never let rmtree walk into something still mounted there.
    unmount_under(pod_dir)
    shutil.rmtree(pod_dir, ignore_errors=True)
