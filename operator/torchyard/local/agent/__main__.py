"""`python -m torchyard.local.agent`: run the node agent in the foreground (as root)."""

from __future__ import annotations

import argparse
import asyncio
import logging
import signal
import sys
from collections.abc import Sequence
from pathlib import Path

from torchyard.local.agent.agent import Agent, AgentError
from torchyard.local.agent.config import DEFAULT_NODE, DEFAULT_STATE_DIR, AgentConfig


def parse(argv: Sequence[str] | None = None) -> AgentConfig:
    defaults = AgentConfig(kubeconfig=Path(), infra_kubeconfig=Path())
    p = argparse.ArgumentParser(prog="python -m torchyard.local.agent", description=__doc__)
    p.add_argument("--kubeconfig", type=Path, required=True, help="the node's identity")
    p.add_argument("--infra-kubeconfig", type=Path, required=True, help="services, volumes")
    p.add_argument("--node-name", default=DEFAULT_NODE)
    p.add_argument("--state-dir", type=Path, default=DEFAULT_STATE_DIR)
    p.add_argument(
        "--image",
        action="append",
        dest="images",
        help="an image (or shell pattern) to accept; repeat; default: the worker image",
    )
    p.add_argument("--pod-cidr", default=defaults.pod_cidr)
    p.add_argument("--bridge", default=defaults.bridge)
    p.add_argument("--prefix", default=defaults.prefix, help="of network namespaces and veths")
    p.add_argument("--service-cidr", default=defaults.service_cidr)
    p.add_argument("--backoff-initial", type=float, default=defaults.backoff_initial)
    p.add_argument("--backoff-max", type=float, default=defaults.backoff_max)
    p.add_argument("--shutdown-grace", type=float, default=defaults.shutdown_grace)
    p.add_argument("--cpus", type=int, default=None, help="node capacity (default: the host's)")
    p.add_argument("--memory-bytes", type=int, default=None)
    p.add_argument(
        "--allow-privileged-pods",
        action="store_true",
        help="run privileged, hostPath, hostNetwork/hostPID/hostIPC and uid-0 pods, which "
        "reach the node itself (default: refuse them)",
    )
    p.add_argument("-v", "--verbose", action="store_true")
    args = p.parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    for noisy in ("httpx", "httpx2", "httpcore", "httpcore2"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    return AgentConfig(
        kubeconfig=args.kubeconfig,
        infra_kubeconfig=args.infra_kubeconfig,
        node_name=args.node_name,
        state_dir=args.state_dir,
        images=tuple(args.images) if args.images else defaults.images,
        pod_cidr=args.pod_cidr,
        bridge=args.bridge,
        prefix=args.prefix,
        service_cidr=args.service_cidr,
        backoff_initial=args.backoff_initial,
        backoff_max=args.backoff_max,
        shutdown_grace=args.shutdown_grace,
        cpus=args.cpus,
        memory_bytes=args.memory_bytes,
        allow_privileged_pods=args.allow_privileged_pods,
    )


async def _main(config: AgentConfig) -> None:
    if sys.version_info < (3, 12):
        # Without it, every asyncio subprocess (ip, exec probes) gets a waiter thread.
        watcher = asyncio.PidfdChildWatcher()
        watcher.attach_loop(asyncio.get_running_loop())
        asyncio.get_event_loop_policy().set_child_watcher(watcher)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await Agent(config).run(stop)


def main(argv: Sequence[str] | None = None) -> int:
    config = parse(argv)
    try:
        asyncio.run(_main(config))
    except AgentError as error:
        print(f"torchyard-agent: {error}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
