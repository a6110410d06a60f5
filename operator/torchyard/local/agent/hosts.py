"""The pod's /etc/hosts, /etc/hostname and /etc/resolv.conf, standing in for cluster DNS. Pure.

The kubelet writes a hosts file with the pod's own names; cluster DNS answers for
Services and for `<hostname>.<subdomain>` under a headless Service. There is no DNS
server here, so the agent writes those answers into the hosts file too, from the
Services and EndpointSlices it watches, and rewrites it when they change.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

DOMAIN = "cluster.local"
HEADER = "# Kubernetes-managed hosts file (torchyard node agent).\n"
_STANDARD = (
    "127.0.0.1\tlocalhost\n"
    "::1\tlocalhost ip6-localhost ip6-loopback\n"
    "fe00::0\tip6-localnet\n"
    "fe00::0\tip6-mcastprefix\n"
    "fe00::1\tip6-allnodes\n"
    "fe00::2\tip6-allrouters\n"
)

Entry = tuple[str, tuple[str, ...]]


def _qualified(name: str, namespace: str, pod_namespace: str) -> tuple[str, ...]:
    """A Service-style name in every spelling a search path would complete."""
    names = (f"{name}.{namespace}", f"{name}.{namespace}.svc", f"{name}.{namespace}.svc.{DOMAIN}")
    return ((name,) if namespace == pod_namespace else ()) + names


def pod_hostname(pod: Mapping[str, Any]) -> str:
    spec = pod.get("spec") or {}
    return str(spec.get("hostname") or pod["metadata"]["name"])[:63]


def own_entry(pod: Mapping[str, Any], pod_ip: str) -> Entry:
    spec = pod.get("spec") or {}
    hostname = pod_hostname(pod)
    namespace = pod["metadata"]["namespace"]
    subdomain = spec.get("subdomain")
    if subdomain:
        fqdn = f"{hostname}.{subdomain}.{namespace}.svc.{DOMAIN}"
        return pod_ip, (fqdn, hostname)
    return pod_ip, (hostname,)


def service_entries(
    pod_namespace: str,
    services: Iterable[Mapping[str, Any]],
    slices: Iterable[Mapping[str, Any]],
) -> list[Entry]:
    """What cluster DNS would answer: a Service's ClusterIP, or for a headless Service
    its ready endpoints, and `<hostname>.<service>` for endpoints that carry a hostname."""
    by_service: dict[tuple[str, str], list[Mapping[str, Any]]] = {}
    for es in slices:
        labels = es["metadata"].get("labels") or {}
        owner = labels.get("kubernetes.io/service-name")
        if owner:
            by_service.setdefault((es["metadata"]["namespace"], owner), []).append(es)
    entries: list[Entry] = []
    for svc in sorted(services, key=lambda s: (s["metadata"]["namespace"], s["metadata"]["name"])):
        namespace, name = svc["metadata"]["namespace"], svc["metadata"]["name"]
        spec = svc.get("spec") or {}
        if spec.get("type") == "ExternalName":
            continue
        names = _qualified(name, namespace, pod_namespace)
        cluster_ip = spec.get("clusterIP")
        headless = cluster_ip in (None, "", "None")
        if not headless:
            entries.append((cluster_ip, names))
        seen: set[str] = set()
        for es in by_service.get((namespace, name), []):
            if es.get("addressType", "IPv4") != "IPv4":
                continue
            for endpoint in es.get("endpoints") or []:
                if (endpoint.get("conditions") or {}).get("ready") is False:
                    continue
                for address in endpoint.get("addresses") or []:
                    if headless and address not in seen:
                        seen.add(address)
                        entries.append((address, names))
                    if endpoint.get("hostname"):
                        host = endpoint["hostname"]
                        entries.append(
                            (address, _qualified(f"{host}.{name}", namespace, pod_namespace))
                        )
    return entries


def render_hosts(pod: Mapping[str, Any], pod_ip: str, services: Sequence[Entry] = ()) -> str:
    spec = pod.get("spec") or {}
    lines = [HEADER, _STANDARD]
    if pod_ip:
        ip, names = own_entry(pod, pod_ip)
        lines.append(f"{ip}\t{' '.join(names)}\n")
    aliases = spec.get("hostAliases") or []
    if aliases:
        lines.append("\n# Entries added by HostAliases.\n")
        for alias in aliases:
            lines.append(f"{alias['ip']}\t{' '.join(alias.get('hostnames') or [])}\n")
    if services:
        lines.append("\n# Services and headless-Service endpoints (in place of cluster DNS).\n")
        for ip, names in services:
            lines.append(f"{ip}\t{' '.join(names)}\n")
    return "".join(lines)


def render_resolv_conf(namespace: str) -> str:
    # No nameserver: lookups that the hosts file cannot answer fail at once (nothing
    # listens on the pod's loopback port 53) instead of timing out against a host's
    # DNS server the pod cannot reach.
    return (
        "# torchyard node agent: names resolve through /etc/hosts; there is no cluster DNS.\n"
        f"search {namespace}.svc.{DOMAIN} svc.{DOMAIN} {DOMAIN}\n"
        "nameserver 127.0.0.1\n"
        "options ndots:1 timeout:1 attempts:1\n"
    )
