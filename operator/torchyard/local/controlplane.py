"""A real Kubernetes control plane on loopback: etcd, kube-apiserver and, optionally,
kube-controller-manager and kube-scheduler, built from the pinned Go modules.

etcd holds every Secret in clear, so it is no less guarded than the API server: it
serves TLS only and accepts a client only with a certificate from its own CA (not the
cluster's, whose client certificates users hold), which signs one: the API server's.
Its peer port (a single member has no peers) takes the same certificates.

There are no nodes: pods are scheduled by nobody until a node agent joins. The API
server enforces RBAC and Pod Security admission like a production one, which is the
point: the operator's tests run under its real permissions.
"""

from __future__ import annotations

import atexit
import contextlib
import json
import os
import shutil
import socket
import ssl
import subprocess
import tempfile
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Sequence
from pathlib import Path
from types import TracebackType

from torchyard.local import kubeconfig, pki, processes
from torchyard.local.build import Binaries, ensure_binaries
from torchyard.local.processes import Child

STATE_FILE = "state.json"
_START_ATTEMPTS = 3


class ControlPlaneError(RuntimeError):
    """The control plane failed to start; the message carries the failing log's tail."""

    def __init__(self, message: str, port_in_use: bool = False) -> None:
        super().__init__(message)
        self.port_in_use = port_in_use


class KubectlError(subprocess.CalledProcessError):
    """kubectl exited non-zero; unlike CalledProcessError, str() includes its stderr."""

    def __str__(self) -> str:
        return f"{super().__str__()}\nstderr:\n{(self.stderr or '').strip()}"


def state_dir() -> Path:
    """The fixed workdir of the detached control plane that the CLI manages."""
    base = os.environ.get("XDG_STATE_HOME") or str(Path.home() / ".local" / "state")
    return Path(base) / "torchyard" / "local"


def free_ports(count: int) -> list[int]:
    # Hold all sockets open together so that the kernel hands out distinct ports. A port
    # can still be taken between close() and the component's bind; on loopback in a test
    # run that race is rare enough to accept.
    socks = [socket.socket(socket.AF_INET, socket.SOCK_STREAM) for _ in range(count)]
    try:
        for s in socks:
            s.bind(("127.0.0.1", 0))
        return [s.getsockname()[1] for s in socks]
    finally:
        for s in socks:
            s.close()


def write_private(path: Path, data: bytes) -> Path:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(data)
    return path


def http_ok(url: str, context: ssl.SSLContext | None = None) -> bool:
    try:
        with urllib.request.urlopen(url, context=context, timeout=2) as resp:
            return bool(resp.status == 200)
    except (urllib.error.URLError, OSError):
        # Refused while the component starts, 500 while its post-start hooks run.
        return False


# Control planes of this process that are still running; the atexit hook stops them
# when a test run crashes or forgets to.
_RUNNING: set[ControlPlane] = set()
_RUNNING_LOCK = threading.Lock()


@atexit.register
def _stop_leftovers() -> None:
    with _RUNNING_LOCK:
        leftovers = list(_RUNNING)
    for cp in leftovers:
        with contextlib.suppress(Exception):
            cp.stop()


