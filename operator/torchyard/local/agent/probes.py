"""Readiness, liveness and startup probes: their spec, their thresholds, their checks.

`Probe` and `ProbeTracker` are pure (parsing, defaults, success/failure thresholds); the
`check_*` coroutines run one check. Like the kubelet, HTTP and TCP checks come from the
node's network namespace to the pod's IP, and exec checks run inside the container.
"""

from __future__ import annotations

import asyncio
import contextlib
import ssl
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from torchyard.local.agent.podspec import named_port

_NOVERIFY = ssl.create_default_context()
_NOVERIFY.check_hostname = False
_NOVERIFY.verify_mode = ssl.CERT_NONE


@dataclass(frozen=True)
class Probe:
    kind: str  # "http", "tcp", "exec", "grpc"
    initial_delay: float = 0.0
    period: float = 10.0
    timeout: float = 1.0
    success_threshold: int = 1
    failure_threshold: int = 3
    port: int = 0
    host: str = ""
    path: str = "/"
    scheme: str = "HTTP"
    headers: tuple[tuple[str, str], ...] = ()
    command: tuple[str, ...] = ()
    termination_grace: float | None = None


def parse_probe(spec: Mapping[str, Any] | None, container: Mapping[str, Any]) -> Probe | None:
    """A probe from its API form, with the API's defaults."""
    if not spec:
        return None
    common = {
        "initial_delay": float(spec.get("initialDelaySeconds") or 0),
        "period": float(spec.get("periodSeconds") or 10),
        "timeout": float(spec.get("timeoutSeconds") or 1),
        "success_threshold": int(spec.get("successThreshold") or 1),
        "failure_threshold": int(spec.get("failureThreshold") or 3),
        "termination_grace": (
            float(spec["terminationGracePeriodSeconds"])
            if spec.get("terminationGracePeriodSeconds") is not None
            else None
        ),
    }
    if "httpGet" in spec:
        http = spec["httpGet"]
        return Probe(
            kind="http",
            port=named_port(container, http["port"]),
            host=http.get("host") or "",
            path=http.get("path") or "/",
            scheme=(http.get("scheme") or "HTTP").upper(),
            headers=tuple((h["name"], h["value"]) for h in http.get("httpHeaders") or []),
            **common,
        )
    if "tcpSocket" in spec:
        tcp = spec["tcpSocket"]
        return Probe(
            kind="tcp",
            port=named_port(container, tcp["port"]),
            host=tcp.get("host") or "",
            **common,
        )
    if "exec" in spec:
        return Probe(kind="exec", command=tuple(spec["exec"].get("command") or ()), **common)
    if "grpc" in spec:
        return Probe(kind="grpc", port=int(spec["grpc"]["port"]), **common)
    return None


class ProbeTracker:
    """Consecutive results against the thresholds; `result` flips only when one is met.

    Readiness and startup start failed (not ready, not started), liveness succeeded.
    """

    def __init__(self, probe: Probe, initial: bool) -> None:
        self.probe = probe
        self.result = initial
        self._successes = 0
        self._failures = 0

    def record(self, ok: bool) -> bool:
        """Count one check; True when the result changed."""
        if ok:
            self._successes += 1
            self._failures = 0
            if not self.result and self._successes >= self.probe.success_threshold:
                self.result = True
                return True
        else:
            self._failures += 1
            self._successes = 0
            if self.result and self._failures >= self.probe.failure_threshold:
                self.result = False
                return True
        return False


# -- checks --------------------------------------------------------------------------


@dataclass(frozen=True)
class Outcome:
    ok: bool
    detail: str = ""


async def check_http(probe: Probe, pod_ip: str) -> Outcome:
    host = probe.host or pod_ip
    headers = dict(probe.headers)
    request = (
        f"GET {probe.path} HTTP/1.1\r\n"
        f"Host: {headers.pop('Host', f'{host}:{probe.port}')}\r\n"
        f"User-Agent: {headers.pop('User-Agent', 'kube-probe/1.35')}\r\n"
        f"Accept: {headers.pop('Accept', '*/*')}\r\n"
        + "".join(f"{k}: {v}\r\n" for k, v in headers.items())
        + "Connection: close\r\n\r\n"
    )
    tls = _NOVERIFY if probe.scheme == "HTTPS" else None
    writer = None
    try:
        async with asyncio.timeout(probe.timeout):
            reader, writer = await asyncio.open_connection(host, probe.port, ssl=tls)
            writer.write(request.encode())
            await writer.drain()
            line = await reader.readline()
    except (OSError, TimeoutError, ssl.SSLError) as error:
        return Outcome(False, f'Get "{_url(probe, host)}": {_describe(error)}')
    finally:
        if writer is not None:
            writer.close()
            with contextlib.suppress(Exception):
                await writer.wait_closed()
    parts = line.decode(errors="replace").split()
    code = int(parts[1]) if len(parts) >= 2 and parts[1].isdigit() else 0
    if 200 <= code < 400:
        return Outcome(True)
    return Outcome(False, f"HTTP probe failed with statuscode: {code}")


def _url(probe: Probe, host: str) -> str:
    return f"{probe.scheme.lower()}://{host}:{probe.port}{probe.path}"


def _describe(error: BaseException) -> str:
    if isinstance(error, TimeoutError):
        return "context deadline exceeded (Client.Timeout exceeded while awaiting headers)"
    if isinstance(error, ConnectionRefusedError):
        return "connect: connection refused"
    return str(error) or type(error).__name__


async def check_tcp(probe: Probe, pod_ip: str) -> Outcome:
    host = probe.host or pod_ip
    try:
        async with asyncio.timeout(probe.timeout):
            _, writer = await asyncio.open_connection(host, probe.port)
    except (OSError, TimeoutError) as error:
        return Outcome(False, f"dial tcp {host}:{probe.port}: {_describe(error)}")
    writer.close()
    with contextlib.suppress(Exception):
        await writer.wait_closed()
    return Outcome(True)


def exec_argv(pid: int, uid: int, gid: int, cwd: str, command: Sequence[str]) -> list[str]:
    """nsenter into a running container's namespaces as its user, then run `command`.
    Entering the PID namespace makes nsenter fork: the command runs inside the pod."""
    return [
        "nsenter",
        f"--target={pid}",
        "--mount",
        "--uts",
        "--net",
        "--ipc",
        "--pid",
        f"--setuid={uid}",
        f"--setgid={gid}",
        f"--wdns={cwd}",
        "--",
        *command,
    ]


async def check_exec(
    probe: Probe, pid: int, uid: int, gid: int, cwd: str, env: Mapping[str, str]
) -> Outcome:
    process = await asyncio.create_subprocess_exec(
        *exec_argv(pid, uid, gid, cwd, probe.command),
        env=dict(env),
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
        start_new_session=True,
    )
    try:
        async with asyncio.timeout(probe.timeout):
            output, _ = await process.communicate()
    except TimeoutError:
        with contextlib.suppress(ProcessLookupError):
            process.kill()
        await process.wait()
        return Outcome(False, f"command timed out after {probe.timeout:g}s")
    if process.returncode == 0:
        return Outcome(True)
    text = output.decode(errors="replace").strip()[-512:]
    return Outcome(False, f"command exited with {process.returncode}: {text}".strip(": "))
