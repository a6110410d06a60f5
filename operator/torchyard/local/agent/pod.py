"""One pod on the node, from binding to release (the kubelet's pod worker).

    set up: IP and network namespace, hosts files, volumes   (PodReadyToStartContainers)
    init containers, one after the other, each to success    (Initialized)
    app containers together, with probes and restarts        (Ready)
    until: all done for good, deleted, or activeDeadlineSeconds
    tear down: processes, namespace, veth, mounts            (phase Succeeded/Failed)
    release: once deleted, remove the object (grace 0) and the pod's files

Status goes to the API from one task per pod, whenever something changed.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from lightkube.core.exceptions import ApiError

from torchyard.local.agent import hosts, images, status
from torchyard.local.agent.container import ContainerRunner, Instance
from torchyard.local.agent.context import NodeContext
from torchyard.local.agent.kube import code
from torchyard.local.agent.launch import Sandbox, build_launch
from torchyard.local.agent.podspec import (
    REFUSED_REASON,
    ConfigError,
    MissingReference,
    PodFacts,
    privilege_refusals,
    refusal_message,
)
from torchyard.local.agent.runtime import Launch
from torchyard.local.agent.sandbox import PodSandbox, SandboxError
from torchyard.local.agent.volumes import (
    Volume,
    VolumeError,
    materialize,
    release,
    remove_pod_dir,
    unmount_under,
)

log = logging.getLogger(__name__)
MIN_GRACE = 2.0
DEFAULT_GRACE = 30.0


def pod_key(pod: dict[str, Any]) -> str:
    meta = pod["metadata"]
    return f"{meta['namespace']}_{meta['name']}_{meta['uid']}"


class PodWorker:
    def __init__(self, node: NodeContext, pod: dict[str, Any]) -> None:
        self.node = node
        self.pod = pod
        meta = pod["metadata"]
        self.uid: str = meta["uid"]
        self.namespace: str = meta["namespace"]
        self.name: str = meta["name"]
        self.dir = node.config.pods_dir / pod_key(pod)
        self.backoff = node.backoff
        self.pod_ip = ""
        self._ip_index = 0
        self._netns: str | None = None
        self._network = False
        self._namespaces: PodSandbox | None = None
        self._sandbox_ready = False
        self._start_time = ""
        self._terminal = False
        self._reason = ""
        self._message = ""
        self._gone = False
        self._shutting_down = False
        self._volumes: dict[str, Volume] = {}
        self._held: list[str] = []
        self._hosts_text = ""
        spec = pod["spec"]
        self.init = [self._runner(c, True) for c in spec.get("initContainers") or []]
        self.containers = [self._runner(c, False) for c in spec.get("containers") or []]
        if not self.init:
            for runner in self.containers:
                runner.record.state = status.waiting("ContainerCreating")
        self._restore()
        self._deleting = asyncio.Event()
        self._dirty = asyncio.Event()
        self._sent: dict[str, Any] | None = None
        self._status_task: asyncio.Task[None] | None = None
        self.done = asyncio.Event()
        self._note_deletion(pod)

    # -- the API side ---------------------------------------------------------------

    def update(self, pod: dict[str, Any] | None) -> None:
        """The latest object from the watch; None once it is gone from the API."""
        if pod is None:
            self._gone = True
            self._deleting.set()
            return
        if pod["metadata"]["uid"] != self.uid:
            return
        self.pod = pod
        self._note_deletion(pod)

    def _note_deletion(self, pod: dict[str, Any]) -> None:
        if pod["metadata"].get("deletionTimestamp"):
            self._deleting.set()

    def deletion_grace(self) -> float:
        meta = self.pod["metadata"]
        if meta.get("deletionGracePeriodSeconds") is not None:
            grace = float(meta["deletionGracePeriodSeconds"])
        else:
            grace = float(self.pod["spec"].get("terminationGracePeriodSeconds", DEFAULT_GRACE))
        # The kubelet's minimum: even a "now" gets SIGTERM and two seconds.
        return max(grace, MIN_GRACE)

    def changed(self) -> None:
        self._dirty.set()

    def event(self, kind: str, reason: str, message: str) -> None:
        self.node.events.emit(self.pod, kind, reason, message)

    def view(self) -> status.PodView:
        return status.PodView(
            init=[r.record for r in self.init],
            containers=[r.record for r in self.containers],
            sandbox_ready=self._sandbox_ready,
            pod_ip=self.pod_ip,
            host_ip=self.node.host_ip,
            start_time=self._start_time,
            terminal=self._terminal,
            reason=self._reason,
            message=self._message,
            image_id={
                r.record.image: f"torchyard-local://{r.record.image}"
                for r in (*self.init, *self.containers)
            },
        )

    async def _status_loop(self) -> None:
        while True:
            await self._dirty.wait()
            # Let the changes of one moment (several containers starting) go as one.
            await asyncio.sleep(0.02)
            self._dirty.clear()
            try:
                await self._send_status()
            except ApiError as error:
                if code(error) in (404, 409, 422):
                    return  # the pod is gone, or another pod now has its name
                log.warning("pod %s/%s: status update failed: %s", self.namespace, self.name, error)
                await asyncio.sleep(1)
                self._dirty.set()
            except (TimeoutError, OSError) as error:
                log.warning("pod %s/%s: status update failed: %s", self.namespace, self.name, error)
                await asyncio.sleep(1)
                self._dirty.set()

    async def _send_status(self) -> None:
        new = status.pod_status(self.pod, self.view(), status.rfc3339())
        if new == self._sent:
            return
        await self.node.api.patch_pod_status(self.namespace, self.name, self.uid, new)
        self._sent = new

    async def _flush_status(self) -> None:
        with contextlib.suppress(ApiError, OSError, asyncio.TimeoutError):
            await self._send_status()

    # -- the run --------------------------------------------------------------------

    async def run(self) -> None:
        self._status_task = asyncio.get_running_loop().create_task(self._status_loop())
        try:
            phase = (self.pod.get("status") or {}).get("phase")
            if phase not in ("Succeeded", "Failed"):
                await self._live()
            await self._deleting.wait()
            await self._teardown()
            if self._shutting_down:
                return  # keep the logs; a restarted agent carries on from them
            if not self._gone:
                await self.node.api.delete_pod_now(self.namespace, self.name, self.uid)
            remove_pod_dir(self.dir)
        finally:
            await self._teardown()
            if self._status_task is not None:
                self._status_task.cancel()
            self.done.set()

    async def _live(self) -> None:
        self._start_time = (self.pod.get("status") or {}).get("startTime") or status.rfc3339()
        self.changed()
        if self._refuse():
            return
        if not await self._until_deleted(self._setup()):
            return
        work = asyncio.ensure_future(self._run_containers())
        deleting = asyncio.ensure_future(self._deleting.wait())
        waiters: set[asyncio.Future[Any]] = {work, deleting}
        deadline = self.pod["spec"].get("activeDeadlineSeconds")
        timer = None
        if deadline is not None:
            left = float(deadline) - (time.time() - _epoch(self._start_time))
            timer = asyncio.ensure_future(asyncio.sleep(max(0.0, left)))
            waiters.add(timer)
        try:
            done, _ = await asyncio.wait(waiters, return_when=asyncio.FIRST_COMPLETED)
            if work not in done:
                if timer is not None and timer in done:
                    self._reason = "DeadlineExceeded"
                    self._message = "Pod was active on the node longer than the specified deadline"
                    self.event("Normal", "DeadlineExceeded", self._message)
                # Stop the containers and let their runners finish: they record how
                # each container ended, which a cancellation would lose.
                self._terminal = True
                await self._stop_all()
            await work
        finally:
            for waiter in (deleting, timer, work):
                if waiter is not None and not waiter.done():
                    waiter.cancel()
        self._terminal = True
        self.changed()
        await self._teardown()
        if not self._gone:
            await self._flush_status()

    async def _until_deleted(self, work: Any) -> bool:
        """Run `work` (no containers yet) unless deletion comes first; True if it finished."""
        task = asyncio.ensure_future(work)
        deleting = asyncio.ensure_future(self._deleting.wait())
        done, _ = await asyncio.wait({task, deleting}, return_when=asyncio.FIRST_COMPLETED)
        if task in done:
            deleting.cancel()
            task.result()
            return True
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        self._terminal = True
        return False

    async def _run_containers(self) -> None:
        for runner in self.init:
            if runner.finished.is_set():
                if (runner.record.terminated or {}).get("exitCode") != 0:
                    return
                continue
            await runner.run()
            if (runner.record.terminated or {}).get("exitCode") != 0:
                # Only restartPolicy Never lets an init container end failed.
                return
        for runner in self.containers:
            if runner.record.state.get("waiting", {}).get("reason") == "PodInitializing":
                runner.record.state = status.waiting("ContainerCreating")
        self.changed()
        await asyncio.gather(*(runner.run() for runner in self.containers))

    async def _stop_all(self) -> None:
        runners = [*self.init, *self.containers]
        await asyncio.gather(*(r.stop(self.deletion_grace) for r in runners))
        self.changed()

    # -- the sandbox ----------------------------------------------------------------

    def _refuse(self) -> bool:
        """Refuse, before anything is set up on the node, a pod that would reach the node
        itself, unless the agent allows such pods; True if refused (it never runs)."""
        if self.node.config.allow_privileged_pods:
            return False
        refusals = privilege_refusals(self.pod, self._image_config)
        if not refusals:
            return False
        message = refusal_message(refusals)
        for runner in (*self.init, *self.containers):
            runner.record.state = status.waiting(REFUSED_REASON, message)
        self.event("Warning", REFUSED_REASON, message)
        self.changed()
        return True

    def _image_config(self, image: str) -> images.ImageConfig | None:
        if self.image_refusal(image) is not None:
            return None
        return images.local_image_config(image, self.node.bin_dir)

    async def _setup(self) -> None:
        self.dir.mkdir(parents=True, exist_ok=True)
        self.dir.chmod(0o700)
        spec = self.pod["spec"]
        if spec.get("hostNetwork"):
            self.pod_ip = self.node.host_ip
        else:
            self.pod_ip = self.node.allocator.allocate(self.uid)
            self._ip_index = self.node.allocator.index(self.pod_ip)
            # Set first: a deletion may cancel us half-way, and teardown must still look.
            self._network = True
            self._netns = await self.node.network.create_pod_network(
                self.uid, self.pod_ip, self._ip_index
            )
        await self._start_namespaces()
        self._write_etc()
        self.changed()
        delay = 1.0
        while True:
            try:
                self._volumes = await materialize(
                    self.node.api,
                    self.pod,
                    self.dir,
                    self._facts(),
                    self._volumes,
                    claims_root=self.node.config.pvc_dir,
                )
                break
            except Exception as error:
                # Not there yet (a claim being bound, a ConfigMap created later, the
                # Node authorizer not yet aware of the pod): retry, as the kubelet does.
                if not isinstance(error, VolumeError | MissingReference | ConfigError | ApiError):
                    log.exception("pod %s/%s: volume set-up failed", self.namespace, self.name)
                message = _describe(error)
                self.event("Warning", "FailedMount", f"MountVolume.SetUp failed: {message}")
                for runner in (*self.init, *self.containers):
                    runner.record.state = status.waiting("ContainerCreating", message)
                self.changed()
                await asyncio.sleep(delay)
                delay = min(delay * 2, 10.0)
        self._sandbox_ready = True
        if self.init:
            self.init[0].record.state = status.waiting("PodInitializing")
        self.changed()

    async def _start_namespaces(self) -> None:
        """The pod's PID and IPC namespaces (see sandbox.py), retried as volumes are."""
        spec = self.pod["spec"]
        delay = 1.0
        while True:
            try:
                self._namespaces = await PodSandbox.start(
                    self._netns,
                    new_pid=not spec.get("hostPID"),
                    new_ipc=not spec.get("hostIPC"),
                    log=self.dir / "pause.log",
                )
                return
            except (SandboxError, OSError) as error:
                message = f"failed to create the pod sandbox: {error}"
                self.event("Warning", "FailedCreatePodSandBox", message)
                for runner in (*self.init, *self.containers):
                    runner.record.state = status.waiting("ContainerCreating", message)
                self.changed()
                await asyncio.sleep(delay)
                delay = min(delay * 2, 10.0)

    def _facts(self) -> PodFacts:
        return PodFacts(self.pod_ip, self.node.host_ip, self.node.config.node_name)

    def _etc_dir(self) -> Path:
        return self.dir / "etc"

    def _write_etc(self) -> None:
        etc = self._etc_dir()
        etc.mkdir(exist_ok=True)
        (etc / "hostname").write_text(hosts.pod_hostname(self.pod) + "\n")
        (etc / "resolv.conf").write_text(hosts.render_resolv_conf(self.namespace))
        self.refresh_hosts()

    def refresh_hosts(self) -> None:
        """Rewrite /etc/hosts when Services or endpoints changed. In place: containers
        bind-mount the file, and a rename would leave them the old one."""
        etc = self._etc_dir()
        if not self.pod_ip or self.pod["spec"].get("hostNetwork") or not etc.is_dir():
            return
        text = hosts.render_hosts(
            self.pod, self.pod_ip, self.node.cluster.hosts_entries(self.namespace)
        )
        if text == self._hosts_text:
            return
        path = etc / "hosts"
        with path.open("r+" if path.exists() else "w") as f:
            f.write(text)
            f.truncate()
        self._hosts_text = text

    def _etc_files(self) -> dict[str, str]:
        if self.pod["spec"].get("hostNetwork"):
            return {}
        etc = self._etc_dir()
        return {
            "/etc/hosts": str(etc / "hosts"),
            "/etc/hostname": str(etc / "hostname"),
            "/etc/resolv.conf": str(etc / "resolv.conf"),
        }

    async def _teardown(self) -> None:
        """Stop everything of the pod on the node; keep its logs. Idempotent."""
        if self._namespaces is not None:
            namespaces, self._namespaces = self._namespaces, None
            survivors = await namespaces.stop()
            if survivors:
                log.warning("pod %s/%s: processes %s survive", self.namespace, self.name, survivors)
        if self._network:
            await self.node.network.delete_pod_network(self.uid, self._ip_index)
            self._network = False
            self._netns = None
            self.node.allocator.release(self.pod_ip)
        if self._held:
            self.node.mount_points.release(self._held)
            self._held = []
        release(self._volumes)
        self._volumes = {}
        unmount_under(self.dir)
        self._sandbox_ready = False

    async def shutdown(self, grace: float) -> None:
        """The agent stops: stop the containers, tear down, leave the API object."""
        self._gone = True
        self._shutting_down = True
        if self._status_task is not None:
            # Like a kubelet that stops, report nothing more: after a restart the
            # agent finds these pods and applies their restartPolicy.
            self._status_task.cancel()
        limit = min(grace, self.deletion_grace())
        await asyncio.gather(*(r.stop(lambda: limit) for r in (*self.init, *self.containers)))
        self._deleting.set()
        await self.done.wait()

    # -- what containers need -------------------------------------------------------

    def _runner(self, spec: dict[str, Any], init: bool) -> ContainerRunner:
        return ContainerRunner(
            self, spec, init, lambda instance: self._runner_files(spec["name"], instance)
        )

    def _restore(self) -> None:
        previous = self.pod.get("status") or {}
        restart_policy = self.pod["spec"].get("restartPolicy") or "Always"
        for runners, key in (
            (self.init, "initContainerStatuses"),
            (self.containers, "containerStatuses"),
        ):
            by_name = {s["name"]: s for s in previous.get(key) or []}
            for runner in runners:
                if runner.name in by_name:
                    runner.restore(by_name[runner.name], restart_policy)

    def image_refusal(self, image: str) -> str | None:
        patterns = self.node.config.images
        if images.accepted(image, patterns):
            return None
        return images.refusal_message(image, patterns)

    async def launch(self, spec: dict[str, Any], instance: int) -> Launch:
        """Everything to start one instance of a container; raises ConfigError."""
        sandbox = Sandbox(
            self.pod,
            self._facts(),
            self._netns,
            self._namespaces,
            self._volumes,
            self._etc_files(),
        )
        launch, held = await build_launch(
            self.node, sandbox, spec, self._runner_files(spec["name"], instance)
        )
        self._held += held
        return launch

    def _runner_files(self, name: str, instance: int) -> Instance:
        base = self.dir / "containers" / name
        return Instance(log=base / f"{instance}.log", termination=base / f"{instance}.termination")


def _epoch(stamp: str) -> float:
    try:
        return datetime.strptime(stamp, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC).timestamp()
    except ValueError:
        return time.time()


def _describe(error: Exception) -> str:
    if isinstance(error, ApiError):
        return f"{code(error)}: {getattr(error.status, 'message', error)}"
    return str(error)
