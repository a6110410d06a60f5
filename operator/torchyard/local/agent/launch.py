"""Everything one container instance needs to start, from its pod's spec and sandbox.

Reads the ConfigMaps and Secrets its environment names, resolves env, command, user
and mounts (podspec.py, mounts.py), and creates on the node what must exist first: the
termination-message file and missing mount points.
"""

from __future__ import annotations

import base64
import pwd
from dataclasses import dataclass
from typing import Any

from torchyard.local.agent import hosts, images, mounts
from torchyard.local.agent.container import Instance
from torchyard.local.agent.context import NodeContext
from torchyard.local.agent.kube import Api
from torchyard.local.agent.podspec import (
    MissingReference,
    PodFacts,
    container_argv,
    container_env,
    identity,
    service_links,
)
from torchyard.local.agent.runtime import Launch
from torchyard.local.agent.sandbox import PodSandbox
from torchyard.local.agent.volumes import Volume


@dataclass(frozen=True)
class Sandbox:
    """What the pod worker set up for all of the pod's containers."""

    pod: dict[str, Any]
    facts: PodFacts
    netns: str | None
    # The pod's PID and IPC namespaces (None: the node's, hostPID and hostIPC)
    namespaces: PodSandbox | None
    volumes: dict[str, Volume]
    etc_files: dict[str, str]


def env_references(spec: dict[str, Any]) -> set[tuple[str, str]]:
    """(kind, name) of the ConfigMaps and Secrets a container's environment names."""
    wanted: set[tuple[str, str]] = set()
    for source in spec.get("envFrom") or []:
        if source.get("configMapRef"):
            wanted.add(("ConfigMap", source["configMapRef"]["name"]))
        if source.get("secretRef"):
            wanted.add(("Secret", source["secretRef"]["name"]))
    for var in spec.get("env") or []:
        value_from = var.get("valueFrom") or {}
        if value_from.get("configMapKeyRef"):
            wanted.add(("ConfigMap", value_from["configMapKeyRef"]["name"]))
        if value_from.get("secretKeyRef"):
            wanted.add(("Secret", value_from["secretKeyRef"]["name"]))
    return wanted


async def env_objects(
    api: Api, namespace: str, spec: dict[str, Any]
) -> dict[tuple[str, str], dict[str, str]]:
    """The data of what env_references() names, decoded; missing objects left out."""
    found: dict[tuple[str, str], dict[str, str]] = {}
    for kind, name in env_references(spec):
        obj = await api.get(kind, namespace, name)
        if obj is None:
            continue
        if kind == "Secret":
            found[(kind, name)] = {
                k: base64.b64decode(v).decode(errors="replace")
                for k, v in (obj.get("data") or {}).items()
            }
        else:
            found[(kind, name)] = dict(obj.get("data") or {})
    return found


def home(uid: int) -> str:
    """HOME as a runtime sets it: the user's entry in /etc/passwd, else /."""
    try:
        return pwd.getpwuid(uid).pw_dir
    except KeyError:
        return "/"


async def build_launch(
    node: NodeContext, sandbox: Sandbox, spec: dict[str, Any], files: Instance
) -> tuple[Launch, list[str]]:
    """The Launch, and the node mount points it holds (release them with the pod)."""
    pod = sandbox.pod
    namespace = pod["metadata"]["namespace"]
    image = images.local_image_config(spec.get("image", ""), node.bin_dir)
    ident = identity(pod, spec, image)
    objects = await env_objects(node.api, namespace, spec)

    def lookup(kind: str, namespace: str, name: str, key: str | None) -> Any:
        data = objects.get((kind, name))
        if data is None:
            raise MissingReference(f'{kind.lower()} "{name}" not found')
        if key is None:
            return data
        if key not in data:
            raise MissingReference(f"couldn't find key {key} in {kind} {namespace}/{name}")
        return data[key]

    hostname = hosts.pod_hostname(pod)
    base = {**image.env, "HOSTNAME": hostname, "HOME": home(ident.uid)}
    links = (
        service_links(node.cluster.services(namespace))
        if pod["spec"].get("enableServiceLinks", True)
        else {}
    )
    env = container_env(pod, spec, sandbox.facts, lookup, base, links, node.capacity)
    argv = container_argv(spec, image, env)
    # A fresh, writable termination-message file per run; the container's user may
    # be anyone, and the file is reachable only through its bind mount.
    files.termination.parent.mkdir(parents=True, exist_ok=True)
    files.termination.write_bytes(b"")
    files.termination.chmod(0o666)
    plan = mounts.container_mounts(
        spec,
        sandbox.volumes,
        env,
        sandbox.etc_files,
        str(files.termination),
        keep_visible=node.python_paths,
    )
    private_tmp = not ident.readonly_root
    held = node.mount_points.acquire(mounts.mount_point_plan(plan, private_tmp))
    cwd = spec.get("workingDir") or image.workdir
    workdir = mounts.workdir_plan(cwd, plan, private_tmp)
    if workdir is not None:
        held += node.mount_points.acquire([workdir])
    launch = Launch(
        argv=argv,
        env=env,
        cwd=cwd,
        identity=ident,
        netns=sandbox.netns,
        sandbox=sandbox.namespaces,
        hostname=hostname,
        mounts=plan,
        shadow=mounts.shadow_plan(node.python_paths, ident.uid, ident.groups),
        private_tmp=private_tmp,
        keep_in_tmp=mounts.kept_in_private_tmp(node.python_paths) if private_tmp else [],
        log_path=files.log,
        config_path=files.log.with_suffix(".shim.json"),
    )
    return launch, held
