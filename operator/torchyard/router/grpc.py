"""The router's gRPC face: the Open Inference Protocol's gRPC binding, forwarded per call.

The model Service's `grpc` port reaches the router as its `http` port does, so gRPC
clients get the table's weights too, per call rather than per connection (an HTTP/2
client keeps one connection for all its calls). Messages pass through as bytes, never
parsed: `ModelInfer` is weighed and counted as `POST .../infer` is, every other method
(health, metadata) goes to the heaviest version. A version's pods take gRPC on
`backend_port` at the hosts of the table's HTTP endpoints.

A backend that is not connected within CONNECT_TIMEOUT_S is skipped for the next one,
as the HTTP face does; once a call was sent it is never sent again, and the backend's
status and message are the client's. The caller's deadline goes on to the backend.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Sequence
from typing import Any

import grpc

from torchyard.router.proxy import Router, fallbacks
from torchyard.router.table import VersionRoute

log = logging.getLogger("torchyard.router")

SERVICE = "/inference.GRPCInferenceService/"
INFER = f"{SERVICE}ModelInfer"
CONNECT_TIMEOUT_S = 2.0
# Metadata gRPC writes itself, or that names the router's own connection.
OWN_METADATA = frozenset({"user-agent", "te", "content-type", "host", "authority"})
# The HTTP status a gRPC status counts as in the router's metrics (the serving pods'
# mapping, inverted), so that one metric counts both bindings.
HTTP_STATUS = {
    grpc.StatusCode.OK: 200,
    grpc.StatusCode.INVALID_ARGUMENT: 400,
    grpc.StatusCode.NOT_FOUND: 404,
    grpc.StatusCode.RESOURCE_EXHAUSTED: 413,
    grpc.StatusCode.CANCELLED: 499,
    grpc.StatusCode.UNAVAILABLE: 503,
    grpc.StatusCode.DEADLINE_EXCEEDED: 504,
}


class Forwarder(grpc.GenericRpcHandler):
    """Every method of GRPCInferenceService, forwarded by `router`'s table."""

    def __init__(self, router: Router, backend_port: int, timeout_s: float = 60.0) -> None:
        self.router = router
        self.backend_port = backend_port
        self.timeout_s = timeout_s
        self._channels: dict[str, grpc.aio.Channel] = {}
        self._generation: int | None = None
        self._closing: set[asyncio.Task[None]] = set()

    def service(self, details: grpc.HandlerCallDetails) -> grpc.RpcMethodHandler | None:
        method = details.method  # type: ignore[attr-defined]
        if not method.startswith(SERVICE):
            return None  # gRPC answers UNIMPLEMENTED

        async def forward(request: bytes, context: grpc.aio.ServicerContext) -> bytes:
            return await self._forward(method, request, context)

        # No (de)serializers: the message stays the client's bytes.
        return grpc.unary_unary_rpc_method_handler(forward)

    async def close(self) -> None:
        for channel in self._channels.values():
            await channel.close()
        self._channels.clear()
        if self._closing:
            await asyncio.gather(*self._closing, return_exceptions=True)

    async def _forward(
        self, method: str, request: bytes, context: grpc.aio.ServicerContext
    ) -> bytes:
        started = time.perf_counter()
        router = self.router
        picker = router.picker
        if picker is None or picker.empty:
            router.metrics.unroutable()
            await context.abort(
                grpc.StatusCode.UNAVAILABLE,
                f"no version of model '{router.model}' has a weight and a ready pod",
            )
        assert picker is not None
        await self._prune(picker.table.generation, picker.table.versions)
        metadata = _forwarded(context.invocation_metadata() or ())
        weighed = method == INFER
        if weighed:
            sticky = picker.table.sticky_header
            session = dict(metadata).get(sticky.lower()) if sticky else None
            route = picker.pick(session if isinstance(session, str) else None)
        else:
            route = picker.steadiest()
        for candidate in fallbacks(picker, route):
            for endpoint in picker.endpoints(candidate):
                channel = self._channel(endpoint)
                if not await _connected(channel):
                    log.warning("%s (version %s): not connected", endpoint, candidate.version)
                    router.metrics.retried(candidate.version)
                    continue
                # What is left of the caller's deadline now, after the connection waits.
                remaining = context.time_remaining()
                timeout = self.timeout_s if remaining is None else min(remaining, self.timeout_s)
                call = channel.unary_unary(method)(request, metadata=metadata, timeout=timeout)
                try:
                    answer = await call
                except grpc.aio.AioRpcError as error:
                    self._count(weighed, candidate, error.code(), started)
                    await _pass_initial(context, error.initial_metadata())
                    trailing = tuple(_forwarded(tuple(error.trailing_metadata() or ())))
                    await context.abort(error.code(), error.details() or "", trailing or None)
                # The backend's metadata (X-Model-Version, Retry-After) is the client's.
                await _pass_initial(context, await call.initial_metadata())
                context.set_trailing_metadata(
                    tuple(_forwarded(tuple(await call.trailing_metadata() or ())))
                )
                self._count(weighed, candidate, grpc.StatusCode.OK, started)
                return answer  # type: ignore[no-any-return]
        router.metrics.unroutable()
        await context.abort(
            grpc.StatusCode.UNAVAILABLE, f"no pod of model '{router.model}' accepted a connection"
        )
        raise AssertionError("abort raises")  # for the type checker

    def _count(
        self, weighed: bool, route: VersionRoute, code: grpc.StatusCode, started: float
    ) -> None:
        if weighed:
            status = HTTP_STATUS.get(code, 500)
            self.router.metrics.routed(route.version, status, time.perf_counter() - started)

    def _channel(self, endpoint: str) -> grpc.aio.Channel:
        host = endpoint.rpartition(":")[0]
        target = f"{host}:{self.backend_port}"
        channel = self._channels.get(target)
        if channel is None:
            channel = grpc.aio.insecure_channel(
                target,
                options=[
                    ("grpc.max_receive_message_length", -1),
                    ("grpc.max_send_message_length", -1),
                    # A pod that refused once is tried again within seconds, not
                    # after gRPC's default backoff of up to two minutes.
                    ("grpc.initial_reconnect_backoff_ms", 500),
                    ("grpc.max_reconnect_backoff_ms", 5000),
                ],
            )
            self._channels[target] = channel
        return channel

    async def _prune(self, generation: int, versions: Sequence[VersionRoute]) -> None:
        """Close the channels of pods a new table no longer lists."""
        if generation == self._generation:
            return
        self._generation = generation
        wanted = {
            f"{endpoint.rpartition(':')[0]}:{self.backend_port}"
            for route in versions
            for endpoint in route.endpoints
        }
        for target in [t for t in self._channels if t not in wanted]:
            # Calls still on the channel finish (close cancels them without a grace).
            task = asyncio.create_task(self._channels.pop(target).close(grace=self.timeout_s))
            self._closing.add(task)
            task.add_done_callback(self._closing.discard)