class ControlPlane:
    """A local control plane; use as a context manager or call start() and stop()."""

    def __init__(
        self,
        workdir: Path | None = None,
        controllers: bool = True,
        *,
        binaries: Binaries | None = None,
        start_timeout: float = 120.0,
        stop_grace: float = 10.0,
        apiserver_args: Sequence[str] = (),
        address: str = "127.0.0.1",
    ) -> None:
        self.controllers = controllers
        # Where the API server listens and what it advertises: loopback, or for the
        # container node the node address that pods route to.
        self.address = address
        self.apiserver_args = tuple(apiserver_args)
        self.start_timeout = start_timeout
        self.stop_grace = stop_grace
        self.timings: dict[str, float] = {}
        self._requested_workdir = workdir
        self._binaries = binaries
        self._workdir: Path | None = None
        self._owns_workdir = False
        self._children: list[Child] = []
        self._ca: pki.CertKey | None = None
        self._ports: dict[str, int] = {}

    # -- attributes ------------------------------------------------------------------

    @property
    def workdir(self) -> Path:
        if self._workdir is None:
            raise ControlPlaneError("the control plane has not been started")
        return self._workdir

    @property
    def binaries(self) -> Binaries:
        if self._binaries is None:
            raise ControlPlaneError("the control plane has not been started")
        return self._binaries

    @property
    def kubeconfig(self) -> Path:
        """The admin kubeconfig (group system:masters)."""
        return self.workdir / "admin.kubeconfig"

    @property
    def server(self) -> str:
        return f"https://{self.address}:{self._ports['apiserver']}"

    @property
    def etcd_url(self) -> str:
        return f"https://127.0.0.1:{self._ports['etcd']}"

    @property
    def pids(self) -> dict[str, int]:
        return {c.name: c.pid for c in self._children}

    # -- lifecycle -------------------------------------------------------------------

    def __enter__(self) -> ControlPlane:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def start(self, detach: bool = False) -> ControlPlane:
        """Start every component and wait until the cluster serves requests.

        With detach=True the components outlive this Python process: state.json in the
        workdir (by default state_dir()) records them for stop_detached().
        """
        if self._children:
            raise ControlPlaneError("the control plane is already running")
        began = time.monotonic()
        if self._binaries is None:
            self._binaries = ensure_binaries()
        self.timings["binaries"] = time.monotonic() - began
        self._prepare_workdir(detach)
        if not detach:
            with _RUNNING_LOCK:
                _RUNNING.add(self)
        try:
            for attempt in range(1, _START_ATTEMPTS + 1):
                try:
                    self._start_components()
                    break
                except ControlPlaneError as error:
                    # Another process may take a port between free_ports() and the
                    # component's bind (parallel test sessions do); pick new ports.
                    if not error.port_in_use or attempt == _START_ATTEMPTS:
                        raise
                    self._stop_children()
                    self._clean_workdir()
            if detach:
                self._write_state()
        except BaseException:
            self.stop()
            raise
        self.timings["start"] = time.monotonic() - began
        if detach:
            # Nothing of ours may stop them now, not even the atexit hook.
            self._forget()
        return self

    def stop(self) -> None:
        """Stop every component (SIGTERM, then SIGKILL) and remove a temporary workdir."""
        self._stop_children()
        if self._owns_workdir and self._workdir is not None:
            shutil.rmtree(self._workdir, ignore_errors=True)
        with _RUNNING_LOCK:
            _RUNNING.discard(self)

    def _stop_children(self) -> None:
        children = list(reversed(self._children))
        # Clients of the API server first, the API server next, etcd last: stopping them
        # together would have the API server and the controllers log storms of errors
        # and could leave the API server waiting on an etcd that is gone.
        for stage in (
            [c for c in children if c.name in ("kube-scheduler", "kube-controller-manager")],
            [c for c in children if c.name == "kube-apiserver"],
            [c for c in children if c.name == "etcd"],
        ):
            processes.stop(stage, self.stop_grace)
        self._children = []

    @classmethod
    def attach(cls, workdir: Path | None = None) -> ControlPlane | None:
        """A handle on the detached control plane recorded in `workdir` (for kubectl),
        or None if none is recorded."""
        workdir = workdir or state_dir()
        try:
            state = json.loads((workdir / STATE_FILE).read_text())
        except FileNotFoundError:
            return None
        cp = cls(workdir, address=urllib.parse.urlsplit(state["server"]).hostname or "")
        cp._workdir = workdir
        cp._ports = dict(state["ports"])
        try:
            cp._binaries = Binaries(**{k: Path(v) for k, v in state["binaries"].items()})
        except TypeError:  # recorded by an older torchyard
            cp._binaries = ensure_binaries()
        return cp

    @staticmethod
    def stop_detached(workdir: Path | None = None, grace: float = 10.0) -> bool:
        """Stop the detached control plane recorded in `workdir`; False if none was."""
        workdir = workdir or state_dir()
        state_path = workdir / STATE_FILE
        try:
            state = json.loads(state_path.read_text())
        except FileNotFoundError:
            return False
        cp = ControlPlane(workdir, stop_grace=grace)
        cp._workdir = workdir
        cp._children = [
            Child(name=c["name"], pid=c["pid"], exe=c["exe"], log=Path(c["log"]))
            for c in state["children"]
        ]
        cp.stop()
        state_path.unlink(missing_ok=True)
        return True

    # -- clients ---------------------------------------------------------------------

    def kubectl(
        self,
        *args: str,
        kubeconfig: Path | None = None,
        input: str | None = None,
        check: bool = True,
        timeout: float = 120.0,
    ) -> subprocess.CompletedProcess[str]:
        """Run the pinned kubectl as admin (or as the owner of `kubeconfig`)."""
        cmd = [str(self.binaries.kubectl), f"--kubeconfig={kubeconfig or self.kubeconfig}", *args]
        result = subprocess.run(
            cmd, input=input, capture_output=True, text=True, timeout=timeout, check=False
        )
        if check and result.returncode != 0:
            raise KubectlError(result.returncode, cmd, result.stdout, result.stderr)
        return result

    def user_kubeconfig(self, user: str, groups: Sequence[str] = ()) -> Path:
        """A kubeconfig that authenticates as `user` in `groups` with a client certificate."""
        if self._ca is None:
            raise ControlPlaneError("the control plane has not been started")
        config = kubeconfig.render(
            self.server, self._ca.cert_pem, user, client=pki.client_cert(self._ca, user, groups)
        )
        path = self.workdir / "kubeconfigs" / f"user-{kubeconfig.safe_name(user)}.kubeconfig"
        return kubeconfig.write(path, config)

    def token_kubeconfig(self, name: str, token: str) -> Path:
        """A kubeconfig that authenticates with a bearer token."""
        config = kubeconfig.render(self.server, self._ca_pem(), name, token=token)
        path = self.workdir / "kubeconfigs" / f"token-{kubeconfig.safe_name(name)}.kubeconfig"
        return kubeconfig.write(path, config)

    def service_account_kubeconfig(
        self, namespace: str, name: str, duration_seconds: int = 3600
    ) -> Path:
        """A kubeconfig for a ServiceAccount, with a token from the TokenRequest API.

        The API server refuses durations under 600 seconds.
        """
        token = self.kubectl(
            "create", "token", name, "-n", namespace, f"--duration={duration_seconds}s"
        ).stdout.strip()
        return self.token_kubeconfig(f"{namespace}.{name}", token)

    # -- internals -------------------------------------------------------------------

    def _ca_pem(self) -> bytes:
        return (self.workdir / "pki" / "ca.crt").read_bytes()

    def _forget(self) -> None:
        self._children = []
        with _RUNNING_LOCK:
            _RUNNING.discard(self)

    def _prepare_workdir(self, detach: bool) -> None:
        workdir = self._requested_workdir or (state_dir() if detach else None)
        if workdir is None:
            self._workdir = Path(tempfile.mkdtemp(prefix="torchyard-cp-"))
            self._owns_workdir = True
            return
        if (workdir / STATE_FILE).exists():
            # A detached control plane recorded here: refuse to run a second one on top,
            # but clean up after one that died without stop_detached().
            state = json.loads((workdir / STATE_FILE).read_text())
            if any(
                Child(c["name"], c["pid"], c["exe"], Path(c["log"])).is_ours()
                for c in state["children"]
            ):
                raise ControlPlaneError(
                    f"a detached control plane is already running in {workdir}; stop it first"
                )
            (workdir / STATE_FILE).unlink()
        workdir.mkdir(parents=True, exist_ok=True)
        self._workdir = workdir
        self._clean_workdir()

    def _clean_workdir(self) -> None:
        # A fresh CA means old etcd data (tokens, secrets) would be stale: start empty.
        for stale in ("etcd", "pki", "kubeconfigs"):
            shutil.rmtree(self.workdir / stale, ignore_errors=True)
        for log in self.workdir.glob("*.log"):
            log.unlink()

    def _write_pki(self) -> None:
        d = self.workdir / "pki"
        d.mkdir(mode=0o700, exist_ok=True)
        ca = self._ca = pki.new_ca()
        (d / "ca.crt").write_bytes(ca.cert_pem)
        write_private(d / "ca.key", ca.key_pem)
        for name, pair in (
            ("apiserver", pki.apiserver_serving_cert(ca, self.address)),
            ("admin", pki.admin_cert(ca)),
            ("apiserver-kubelet-client", pki.apiserver_kubelet_client_cert(ca)),
        ):
            (d / f"{name}.crt").write_bytes(pair.cert_pem)
            write_private(d / f"{name}.key", pair.key_pem)
        # etcd's CA signs etcd's certificate and the API server's towards it, nothing
        # else; its key is not kept.
        etcd_ca = pki.new_ca("torchyard-local-etcd-ca")
        (d / "etcd-ca.crt").write_bytes(etcd_ca.cert_pem)
        for name, pair in (
            ("etcd", pki.etcd_member_cert(etcd_ca)),
            ("apiserver-etcd-client", pki.etcd_client_cert(etcd_ca)),
        ):
            (d / f"{name}.crt").write_bytes(pair.cert_pem)
            write_private(d / f"{name}.key", pair.key_pem)
        sa_private, sa_public = pki.service_account_key_pair()
        write_private(d / "sa.key", sa_private)
        (d / "sa.pub").write_bytes(sa_public)
        kubeconfig.write(
            self.kubeconfig,
            kubeconfig.render(self.server, ca.cert_pem, "admin", client=pki.admin_cert(ca)),
        )

    def _spawn(self, name: str, *args: str) -> Child:
        exe = getattr(self.binaries, name.replace("-", "_"))
        child = processes.spawn(name, [str(exe), *args], self.workdir / f"{name}.log")
        self._children.append(child)
        return child

    def _wait(self, what: str, ready: Callable[[], bool], watch: Sequence[Child]) -> None:
        deadline = time.monotonic() + self.start_timeout
        delay = 0.05
        while True:
            for child in self._children:
                code = child.returncode()
                if code is not None:
                    tail = processes.log_tail(child.log)
                    raise ControlPlaneError(
                        f"{child.name} exited with status {code} while waiting for {what}. "
                        f"Last lines of {child.log}:\n{tail}",
                        port_in_use="address already in use" in tail,
                    )
            if ready():
                return
            if time.monotonic() >= deadline:
                tails = "\n".join(f"--- {c.log}:\n{processes.log_tail(c.log)}" for c in watch)
                raise ControlPlaneError(
                    f"timed out after {self.start_timeout:.0f}s waiting for {what}.\n{tails}"
                )
            time.sleep(delay)
            delay = min(delay * 1.5, 0.5)

    def _start_components(self) -> None:
        names = ("etcd", "apiserver", "controller-manager", "scheduler")
        self._ports = dict(zip(names, free_ports(len(names)), strict=True))
        self._write_pki()
        pki_dir = self.workdir / "pki"
        t0 = time.monotonic()

        etcd_url = self.etcd_url
        tls = [f"--cert-file={pki_dir / 'etcd.crt'}", f"--key-file={pki_dir / 'etcd.key'}"]
        etcd = self._spawn(
            "etcd",
            f"--data-dir={self.workdir / 'etcd'}",
            f"--listen-client-urls={etcd_url}",
            f"--advertise-client-urls={etcd_url}",
            *tls,
            "--client-cert-auth",
            f"--trusted-ca-file={pki_dir / 'etcd-ca.crt'}",
            # Port 0: etcd must listen for peers, but a single member has none.
            "--listen-peer-urls=https://127.0.0.1:0",
            *(f"--peer-{flag[2:]}" for flag in tls),
            "--peer-client-cert-auth",
            f"--peer-trusted-ca-file={pki_dir / 'etcd-ca.crt'}",
            # A throwaway cluster needs no durability; fsync dominates etcd's latency.
            "--unsafe-no-fsync",
        )
        etcd_tls = ssl.create_default_context(cafile=str(pki_dir / "etcd-ca.crt"))
        etcd_tls.load_cert_chain(
            pki_dir / "apiserver-etcd-client.crt", pki_dir / "apiserver-etcd-client.key"
        )
        self._wait("etcd /health", lambda: http_ok(f"{etcd_url}/health", etcd_tls), [etcd])
        self.timings["etcd"] = time.monotonic() - t0

        apiserver = self._spawn(
            "kube-apiserver",
            f"--etcd-servers={etcd_url}",
            f"--etcd-cafile={pki_dir / 'etcd-ca.crt'}",
            f"--etcd-certfile={pki_dir / 'apiserver-etcd-client.crt'}",
            f"--etcd-keyfile={pki_dir / 'apiserver-etcd-client.key'}",
            f"--bind-address={self.address}",
            # Without it the API server looks for a host interface with a default route,
            # and fails to start in sandboxes that have none.
            f"--advertise-address={self.address}",
            *self._endpoint_reconciler(),
            f"--secure-port={self._ports['apiserver']}",
            f"--cert-dir={self.workdir / 'apiserver-certs'}",
            f"--tls-cert-file={pki_dir / 'apiserver.crt'}",
            f"--tls-private-key-file={pki_dir / 'apiserver.key'}",
            f"--client-ca-file={pki_dir / 'ca.crt'}",
            # Node for the node agent to come, RBAC for everyone else. PodSecurity and
            # ServiceAccount admission stay at their defaults (on).
            "--authorization-mode=Node,RBAC",
            # As OpenShift does: setting blockOwnerDeletion on a child needs update on
            # the owner's finalizers, so the operator's RBAC is tested for it.
            "--enable-admission-plugins=OwnerReferencesPermissionEnforcement",
            f"--service-account-issuer={self.server}",
            f"--service-account-key-file={pki_dir / 'sa.pub'}",
            f"--service-account-signing-key-file={pki_dir / 'sa.key'}",
            f"--service-cluster-ip-range={pki.SERVICE_CLUSTER_IP_RANGE}",
            "--allow-privileged=true",
            # Towards kubelets (logs, exec): dial the node's InternalIP, check the
            # kubelet's certificate against the cluster CA, present our own.
            "--kubelet-preferred-address-types=InternalIP",
            f"--kubelet-certificate-authority={pki_dir / 'ca.crt'}",
            f"--kubelet-client-certificate={pki_dir / 'apiserver-kubelet-client.crt'}",
            f"--kubelet-client-key={pki_dir / 'apiserver-kubelet-client.key'}",
            *self.apiserver_args,
        )
        admin_tls = ssl.create_default_context(cafile=str(pki_dir / "ca.crt"))
        admin_tls.load_cert_chain(pki_dir / "admin.crt", pki_dir / "admin.key")
        self._wait(
            "kube-apiserver /readyz",
            lambda: http_ok(f"{self.server}/readyz", admin_tls),
            [apiserver, etcd],
        )
        self.timings["apiserver"] = time.monotonic() - t0
        if self.controllers:
            self._start_controllers(admin_tls)
            self.timings["controllers"] = time.monotonic() - t0

    def _endpoint_reconciler(self) -> list[str]:
        if self.address.startswith("127."):
            # The `kubernetes` Service's endpoints may not be loopback addresses, so the
            # reconciler would log a validation error every few seconds; in-cluster
            # clients of a loopback cluster are told 127.0.0.1 directly.
            return ["--endpoint-reconciler-type=none"]
        return []  # the default (lease) publishes the address pods route to

    def _start_controllers(self, admin_tls: ssl.SSLContext) -> None:
        assert self._ca is not None
        pki_dir = self.workdir / "pki"
        configs = {}
        for name, cert in (
            ("kube-controller-manager", pki.controller_manager_cert(self._ca)),
            ("kube-scheduler", pki.scheduler_cert(self._ca)),
        ):
            path = self.workdir / "kubeconfigs" / f"{name}.kubeconfig"
            configs[name] = kubeconfig.write(
                path, kubeconfig.render(self.server, self._ca.cert_pem, name, client=cert)
            )

        kcm_port, sched_port = self._ports["controller-manager"], self._ports["scheduler"]
        kcm = self._spawn(
            "kube-controller-manager",
            f"--kubeconfig={configs['kube-controller-manager']}",
            "--bind-address=127.0.0.1",
            f"--secure-port={kcm_port}",
            f"--cert-dir={self.workdir / 'controller-manager-certs'}",
            # Signs service-account tokens for legacy token Secrets, and publishes the
            # CA as kube-root-ca.crt in every namespace for pods to trust.
            f"--service-account-private-key-file={pki_dir / 'sa.key'}",
            f"--root-ca-file={pki_dir / 'ca.crt'}",
            # Each controller acts under its own ServiceAccount and RBAC role, as in
            # a real cluster, instead of under the controller manager's identity.
            "--use-service-account-credentials",
            # Lets CertificateSigningRequests be signed, for a node agent to come.
            f"--cluster-signing-cert-file={pki_dir / 'ca.crt'}",
            f"--cluster-signing-key-file={pki_dir / 'ca.key'}",
            "--leader-elect=false",
        )
        sched = self._spawn(
            "kube-scheduler",
            f"--kubeconfig={configs['kube-scheduler']}",
            "--bind-address=127.0.0.1",
            f"--secure-port={sched_port}",
            f"--cert-dir={self.workdir / 'scheduler-certs'}",
            "--leader-elect=false",
        )
        # The components serve self-signed certificates, and /healthz needs no client.
        insecure = ssl.create_default_context()
        insecure.check_hostname = False
        insecure.verify_mode = ssl.CERT_NONE
        for child, port in ((kcm, kcm_port), (sched, sched_port)):
            self._wait(
                f"{child.name} /healthz",
                lambda port=port: http_ok(f"https://127.0.0.1:{port}/healthz", insecure),
                [child],
            )
        # Pods cannot be created in a namespace before its `default` ServiceAccount
        # exists (ServiceAccount admission), so wait for the controllers to make it.
        self._wait(
            "the default ServiceAccount",
            lambda: http_ok(
                f"{self.server}/api/v1/namespaces/default/serviceaccounts/default", admin_tls
            ),
            [kcm],
        )

    def _write_state(self) -> None:
        state = {
            "server": self.server,
            "kubeconfig": str(self.kubeconfig),
            "ports": self._ports,
            "binaries": {k: str(v) for k, v in vars(self.binaries).items()},
            "children": [
                {"name": c.name, "pid": c.pid, "exe": c.exe, "log": str(c.log)}
                for c in self._children
            ],
        }
        tmp = self.workdir / f"{STATE_FILE}.tmp"
        tmp.write_text(json.dumps(state, indent=2) + "\n")
        tmp.replace(self.workdir / STATE_FILE)


stop_detached = ControlPlane.stop_detached
