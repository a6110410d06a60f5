"""The node agent: joins the cluster as a node and runs the pods bound to it.

start:  clean up after a crashed run, create the bridge, register the Node
run:    watch pods bound to the node (one PodWorker each), Services and
        EndpointSlices (hosts files, proxy), claims (provisioner); renew the Lease
stop:   stop every pod (grace capped by shutdown_grace), remove namespaces, veths,
        mounts, the bridge; mark the Node NotReady
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import shutil
from typing import Any

from torchyard.local.agent import images, mounts
from torchyard.local.agent.cluster import Cluster
from torchyard.local.agent.config import AgentConfig, is_root
from torchyard.local.agent.context import NodeContext
from torchyard.local.agent.events import Recorder
from torchyard.local.agent.informer import Informer
from torchyard.local.agent.kube import Api, client
from torchyard.local.agent.mounts import MountPoints
from torchyard.local.agent.network import Allocator, Network, Subnet
from torchyard.local.agent.node import NodeHeart, capacity, host_facts
from torchyard.local.agent.pod import PodWorker
from torchyard.local.agent.policy import BackOff
from torchyard.local.agent.provisioner import Provisioner
from torchyard.local.agent.proxy import ServiceProxy
from torchyard.local.agent.volumes import remove_pod_dir, unmount_under

log = logging.getLogger(__name__)
TERMINAL = ("Succeeded", "Failed")
# Pods that went through the agent and are only waiting for finalizers: ignored.
_FORGET_AFTER = 4096


class AgentError(RuntimeError):
    pass


def preflight() -> None:
    if not is_root():
        raise AgentError(
            "the node agent needs root: it creates network namespaces, veths and mounts "
            "(run it with sudo, or as root in CI)"
        )
    for tool in ("ip", "nsenter"):
        if shutil.which(tool) is None:
            raise AgentError(f"the node agent needs `{tool}` (iproute2, util-linux) on PATH")


class Agent:
    def __init__(self, config: AgentConfig) -> None:
        self.config = config
        subnet = Subnet(config.pod_cidr)
        self.network = Network(config.bridge, subnet, config.prefix, config.service_cidr)
        self.workers: dict[str, PodWorker] = {}
        self._finished: dict[str, None] = {}
        self._tasks: list[asyncio.Task[Any]] = []
        self._pod_tasks: dict[str, asyncio.Task[None]] = {}
        self.ready = asyncio.Event()

    async def run(self, stop: asyncio.Event) -> None:
        preflight()
        config = self.config
        config.state_dir.mkdir(parents=True, exist_ok=True)
        config.pods_dir.mkdir(parents=True, exist_ok=True)
        node_api = Api(client(config.kubeconfig))
        infra_api = Api(client(config.infra_kubeconfig))
        mount_points = MountPoints()
        facts = host_facts(config)
        host_ip = self.network.subnet.gateway
        heart = NodeHeart(node_api, config, facts, host_ip)
        cluster = Cluster(infra_api, self._cluster_changed)
        proxy = ServiceProxy(self.network, cluster)
        self.context = NodeContext(
            config=config,
            api=node_api,
            network=self.network,
            allocator=Allocator(self.network.subnet),
            mount_points=mount_points,
            cluster=cluster,
            events=Recorder(config.node_name, node_api.event),
            host_ip=host_ip,
            capacity=capacity(config, facts),
            backoff=BackOff(config.backoff_initial, config.backoff_max),
            python_paths=mounts.python_paths(),
            bin_dir=images.python_bin(),
        )
        self._proxy = proxy
        try:
            # A crashed run leaves namespaces, veths and mount points: remove them.
            unmount_under(config.pods_dir)
            mount_points.cleanup_recorded()
            await self.network.setup()
            await proxy.setup()
            await heart.register()
            pods = Informer(
                node_api,
                "Pod",
                self._pod_event,
                fields={"spec.nodeName": config.node_name},
                resync=30.0,
            )
            provisioner = Provisioner(
                infra_api,
                config.pvc_dir,
                config.node_name,
                config.storage_class,
                config.provisioner,
            )
            loop = asyncio.get_running_loop()
            self._tasks = [
                loop.create_task(heart.beat(), name="heartbeat"),
                loop.create_task(cluster.run(), name="services"),
                loop.create_task(provisioner.run(), name="provisioner"),
                loop.create_task(pods.run(), name="pods"),
            ]
            await pods.synced.wait()
            self._remove_orphans(set(pods.objects))
            self.ready.set()
            log.info("node %s ready (pods on %s)", config.node_name, config.pod_cidr)
            watcher = loop.create_task(self._watch_tasks())
            await stop.wait()
            watcher.cancel()
        finally:
            await self._shutdown(heart)
            await node_api.close()
            await infra_api.close()

    async def _watch_tasks(self) -> None:
        done, _ = await asyncio.wait(self._tasks, return_when=asyncio.FIRST_EXCEPTION)
        for task in done:
            if not task.cancelled() and task.exception() is not None:
                log.error("agent task %s failed: %s", task.get_name(), task.exception())

    async def _shutdown(self, heart: NodeHeart) -> None:
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        workers = list(self.workers.values())
        if workers:
            log.info("stopping %d pods", len(workers))
            await asyncio.gather(
                *(w.shutdown(self.config.shutdown_grace) for w in workers), return_exceptions=True
            )
        with contextlib.suppress(Exception):
            await self.context.events.drain()
        with contextlib.suppress(Exception):
            await heart.stopped()
        await self._proxy.close()
        await self.network.cleanup()
        self.context.mount_points.cleanup_recorded()
        unmount_under(self.config.pods_dir)
        log.info("node agent stopped; nothing left running")

    # -- pods -----------------------------------------------------------------------

    def _remove_orphans(self, uids: set[str]) -> None:
        """Remove the directories (logs, volumes) of pods the API no longer has, as the
        kubelet cleans up orphaned pods: a `local up` starts with an empty cluster."""
        for path in self.config.pods_dir.iterdir():
            uid = path.name.rsplit("_", 1)[-1]
            if uid not in uids:
                remove_pod_dir(path)

    def _pod_event(
        self, event: str, old: dict[str, Any] | None, new: dict[str, Any] | None
    ) -> None:
        pod = new or old
        assert pod is not None
        uid = pod["metadata"]["uid"]
        worker = self.workers.get(uid)
        if worker is not None:
            worker.update(new)
            return
        if new is None or uid in self._finished:
            return
        terminal = (new.get("status") or {}).get("phase") in TERMINAL
        if terminal and not new["metadata"].get("deletionTimestamp"):
            return  # nothing runs; a worker comes if it gets deleted
        worker = PodWorker(self.context, new)
        self.workers[uid] = worker
        task = asyncio.get_running_loop().create_task(worker.run(), name=f"pod {uid}")
        self._pod_tasks[uid] = task
        task.add_done_callback(lambda t, uid=uid: self._worker_done(uid, t))

    def _worker_done(self, uid: str, task: asyncio.Task[None]) -> None:
        self.workers.pop(uid, None)
        self._pod_tasks.pop(uid, None)
        self._finished[uid] = None
        while len(self._finished) > _FORGET_AFTER:
            self._finished.pop(next(iter(self._finished)))
        if not task.cancelled() and task.exception() is not None:
            log.error("pod worker %s failed", uid, exc_info=task.exception())

    def _cluster_changed(self) -> None:
        for worker in list(self.workers.values()):
            worker.refresh_hosts()
        self._proxy.sync()
