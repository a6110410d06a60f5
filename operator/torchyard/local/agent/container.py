"""One container of a pod through its whole life: start, probe, exit, restart or not.

`ContainerRunner.run()` loops as the kubelet's pod worker does for one container:
configure, start, watch the probes, wait for the exit, read the termination message,
decide by restartPolicy whether to start again and after what back-off. Everything it
observes goes into its `ContainerRecord`, from which status.py computes the status.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from torchyard.local.agent import policy, probes, status
from torchyard.local.agent.podspec import ConfigError
from torchyard.local.agent.runtime import ContainerProcess, Launch, StartError
from torchyard.local.agent.status import rfc3339
from torchyard.local.agent.volumes import VolumeError

log = logging.getLogger(__name__)
LOG_TAIL_BYTES = 64 * 1024


class PodContext(Protocol):
    """What a container needs from its pod (pod.PodWorker implements it)."""

    pod: dict[str, Any]
    pod_ip: str
    backoff: policy.BackOff

    def changed(self) -> None: ...

    def event(self, kind: str, reason: str, message: str) -> None: ...

    async def launch(self, spec: dict[str, Any], instance: int) -> Launch: ...

    def image_refusal(self, image: str) -> str | None: ...

    def deletion_grace(self) -> float: ...


@dataclass
class Instance:
    """Files of one run of the container on the node."""

    log: Path
    termination: Path


class ContainerRunner:
    def __init__(
        self,
        pod: PodContext,
        spec: dict[str, Any],
        init: bool,
        instance_files: Callable[[int], Instance],
    ) -> None:
        self.pod = pod
        self.spec = spec
        self.name: str = spec["name"]
        self.init = init
        self.record = status.ContainerRecord(
            name=self.name,
            image=spec.get("image", ""),
            state=status.waiting("PodInitializing" if not init else "ContainerCreating"),
        )
        self.process: ContainerProcess | None = None
        self.launch_spec: Launch | None = None
        self._files = instance_files
        self._backoff = 0.0
        self._stopping = asyncio.Event()
        self._probe_kill: str | None = None
        self._grace: Callable[[], float] = lambda: 0.0
        # asyncio keeps only weak references to tasks: hold the fire-and-forget ones.
        self._background: set[asyncio.Task[Any]] = set()
        self._started = False
        # Set once the container will not run again (exited for good, or stopped).
        self.finished = asyncio.Event()

    # -- restoring after an agent restart -------------------------------------------

    def restore(self, previous: dict[str, Any], restart_policy: str) -> None:
        """Carry over what the API says about an earlier agent's run of this container.

        A container that ran when the agent stopped cannot be found any more; like the
        kubelet after a node restart, it counts as terminated (ContainerStatusUnknown,
        137) and restarts as its policy says.
        """
        self.record.restart_count = int(previous.get("restartCount") or 0)
        state = previous.get("state") or {}
        ended = state.get("terminated")
        if "running" in state:
            ended = {
                "exitCode": 137,
                "reason": "ContainerStatusUnknown",
                "message": "The container could not be located when the pod was terminated",
                "startedAt": state["running"].get("startedAt"),
                "finishedAt": rfc3339(),
            }
        if ended is None:
            if previous.get("lastState"):
                self.record.last_state = previous["lastState"]
            return
        if policy.should_restart(restart_policy, int(ended.get("exitCode", 1)), self.init):
            self.record.last_state = {"terminated": ended}
            self.record.restart_count += 1
        else:
            self.record.state = {"terminated": ended}
            self.record.last_state = previous.get("lastState") or {}
            self.finished.set()

    # -- the loop -------------------------------------------------------------------

    async def run(self) -> None:
        self._started = True
        try:
            if not self.finished.is_set():
                await self._loop()
        finally:
            self.finished.set()
            self.pod.changed()

    async def _loop(self) -> None:
        restart_policy = self.pod.pod["spec"].get("restartPolicy") or "Always"
        refusal = self.pod.image_refusal(self.record.image)
        if refusal is not None:
            self._set(status.waiting("ErrImagePull", refusal))
            self.pod.event(
                "Warning", "Failed", f"Failed to pull image {self.record.image!r}: {refusal}"
            )
            await self._stopping.wait()
            return
        while not self._stopping.is_set():
            instance = self.record.restart_count
            try:
                launch = await self.pod.launch(self.spec, instance)
            except (ConfigError, VolumeError) as error:
                self._set(status.waiting("CreateContainerConfigError", str(error)))
                self.pod.event("Warning", "Failed", f"Error: {error}")
                await self._sleep(min(self.pod.backoff.initial, 10.0))
                continue
            began = time.time()
            try:
                process = await ContainerProcess.start(launch)
            except StartError as error:
                code, exited = 128, time.time()
                self.record.container_id = ""
                ended = status.terminated(
                    128, rfc3339(0), rfc3339(exited), str(error), reason="StartError"
                )
                self.pod.event("Warning", "Failed", f"Error: failed to start container: {error}")
            else:
                code, ended = await self._run_instance(process, launch)
                exited = time.time()
            self.record.ready = False
            self.record.started = False
            self._set(ended)
            if self._stopping.is_set():
                return
            if self._probe_kill is None and not policy.should_restart(
                restart_policy, code, self.init
            ):
                return
            if self._probe_kill is not None and restart_policy == "Never":
                return
            self._probe_kill = None
            wait, self._backoff = self.pod.backoff.next(self._backoff, exited - began)
            if wait > 0:
                meta = self.pod.pod["metadata"]
                message = policy.crash_loop_message(
                    wait, self.name, meta["name"], meta["namespace"], meta["uid"]
                )
                self.record.last_state = ended
                self._set(status.waiting("CrashLoopBackOff", message))
                self.pod.event("Warning", "BackOff", "Back-off restarting failed container")
                await self._sleep(wait)
                if self._stopping.is_set():
                    return
            self.record.last_state = ended
            self.record.restart_count += 1

    async def _run_instance(
        self, process: ContainerProcess, launch: Launch
    ) -> tuple[int, dict[str, Any]]:
        self.process = process
        self.launch_spec = launch
        if self._stopping.is_set():
            # stop() came while the process was starting and saw no process to stop.
            self._spawn(process.stop(self._grace))
        cid = f"torchyard://{process.id}"
        self.record.container_id = cid
        started = rfc3339(process.started)
        self.record.state = {"running": {"startedAt": started}}
        has_startup = bool(self.spec.get("startupProbe")) and not self.init
        self.record.started = not has_startup
        self.record.ready = self.record.started and not (
            self.spec.get("readinessProbe") and not self.init
        )
        self.pod.changed()
        self.pod.event("Normal", "Started", f"Started container {self.name}")
        prober = None if self.init else asyncio.create_task(self._probe(process))
        returncode = await process.wait()
        # Whatever the main process left behind in the container goes with it, as
        # when a container's init process exits.
        await process.kill()
        if prober is not None:
            prober.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await prober
        code, _ = status.exit_code_of(returncode)
        message = self._termination_message(code)
        ended = status.terminated(code, started, rfc3339(), message, container_id=cid)
        self.process = None
        return code, ended

    def _termination_message(self, code: int) -> str:
        files = self._files(self.record.restart_count)
        try:
            data = files.termination.read_bytes()
        except OSError:
            data = b""
        tail = b""
        if not data and code != 0:
            with contextlib.suppress(OSError), files.log.open("rb") as f:
                f.seek(0, 2)
                f.seek(max(0, f.tell() - LOG_TAIL_BYTES))
                tail = f.read()
        return status.termination_message(
            data, self.spec.get("terminationMessagePolicy"), code, tail
        )

    # -- probes ---------------------------------------------------------------------

    async def _probe(self, process: ContainerProcess) -> None:
        spec = self.spec
        startup = probes.parse_probe(spec.get("startupProbe"), spec)
        liveness = probes.parse_probe(spec.get("livenessProbe"), spec)
        readiness = probes.parse_probe(spec.get("readinessProbe"), spec)
        if startup is not None:
            if not await self._startup(startup, process):
                return
            self.record.started = True
            self.record.ready = readiness is None
            self.pod.changed()
        tasks = []
        if liveness is not None:
            tasks.append(asyncio.create_task(self._watch(liveness, "Liveness", process)))
        if readiness is not None:
            tasks.append(asyncio.create_task(self._watch(readiness, "Readiness", process)))
        try:
            if tasks:
                await asyncio.gather(*tasks)
        finally:
            for task in tasks:
                task.cancel()

    async def _check(self, probe: probes.Probe, process: ContainerProcess) -> probes.Outcome:
        if probe.kind == "http":
            return await probes.check_http(probe, self.pod.pod_ip or "127.0.0.1")
        if probe.kind == "tcp":
            return await probes.check_tcp(probe, self.pod.pod_ip or "127.0.0.1")
        if probe.kind == "exec" and self.launch_spec is not None:
            ident = self.launch_spec.identity
            return await probes.check_exec(
                probe, process.pid, ident.uid, ident.gid, self.launch_spec.cwd, self.launch_spec.env
            )
        return probes.Outcome(False, f"{probe.kind} probes are not supported by the node agent")

    async def _startup(self, probe: probes.Probe, process: ContainerProcess) -> bool:
        await asyncio.sleep(probe.initial_delay)
        failures = 0
        while True:
            outcome = await self._check(probe, process)
            if outcome.ok:
                return True
            failures += 1
            self.pod.event("Warning", "Unhealthy", f"Startup probe failed: {outcome.detail}")
            if failures >= probe.failure_threshold:
                await self._kill_for_probe("startup", probe, process)
                return False
            await asyncio.sleep(probe.period)

    async def _watch(self, probe: probes.Probe, kind: str, process: ContainerProcess) -> None:
        tracker = probes.ProbeTracker(probe, initial=kind == "Liveness")
        await asyncio.sleep(probe.initial_delay)
        while True:
            outcome = await self._check(probe, process)
            if not outcome.ok:
                self.pod.event("Warning", "Unhealthy", f"{kind} probe failed: {outcome.detail}")
            if tracker.record(outcome.ok):
                if kind == "Readiness":
                    self.record.ready = tracker.result
                    self.pod.changed()
                elif not tracker.result:
                    await self._kill_for_probe("liveness", probe, process)
                    return
            await asyncio.sleep(probe.period)

    async def _kill_for_probe(
        self, kind: str, probe: probes.Probe, process: ContainerProcess
    ) -> None:
        self._probe_kill = kind
        self.pod.event(
            "Normal",
            "Killing",
            f"Container {self.name} failed {kind} probe, will be restarted",
        )
        grace = probe.termination_grace
        if grace is None:
            grace = float(self.pod.pod["spec"].get("terminationGracePeriodSeconds", 30))
        # Not awaited here: stop() waits for the exit, which cancels this prober.
        self._spawn(process.stop(max(grace, 2.0)))

    # -- stopping -------------------------------------------------------------------

    async def stop(self, grace: Callable[[], float]) -> None:
        """Stop for good (pod deleted or finished): no restart after this."""
        self._grace = grace
        self._stopping.set()
        if not self._started:
            self.finished.set()
            return
        process = self.process
        if process is not None:
            self.pod.event("Normal", "Killing", f"Stopping container {self.name}")
            await process.stop(grace)
        await self.finished.wait()

    def _spawn(self, work: Coroutine[Any, Any, Any]) -> None:
        task = asyncio.get_running_loop().create_task(work)
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    async def _sleep(self, seconds: float) -> None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._stopping.wait(), timeout=seconds)

    def _set(self, state: dict[str, Any]) -> None:
        self.record.state = state
        self.pod.changed()
