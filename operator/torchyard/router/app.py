"""The router process (`torchyard workload router`): listen, take routing tables from the
operator, forward requests until SIGTERM, then finish those in flight.

Configured from the environment the operator sets: TORCHYARD_MODEL (the model's name),
TORCHYARD_ROUTER_TOKEN (the bearer token of the routes API; required), TORCHYARD_PORT
(8080), TORCHYARD_HOST (0.0.0.0) and TORCHYARD_DRAIN_DELAY_SECONDS (3: after SIGTERM, how
long it reports not ready while it still forwards, so that requests already sent its way
by the Service are answered).
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import signal
from collections.abc import Coroutine, Sequence
from typing import Any

from aiohttp import web

from torchyard.router.proxy import Router

MODEL_ENV = "TORCHYARD_MODEL"
TOKEN_ENV = "TORCHYARD_ROUTER_TOKEN"
PORT_ENV = "TORCHYARD_PORT"
HOST_ENV = "TORCHYARD_HOST"
DRAIN_DELAY_ENV = "TORCHYARD_DRAIN_DELAY_SECONDS"
DRAIN_TIMEOUT_S = 25.0

log = logging.getLogger("torchyard.router")


async def route(
    router: Router, host: str, port: int, stop: asyncio.Event, drain_delay_s: float = 0.0
) -> int:
    """Serve `router` on host:port until `stop` is set; the exit code."""
    runner = web.AppRunner(
        router.application(),
        access_log=None,
        shutdown_timeout=DRAIN_TIMEOUT_S,
        # Bodies pass through as the client sent them, compressed or not.
        auto_decompress=False,
    )
    await runner.setup()
    try:
        await web.TCPSite(runner, host, port).start()
    except OSError as error:
        log.error("cannot listen on %s:%d: %s", host, port, error)
        await runner.cleanup()
        return 1
    log.info("routing model %s on %s:%d", router.model, host, port)
    await stop.wait()
    router.draining = True
    if drain_delay_s:
        log.info("draining: not ready, forwarding for %g s more", drain_delay_s)
        await asyncio.sleep(drain_delay_s)
    log.info("stopping: no new connections, finishing requests in flight")
    await runner.cleanup()
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    parser = argparse.ArgumentParser(prog="torchyard workload router")
    parser.add_argument("--model", default=os.environ.get(MODEL_ENV))
    parser.add_argument("--host", default=os.environ.get(HOST_ENV, "0.0.0.0"))
    parser.add_argument("--port", type=int, default=int(os.environ.get(PORT_ENV, "8080")))
    args = parser.parse_args(list(argv or ()))
    token = os.environ.get(TOKEN_ENV, "")
    if not args.model or not token:
        parser.error(f"{MODEL_ENV} (or --model) and {TOKEN_ENV} must be set")
    try:
        drain_delay_s = float(os.environ.get(DRAIN_DELAY_ENV, "3"))
    except ValueError:
        parser.error(f"{DRAIN_DELAY_ENV} must be a number of seconds")
    router = Router(args.model, token)
    return _run(_until_signalled(router, args.host, args.port, drain_delay_s))


def _run(main: Coroutine[Any, Any, int]) -> int:
    """On uvloop where it is installed (the operator image has it): the router's cost is
    its event loop's, and uvloop's is about half asyncio's."""
    try:
        import uvloop
    except ImportError:
        return asyncio.run(main)
    return uvloop.run(main)


async def _until_signalled(router: Router, host: str, port: int, drain_delay_s: float) -> int:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    return await route(router, host, port, stop, drain_delay_s)
