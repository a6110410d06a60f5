"""From a pod's spec to what a container process needs: environment, command, identity.

Pure functions, following the kubelet where it has a rule: the order in which
environment variables are built, `$(VAR)` expansion, how command and args combine with
the image's entrypoint, which user a container runs as, and its capabilities.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from torchyard.local.agent.images import ImageConfig

# A lookup of a key in a ConfigMap or Secret: (kind, namespace, name, key) -> value;
# raises MissingReference when the object or key is missing.
Lookup = Callable[[str, str, str, str | None], Any]

# containerd's default capabilities for a container that is not privileged.
DEFAULT_CAPABILITIES = (
    "CHOWN",
    "DAC_OVERRIDE",
    "FSETID",
    "FOWNER",
    "MKNOD",
    "NET_RAW",
    "SETGID",
    "SETUID",
    "SETFCAP",
    "SETPCAP",
    "NET_BIND_SERVICE",
    "SYS_CHROOT",
    "KILL",
    "AUDIT_WRITE",
)
CAPABILITY_NUMBERS = {
    "CHOWN": 0,
    "DAC_OVERRIDE": 1,
    "DAC_READ_SEARCH": 2,
    "FOWNER": 3,
    "FSETID": 4,
    "KILL": 5,
    "SETGID": 6,
    "SETUID": 7,
    "SETPCAP": 8,
    "LINUX_IMMUTABLE": 9,
    "NET_BIND_SERVICE": 10,
    "NET_BROADCAST": 11,
    "NET_ADMIN": 12,
    "NET_RAW": 13,
    "IPC_LOCK": 14,
    "IPC_OWNER": 15,
    "SYS_MODULE": 16,
    "SYS_RAWIO": 17,
    "SYS_CHROOT": 18,
    "SYS_PTRACE": 19,
    "SYS_PACCT": 20,
    "SYS_ADMIN": 21,
    "SYS_BOOT": 22,
    "SYS_NICE": 23,
    "SYS_RESOURCE": 24,
    "SYS_TIME": 25,
    "SYS_TTY_CONFIG": 26,
    "MKNOD": 27,
    "LEASE": 28,
    "AUDIT_WRITE": 29,
    "AUDIT_CONTROL": 30,
    "SETFCAP": 31,
    "MAC_OVERRIDE": 32,
    "MAC_ADMIN": 33,
    "SYSLOG": 34,
    "WAKE_ALARM": 35,
    "BLOCK_SUSPEND": 36,
    "AUDIT_READ": 37,
    "PERFMON": 38,
    "BPF": 39,
    "CHECKPOINT_RESTORE": 40,
}
_ENV_NAME = re.compile(r"^[-._a-zA-Z][-._a-zA-Z0-9]*$")
_LABEL_REF = re.compile(r"^metadata\.(labels|annotations)\['(.+)'\]$")


class ConfigError(Exception):
    """The container cannot be configured (the kubelet's CreateContainerConfigError)."""


class MissingReference(ConfigError):
    """A ConfigMap, Secret or key that the pod references does not exist."""


@dataclass(frozen=True)
class PodFacts:
    """What the agent knows about a pod beyond its spec, for the downward API."""

    pod_ip: str
    host_ip: str
    node_name: str


# -- $(VAR) expansion ----------------------------------------------------------------


def expand(text: str, env: Mapping[str, str]) -> str:
    """Kubernetes' `$(VAR)` expansion: `$$` escapes, unknown references stay as written."""
    out: list[str] = []
    i = 0
    while i < len(text):
        char = text[i]
        if char != "$" or i + 1 == len(text):
            out.append(char)
            i += 1
            continue
        nxt = text[i + 1]
        if nxt == "$":
            out.append("$")
            i += 2
        elif nxt == "(":
            end = text.find(")", i + 2)
            if end == -1:
                out.append(text[i:])
                break
            name = text[i + 2 : end]
            out.append(env[name] if name in env else text[i : end + 1])
            i = end + 1
        else:
            out.append("$" + nxt)
            i += 2
    return "".join(out)


# -- the downward API ----------------------------------------------------------------


def field_value(pod: Mapping[str, Any], facts: PodFacts, path: str) -> str:
    """The value of a `fieldRef.fieldPath`, as the kubelet resolves it."""
    meta = pod.get("metadata") or {}
    spec = pod.get("spec") or {}
    simple = {
        "metadata.name": meta.get("name", ""),
        "metadata.namespace": meta.get("namespace", ""),
        "metadata.uid": meta.get("uid", ""),
        "spec.nodeName": spec.get("nodeName") or facts.node_name,
        "spec.serviceAccountName": spec.get("serviceAccountName", ""),
        "status.podIP": facts.pod_ip,
        "status.podIPs": facts.pod_ip,
        "status.hostIP": facts.host_ip,
        "status.hostIPs": facts.host_ip,
    }
    if path in simple:
        return str(simple[path])
    if path in ("metadata.labels", "metadata.annotations"):
        values = meta.get(path.split(".")[1]) or {}
        return "\n".join(f'{k}="{v}"' for k, v in sorted(values.items()))
    match = _LABEL_REF.match(path)
    if match:
        return str((meta.get(match.group(1)) or {}).get(match.group(2), ""))
    raise ConfigError(f"unsupported fieldRef.fieldPath {path!r}")


_BINARY_SUFFIXES = {"Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "Ti": 2**40, "Pi": 2**50, "Ei": 2**60}
_DECIMAL_SUFFIXES = {
    "n": 1e-9,
    "u": 1e-6,
    "m": 1e-3,
    "": 1,
    "k": 1e3,
    "M": 1e6,
    "G": 1e9,
    "T": 1e12,
    "P": 1e15,
    "E": 1e18,
}


def quantity(value: str | int | float) -> float:
    """A resource quantity ("500m", "2Gi", "1e3") as a number."""
    text = str(value).strip()
    for suffix, factor in _BINARY_SUFFIXES.items():
        if text.endswith(suffix):
            return float(text[: -len(suffix)]) * factor
    match = re.match(r"^([+-]?[0-9.]+(?:[eE][+-]?[0-9]+)?)([a-zA-Z]*)$", text)
    if not match or match.group(2) not in _DECIMAL_SUFFIXES:
        raise ConfigError(f"invalid quantity {value!r}")
    return float(match.group(1)) * _DECIMAL_SUFFIXES[match.group(2)]


def resource_value(
    container: Mapping[str, Any], ref: Mapping[str, Any], node_capacity: Mapping[str, str]
) -> str:
    """A `resourceFieldRef`: limits fall back to the node's allocatable, as the kubelet does."""
    resource = ref["resource"]
    kind, _, name = resource.partition(".")
    resources = container.get("resources") or {}
    raw = (resources.get(kind) or {}).get(name)
    if raw is None and kind == "limits":
        raw = node_capacity.get(name)
    if raw is None:
        raw = "0"
    divisor = quantity(ref.get("divisor") or "1")
    amount = quantity(raw) / divisor
    # The kubelet rounds up: 500m of cpu with divisor 1 reads "1".
    whole = int(amount) if amount == int(amount) else int(amount) + 1
    return str(whole)


# -- environment ---------------------------------------------------------------------


def _service_env_name(name: str) -> str:
    return name.upper().replace("-", "_")


def service_links(services: Sequence[Mapping[str, Any]]) -> dict[str, str]:
    """Docker-link style variables (FOO_SERVICE_HOST...) for the Services of a namespace."""
    env: dict[str, str] = {}
    for svc in sorted(services, key=lambda s: s["metadata"]["name"]):
        spec = svc.get("spec") or {}
        ip = spec.get("clusterIP")
        if not ip or ip == "None" or spec.get("type") == "ExternalName":
            continue
        prefix = _service_env_name(svc["metadata"]["name"])
        ports = spec.get("ports") or []
        if not ports:
            continue
        env[f"{prefix}_SERVICE_HOST"] = ip
        env[f"{prefix}_SERVICE_PORT"] = str(ports[0]["port"])
        for port in ports:
            if port.get("name"):
                env[f"{prefix}_SERVICE_PORT_{_service_env_name(port['name'])}"] = str(port["port"])
        first = ports[0]
        proto = (first.get("protocol") or "TCP").lower()
        env[f"{prefix}_PORT"] = f"{proto}://{ip}:{first['port']}"
        for port in ports:
            proto = (port.get("protocol") or "TCP").upper()
            base = f"{prefix}_PORT_{port['port']}_{proto}"
            env[base] = f"{proto.lower()}://{ip}:{port['port']}"
            env[f"{base}_PROTO"] = proto.lower()
            env[f"{base}_PORT"] = str(port["port"])
            env[f"{base}_ADDR"] = ip
    return env


def container_env(
    pod: Mapping[str, Any],
    container: Mapping[str, Any],
    facts: PodFacts,
    lookup: Lookup,
    base: Mapping[str, str],
    service_env: Mapping[str, str] | None = None,
    node_capacity: Mapping[str, str] | None = None,
) -> dict[str, str]:
    """The container's environment, built in the kubelet's order.

    `base` is what the runtime and the image set (PATH, HOSTNAME, HOME); then the
    Services' link variables, `envFrom` in order, and `env` in order, each value
    expanded against what came before.
    """
    namespace = pod["metadata"]["namespace"]
    env: dict[str, str] = dict(service_env or {})
    for source in container.get("envFrom") or []:
        prefix = source.get("prefix", "")
        for kind, key in (("ConfigMap", "configMapRef"), ("Secret", "secretRef")):
            ref = source.get(key)
            if ref is None:
                continue
            data = lookup(kind, namespace, ref["name"], None) if ref else None
            if data is None:
                if ref.get("optional"):
                    continue
                raise MissingReference(f'{kind.lower()} "{ref["name"]}" not found')
            for name, value in data.items():
                if _ENV_NAME.match(prefix + name):
                    env[prefix + name] = value
    mapping = {**base, **env}
    for var in container.get("env") or []:
        name = var["name"]
        if "valueFrom" not in var:
            value = expand(var.get("value") or "", mapping)
        else:
            value = _value_from(pod, container, var["valueFrom"], facts, lookup, node_capacity)
            if value is None:
                continue
        env[name] = value
        mapping[name] = value
    return {**base, **env}


def _value_from(
    pod: Mapping[str, Any],
    container: Mapping[str, Any],
    source: Mapping[str, Any],
    facts: PodFacts,
    lookup: Lookup,
    node_capacity: Mapping[str, str] | None,
) -> str | None:
    namespace = pod["metadata"]["namespace"]
    if "fieldRef" in source:
        return field_value(pod, facts, source["fieldRef"]["fieldPath"])
    if "resourceFieldRef" in source:
        return resource_value(container, source["resourceFieldRef"], node_capacity or {})
    for kind, key in (("ConfigMap", "configMapKeyRef"), ("Secret", "secretKeyRef")):
        ref = source.get(key)
        if ref is None:
            continue
        try:
            return str(lookup(kind, namespace, ref["name"], ref["key"]))
        except MissingReference:
            if ref.get("optional"):
                return None
            raise
    raise ConfigError(f"unsupported valueFrom {sorted(source)}")


# -- command -------------------------------------------------------------------------


def container_argv(
    container: Mapping[str, Any], image: ImageConfig, env: Mapping[str, str]
) -> list[str]:
    """command/args combined with the image's entrypoint/cmd, then `$(VAR)`-expanded."""
    command = container.get("command") or []
    args = container.get("args") or []
    if command:
        argv = [*command, *args]
    elif args:
        argv = [*image.entrypoint, *args]
    else:
        argv = [*image.entrypoint, *image.cmd]
    if not argv:
        raise ConfigError("no command specified: the container has no command and its image none")
    return [expand(part, env) for part in argv]


# -- identity and privileges ---------------------------------------------------------


@dataclass(frozen=True)
class Identity:
    uid: int
    gid: int
    groups: tuple[int, ...]
    readonly_root: bool
    no_new_privs: bool
    capabilities: tuple[int, ...] | None  # None: every capability (privileged)


def identity(pod: Mapping[str, Any], container: Mapping[str, Any], image: ImageConfig) -> Identity:
    """The user, groups and privileges a container runs with; refuses runAsNonRoot
    with a root user, as the kubelet does."""
    pod_sc = (pod.get("spec") or {}).get("securityContext") or {}
    sc = container.get("securityContext") or {}

    def pick(key: str) -> Any:
        return sc[key] if sc.get(key) is not None else pod_sc.get(key)

    run_as_user = pick("runAsUser")
    uid = int(run_as_user) if run_as_user is not None else image.user
    run_as_group = pick("runAsGroup")
    if run_as_group is not None:
        gid = int(run_as_group)
    else:
        gid = image.group if run_as_user is None else 0
    if pick("runAsNonRoot") and uid == 0:
        name = container.get("name", "")
        raise ConfigError(
            f"container has runAsNonRoot and image will run as root (container: {name})"
        )
    groups = [gid, *(int(g) for g in pod_sc.get("supplementalGroups") or [])]
    if pod_sc.get("fsGroup") is not None:
        groups.append(int(pod_sc["fsGroup"]))
    privileged = bool(sc.get("privileged"))
    capabilities: tuple[int, ...] | None = None
    if not privileged:
        caps = sc.get("capabilities") or {}
        drop = {c.upper().removeprefix("CAP_") for c in caps.get("drop") or []}
        add = {c.upper().removeprefix("CAP_") for c in caps.get("add") or []}
        kept = set() if "ALL" in drop else set(DEFAULT_CAPABILITIES) - drop
        kept |= set(CAPABILITY_NUMBERS) if "ALL" in add else add
        capabilities = tuple(sorted(CAPABILITY_NUMBERS[c] for c in kept if c in CAPABILITY_NUMBERS))
    return Identity(
        uid=uid,
        gid=gid,
        groups=tuple(dict.fromkeys(groups)),
        readonly_root=bool(sc.get("readOnlyRootFilesystem")),
        no_new_privs=sc.get("allowPrivilegeEscalation") is False,
        capabilities=capabilities,
    )


def named_port(container: Mapping[str, Any], port: int | str) -> int:
    """A probe's or Service's port: a number, or the name of a container port."""
    if isinstance(port, int) or str(port).isdigit():
        return int(port)
    for declared in container.get("ports") or []:
        if declared.get("name") == port:
            return int(declared["containerPort"])
    raise ConfigError(f"container has no port named {port!r}")


# -- what the agent refuses unless told otherwise ------------------------------------

ALLOW_PRIVILEGED_FLAG = "--allow-privileged-pods"
REFUSED_REASON = "PrivilegesNotAllowed"


def privilege_refusals(
    pod: Mapping[str, Any], image_config: Callable[[str], ImageConfig | None]
) -> list[str]:
    """What in the pod would reach past its sandbox onto the node: privileged
    containers, the node's network, PID or IPC namespace, hostPath volumes, and
    containers that run as root (uid 0, on the node's own file system). Empty when
    there is none. `image_config` gives an image's user, for containers that set none;
    None for an image the node refuses anyway (it never runs)."""
    spec = pod.get("spec") or {}
    found = [f"{key}: true" for key in ("hostNetwork", "hostPID", "hostIPC") if spec.get(key)]
    for volume in spec.get("volumes") or []:
        if "hostPath" in volume:
            path = (volume["hostPath"] or {}).get("path", "")
            found.append(f'hostPath volume "{volume["name"]}" ({path})')
    for container in [*(spec.get("initContainers") or []), *(spec.get("containers") or [])]:
        name = container.get("name", "")
        if (container.get("securityContext") or {}).get("privileged"):
            found.append(f'container "{name}" is privileged')
        image = image_config(container.get("image", ""))
        if image is None:
            continue
        try:
            uid = identity(pod, container, image).uid
        except ConfigError:
            continue  # runAsNonRoot with a root user: refused on its own, never runs
        if uid == 0:
            found.append(f'container "{name}" runs as root (uid 0)')
    return found


def refusal_message(refusals: Sequence[str]) -> str:
    """What the pod's status and Event say about a refused pod."""
    return (
        f"the node agent refuses this pod: {'; '.join(refusals)}. It runs pods on the "
        "node's own file system and kernel, so these would reach the node itself; start "
        f"the agent with {ALLOW_PRIVILEGED_FLAG} to allow them (a machine you do not share)"
    )
