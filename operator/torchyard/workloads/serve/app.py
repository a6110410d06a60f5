"""The serving process: listen, load, serve until SIGTERM, drain, report.

It listens at once so that liveness probes pass while a large model loads; it is ready
(/v2/health/ready) only once the digest matched, the model loaded and a warm-up pass
succeeded. SIGTERM stops it taking connections, lets in-flight requests finish (up to
the drain timeout) and exits 0. A model that cannot be served ends the process with the
reason in the termination message (DigestMismatch, FactoryNotAllowed, ModelLoadError,
WarmupFailed: exit 3; ArtifactNotFound: exit 1, worth a restart), so the operator can say
why.
TORCHYARD_DRAIN_DELAY_SECONDS keeps it answering (while not ready) for that long after
SIGTERM, so requests already routed to it are not refused.

The protocol's gRPC binding (grpc.py) listens on TORCHYARD_GRPC_PORT next to HTTP, for
the same model on the same event loop, and drains with it.
"""

from __future__ import annotations

import asyncio
import logging
import signal
from collections.abc import Sequence
from typing import Any

from aiohttp import web

from torchyard.workloads.report import PERMANENT, PermanentError, write_result
from torchyard.workloads.serve.config import ServeConfig, load_config
from torchyard.workloads.serve.grpc import start_grpc, stop_grpc
from torchyard.workloads.serve.server import LoadFailure, ModelServer

log = logging.getLogger("torchyard.serve")


async def serve(config: ServeConfig, stop: asyncio.Event) -> int:
    """Serve the model of `config` until `stop` is set; return the exit code."""
    server = ModelServer(config)
    runner = web.AppRunner(
        server.application(),
        access_log=None,
        shutdown_timeout=config.drain_timeout_s,
        # aiohttp closes a connection that has not sent a whole request (its headers)
        # this long after it opened or after its last answer: slow headers never hold
        # a connection for longer (a slowloris), idle keep-alive ones neither.
        keepalive_timeout=config.limits.header_timeout_s,
    )
    await runner.setup()
    grpc_server = None
    port = config.port
    try:
        await web.TCPSite(runner, config.host, config.port).start()
        if config.grpc_port:
            port = config.grpc_port
            grpc_server = await start_grpc(server, config.host, config.grpc_port)
    except OSError as error:
        await runner.cleanup()
        write_result({"reason": "PortUnavailable", "message": f"{port}: {error}"})
        return 1
    log.info(
        "listening on %s:%d (HTTP) and %s (gRPC) for model %s version %s",
        config.host,
        config.port,
        config.grpc_port or "off",
        server.model,
        server.version,
    )
    loading = asyncio.create_task(server.load())
    stopping = asyncio.create_task(stop.wait())
    await asyncio.wait({loading, stopping}, return_when=asyncio.FIRST_COMPLETED)

    result: dict[str, Any] = {"model": server.model, "version": server.version}
    code = 0
    failure = loading.exception() if loading.done() else None
    if failure is not None:
        stopping.cancel()
        if not isinstance(failure, LoadFailure):
            failure = LoadFailure("ModelLoadError", f"{failure!r}", PERMANENT)
        log.error("cannot serve: %s: %s", failure.reason, failure)
        result |= {"reason": failure.reason, "message": str(failure)}
        code = failure.exit_code
    else:
        if loading.done():
            log.info("ready: model %s version %s answers requests", server.model, server.version)
        await stopping
        loading.cancel()
        server.draining = True  # not ready: the Service stops sending new requests
        if config.drain_delay_s:
            log.info("draining: not ready, answering for %g s more", config.drain_delay_s)
            await asyncio.sleep(config.drain_delay_s)
        log.info("draining: no new connections, finishing requests in flight")
        result |= {"reason": "Drained", "message": "stopped after finishing in-flight requests"}
    # Each stops listening, then waits for the requests in flight (up to the drain
    # timeout), both at once: gRPC refuses new RPCs on open connections too.
    await asyncio.gather(runner.cleanup(), stop_grpc(grpc_server, config.drain_timeout_s))
    await server.close()
    write_result(result)
    return code


def main(argv: Sequence[str] | None = None) -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    try:
        config = load_config(argv or ())
    except PermanentError as error:
        write_result({"reason": error.reason, "message": str(error)})
        return PERMANENT
    return asyncio.run(_until_signalled(config))


async def _until_signalled(config: ServeConfig) -> int:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    return await serve(config, stop)
