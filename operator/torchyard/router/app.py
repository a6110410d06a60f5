"""The router process (`torchyard workload router`): listen, take routing tables from the
operator, forward requests until SIGTERM, then finish those in flight.

Configured from the environment the operator sets: TORCHYARD_MODEL (the model's name),
TORCHYARD_ROUTER_TOKEN_SHA256 (the SHA-256, hex, of the routes API's bearer token; the
operator sets only this) or TORCHYARD_ROUTER_TOKEN (the token itself), TORCHYARD_PORT
(8080), TORCHYARD_GRPC_PORT (8081: the gRPC binding, forwarded per call by
torchyard.router.grpc; empty: none), TORCHYARD_BACKEND_GRPC_PORT (8081: where the serving
pods take gRPC), TORCHYARD_HOST (0.0.0.0) and TORCHYARD_DRAIN_DELAY_SECONDS (3: after
SIGTERM, how long it reports not ready while it still forwards, so that requests already
sent its way by the Service are answered).
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import signal
from collections.abc import Callable, Coroutine, Sequence
from dataclasses import dataclass
from typing import Any

from aiohttp import web

from torchyard.router.proxy import Router

MODEL_ENV = "TORCHYARD_MODEL"
TOKEN_ENV = "TORCHYARD_ROUTER_TOKEN"
TOKEN_SHA256_ENV = "TORCHYARD_ROUTER_TOKEN_SHA256"
PORT_ENV = "TORCHYARD_PORT"
GRPC_PORT_ENV = "TORCHYARD_GRPC_PORT"
BACKEND_GRPC_PORT_ENV = "TORCHYARD_BACKEND_GRPC_PORT"
HOST_ENV = "TORCHYARD_HOST"
DRAIN_DELAY_ENV = "TORCHYARD_DRAIN_DELAY_SECONDS"
DRAIN_TIMEOUT_S = 25.0

log = logging.getLogger("torchyard.router")


@dataclass(frozen=True)
class GrpcPorts:
    """Where the router takes gRPC (0: any free port) and where the serving pods do."""

    listen: int
    backend: int = 8081


async def route(
    router: Router,
    host: str,
    port: int,
    stop: asyncio.Event,
    drain_delay_s: float = 0.0,
    grpc_ports: GrpcPorts | None = None,
    bound: Callable[[int], None] | None = None,
) -> int:
    """Serve `router` on host:port (and gRPC on `grpc_ports`, whose port is told to
    `bound`) until `stop` is set; the exit code."""
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
    grpc_server = None
    if grpc_ports is not None:
        # Imported here: the gRPC face needs grpcio, which the worker image has.
        from torchyard.router import grpc as grpc_face

        try:
            grpc_server, forwarder, listening = await grpc_face.start(
                router, host, grpc_ports.listen, grpc_ports.backend
            )
        except OSError as error:
            log.error("%s", error)
            await runner.cleanup()
            return 1
        log.info("gRPC on %s:%d, to the serving pods' port %d", host, listening, grpc_ports.backend)
        if bound is not None:
            bound(listening)
    log.info("routing model %s on %s:%d", router.model, host, port)
    await stop.wait()
    router.draining = True
    if drain_delay_s:
        log.info("draining: not ready, forwarding for %g s more", drain_delay_s)
        await asyncio.sleep(drain_delay_s)
    log.info("stopping: no new connections, finishing requests in flight")
    if grpc_server is not None:
        await asyncio.gather(runner.cleanup(), grpc_server.stop(DRAIN_TIMEOUT_S))
        await forwarder.close()
    else:
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
    token_sha256 = os.environ.get(TOKEN_SHA256_ENV, "").strip().lower()
    if not args.model or not (token or token_sha256):
        parser.error(
            f"{MODEL_ENV} (or --model) and {TOKEN_SHA256_ENV} (or {TOKEN_ENV}) must be set"
        )
    try:
        drain_delay_s = float(os.environ.get(DRAIN_DELAY_ENV, "3"))
    except ValueError:
        parser.error(f"{DRAIN_DELAY_ENV} must be a number of seconds")
    grpc_ports = None
    if os.environ.get(GRPC_PORT_ENV, "8081"):
        try:
            grpc_ports = GrpcPorts(
                int(os.environ.get(GRPC_PORT_ENV, "8081")),
                int(os.environ.get(BACKEND_GRPC_PORT_ENV, "8081")),
            )
        except ValueError:
            parser.error(f"{GRPC_PORT_ENV} and {BACKEND_GRPC_PORT_ENV} must be port numbers")
    try:
        router = Router(args.model, token or None, token_sha256=token_sha256 or None)
    except ValueError as error:
        parser.error(f"{TOKEN_SHA256_ENV}: {error}")
    return _run(_until_signalled(router, args.host, args.port, drain_delay_s, grpc_ports))


def _run(main: Coroutine[Any, Any, int]) -> int:
    """On uvloop where it is installed (the operator image has it): the router's cost is
    its event loop's, and uvloop's is about half asyncio's."""
    try:
        import uvloop
    except ImportError:
        return asyncio.run(main)
    return uvloop.run(main)


async def _until_signalled(
    router: Router, host: str, port: int, drain_delay_s: float, grpc_ports: GrpcPorts | None
) -> int:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    return await route(router, host, port, stop, drain_delay_s, grpc_ports)
