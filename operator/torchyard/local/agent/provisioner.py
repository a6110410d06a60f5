"""PersistentVolumes for claims: one local directory per claim, bound by the real binder.

The agent's StorageClass (default class, `torchyard.io/local-path`, made by the
launcher) names an external provisioner, so kube-controller-manager's PV controller
waits for one to create a volume. This is that provisioner, as Rancher's
local-path-provisioner does it: for each pending claim of the class (or of no class)
it creates a directory and a `local` PersistentVolume on it, pre-bound to the claim
through claimRef and pinned to this node; the PV controller then completes the binding
and the scheduler places the claim's pods. When a claim goes, its volume is Released
and, with reclaim policy Delete, the directory and the PersistentVolume go too.

`local`, not hostPath: a kubelet gives a local volume to the pod's fsGroup (it leaves
hostPath alone), so a restricted pod running as uid 65532 can write its claim on the
container node as on the node agent. The node agent runs it in-process; the container
node runs it beside its kubelet (`python -m torchyard.local.agent.provisioner`).
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import shutil
import signal
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from torchyard.local.agent.informer import Informer
from torchyard.local.agent.kube import Api, client

log = logging.getLogger(__name__)
PROVISIONED_BY = "pv.kubernetes.io/provisioned-by"
PROVISIONER = "torchyard.io/local-path"
STORAGE_CLASS = "torchyard-local"
DEFAULT_SIZE = "1Gi"


def volume_name(claim: dict[str, Any]) -> str:
    return f"pvc-{claim['metadata']['uid']}"


def claim_dir(root: Path, claim: dict[str, Any]) -> Path:
    meta = claim["metadata"]
    # The uid keeps a claim re-created under the same name away from the old data.
    return root / meta["namespace"] / f"{meta['name']}-{meta['uid'][:8]}"


def wants_volume(claim: dict[str, Any], storage_class: str, provisioner: str) -> bool:
    """A claim this provisioner should serve: pending, unbound, of our class or none."""
    spec = claim.get("spec") or {}
    meta = claim["metadata"]
    if spec.get("volumeName") or meta.get("deletionTimestamp"):
        return False
    if (claim.get("status") or {}).get("phase", "Pending") != "Pending":
        return False
    annotations = meta.get("annotations") or {}
    asked = annotations.get("volume.kubernetes.io/storage-provisioner") or annotations.get(
        "volume.beta.kubernetes.io/storage-provisioner"
    )
    if asked and asked != provisioner:
        return False
    if spec.get("selector") or spec.get("dataSource"):
        return False
    return spec.get("storageClassName") in (None, "", storage_class)


def volume_manifest(
    claim: dict[str, Any], path: Path, node: str, provisioner: str
) -> dict[str, Any]:
    """A local PersistentVolume on `path`, pre-bound to `claim` and pinned to `node`."""
    spec = claim.get("spec") or {}
    meta = claim["metadata"]
    size = ((spec.get("resources") or {}).get("requests") or {}).get("storage") or DEFAULT_SIZE
    return {
        "apiVersion": "v1",
        "kind": "PersistentVolume",
        "metadata": {
            "name": volume_name(claim),
            "labels": {"app.kubernetes.io/managed-by": "torchyard-agent"},
            "annotations": {PROVISIONED_BY: provisioner},
        },
        "spec": {
            "capacity": {"storage": size},
            "accessModes": spec.get("accessModes") or ["ReadWriteOnce"],
            "persistentVolumeReclaimPolicy": "Delete",
            "storageClassName": spec.get("storageClassName") or "",
            "volumeMode": spec.get("volumeMode") or "Filesystem",
            "local": {"path": str(path)},
            "claimRef": {
                "apiVersion": "v1",
                "kind": "PersistentVolumeClaim",
                "namespace": meta["namespace"],
                "name": meta["name"],
                "uid": meta["uid"],
            },
            "nodeAffinity": {
                "required": {
                    "nodeSelectorTerms": [
                        {
                            "matchExpressions": [
                                {
                                    "key": "kubernetes.io/hostname",
                                    "operator": "In",
                                    "values": [node],
                                }
                            ]
                        }
                    ]
                }
            },
        },
    }


def volume_path(volume: dict[str, Any]) -> Path:
    """The directory of a local (or hostPath) PersistentVolume; / when it names none."""
    spec = volume.get("spec") or {}
    return Path((spec.get("local") or spec.get("hostPath") or {}).get("path") or "/")


def reclaimable(volume: dict[str, Any], provisioner: str, root: Path) -> Path | None:
    """The directory to delete for a Released volume of ours (never outside `root`)."""
    annotations = volume["metadata"].get("annotations") or {}
    spec = volume.get("spec") or {}
    if annotations.get(PROVISIONED_BY) != provisioner:
        return None
    if (volume.get("status") or {}).get("phase") != "Released":
        return None
    if spec.get("persistentVolumeReclaimPolicy") != "Delete":
        return None
    path = volume_path(volume).resolve()
    if root.resolve() not in path.parents:
        return None
    return path


class Provisioner:
    def __init__(
        self, api: Api, root: Path, node: str, storage_class: str, provisioner: str
    ) -> None:
        self.api = api
        self.root = root
        self.node = node
        self.storage_class = storage_class
        self.provisioner = provisioner
        self.claims = Informer(api, "PersistentVolumeClaim", self._claim_event)
        self.volumes = Informer(api, "PersistentVolume", self._volume_event)
        self._busy: set[str] = set()
        self._tasks: set[asyncio.Task[None]] = set()

    async def run(self) -> None:
        tasks = [
            asyncio.ensure_future(self.claims.run()),
            asyncio.ensure_future(self.volumes.run()),
        ]
        try:
            await self.claims.synced.wait()
            await self.volumes.synced.wait()
            self._collect_garbage()
            await asyncio.gather(*tasks)
        finally:
            for task in tasks:
                task.cancel()

    def _spawn(self, key: str, work: Any) -> None:
        if key in self._busy:
            return
        self._busy.add(key)
        task = asyncio.get_running_loop().create_task(work)
        self._tasks.add(task)

        def done(t: asyncio.Task[None]) -> None:
            self._tasks.discard(t)
            self._busy.discard(key)
            if not t.cancelled() and t.exception() is not None:
                log.warning("provisioner: %s: %s", key, t.exception())

        task.add_done_callback(done)

    def _claim_event(
        self, event: str, old: dict[str, Any] | None, new: dict[str, Any] | None
    ) -> None:
        if new is not None and wants_volume(new, self.storage_class, self.provisioner):
            self._spawn(f"claim/{new['metadata']['uid']}", self._provision(new))

    def _volume_event(
        self, event: str, old: dict[str, Any] | None, new: dict[str, Any] | None
    ) -> None:
        if new is not None and reclaimable(new, self.provisioner, self.root) is not None:
            self._spawn(f"volume/{new['metadata']['name']}", self._reclaim(new))

    async def _provision(self, claim: dict[str, Any]) -> None:
        path = claim_dir(self.root, claim)
        # The node's users have no business in claims: the root and each namespace's
        # directory are root's alone (containers reach a claim through its bind mount).
        for private in (self.root, path.parent):
            private.mkdir(mode=0o700, parents=True, exist_ok=True)
            os.chmod(private, 0o700)
        # Root's until a pod mounts it: then it belongs to the pod's fsGroup, or else to
        # its runAsUser (volumes.claim_owner), never to every user of the node.
        path.mkdir(mode=0o770, exist_ok=True)
        os.chmod(path, 0o770)
        created = await self.api.create(volume_manifest(claim, path, self.node, self.provisioner))
        if created is not None:
            meta = claim["metadata"]
            log.info(
                "provisioned %s for claim %s/%s at %s",
                created["metadata"]["name"],
                meta["namespace"],
                meta["name"],
                path,
            )

    async def _reclaim(self, volume: dict[str, Any]) -> None:
        path = reclaimable(volume, self.provisioner, self.root)
        if path is not None:
            await asyncio.get_running_loop().run_in_executor(None, shutil.rmtree, path, True)
        await self.api.delete("PersistentVolume", volume["metadata"]["name"])

    def _collect_garbage(self) -> None:
        """Remove claim directories that no volume of ours names (the cluster they
        belonged to is gone: the local control plane starts with an empty etcd)."""
        known = {str(volume_path(v).resolve()) for v in self.volumes.objects.values()}
        if not self.root.is_dir():
            return
        for namespace in self.root.iterdir():
            for directory in namespace.iterdir() if namespace.is_dir() else ():
                if str(directory.resolve()) not in known:
                    shutil.rmtree(directory, ignore_errors=True)
            if namespace.is_dir() and not any(namespace.iterdir()):
                namespace.rmdir()


async def _serve(kubeconfig: Path, root: Path, node: str, storage_class: str) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    api = Api(client(kubeconfig))
    provisioner = Provisioner(api, root, node, storage_class, PROVISIONER)
    task = loop.create_task(provisioner.run())
    stopping = loop.create_task(stop.wait())
    try:
        await asyncio.wait({task, stopping}, return_when=asyncio.FIRST_COMPLETED)
        if task.done():
            task.result()  # an informer that ended for good: exit non-zero, say why
    finally:
        task.cancel()
        await api.close()


def main(argv: Sequence[str] | None = None) -> None:
    """The provisioner alone, for a node whose pods a kubelet runs (the container node)."""
    parser = argparse.ArgumentParser(prog="python -m torchyard.local.agent.provisioner")
    parser.add_argument("--kubeconfig", type=Path, required=True, help="volumes and claims")
    parser.add_argument("--root", type=Path, required=True, help="where claims' directories go")
    parser.add_argument("--node-name", required=True, help="the node the volumes are pinned to")
    parser.add_argument("--storage-class", default=STORAGE_CLASS)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    for noisy in ("httpx", "httpcore"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    asyncio.run(_serve(args.kubeconfig, args.root, args.node_name, args.storage_class))


if __name__ == "__main__":
    main()