async def _connected(channel: grpc.aio.Channel) -> bool:
    """Whether the channel is (or gets) connected within CONNECT_TIMEOUT_S; False at once
    for one whose last attempt failed."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + CONNECT_TIMEOUT_S
    state = channel.get_state(try_to_connect=True)
    while state != grpc.ChannelConnectivity.READY:
        remaining = deadline - loop.time()
        if state in (grpc.ChannelConnectivity.TRANSIENT_FAILURE, grpc.ChannelConnectivity.SHUTDOWN):
            return False
        try:
            await asyncio.wait_for(channel.wait_for_state_change(state), remaining)
        except TimeoutError:
            return False
        state = channel.get_state(try_to_connect=True)
    return True


async def _pass_initial(context: grpc.aio.ServicerContext, metadata: Any) -> None:
    own = _forwarded(tuple(metadata or ()))
    if own:
        await context.send_initial_metadata(own)


def _forwarded(metadata: Sequence[tuple[str, Any]]) -> list[tuple[str, Any]]:
    """The caller's own metadata, without what gRPC sets for each connection."""
    return [
        (key, value)
        for key, value in metadata
        if key not in OWN_METADATA and not key.startswith((":", "grpc-"))
    ]


async def start(
    router: Router, host: str, port: int, backend_port: int
) -> tuple[grpc.aio.Server, Forwarder, int]:
    """The router's gRPC server on host:port (0: any free port), its forwarder and the port
    it listens on; OSError when it cannot listen."""
    forwarder = Forwarder(router, backend_port)
    server = grpc.aio.server(
        options=[
            ("grpc.max_receive_message_length", router.max_body_bytes),
            ("grpc.max_send_message_length", -1),
            # Clients spread over the router pods again, as the serving pods do it.
            ("grpc.max_connection_age_ms", 60_000),
            ("grpc.max_connection_age_grace_ms", 60_000),
            ("grpc.so_reuseport", 0),
        ],
    )
    server.add_generic_rpc_handlers((forwarder,))
    address = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
    try:
        bound = server.add_insecure_port(address)
    except RuntimeError:
        bound = 0
    if not bound:
        await server.stop(None)
        raise OSError(f"gRPC cannot listen on {address}")
    await server.start()
    return server, forwarder, bound
