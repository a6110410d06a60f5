"""The HTTP face of a serving process: the Open Inference Protocol v2 routes, /metrics,
and the model's life: loading (digest first), ready after a warm-up pass, draining.

Inference requests are held to the server's limits (torchyard.workloads.serve.limits):
the client's mistakes are 4xx, overload is 503 with Retry-After, and neither is timed
in the latency histogram, which measures what the model's clients wait for once their
request has arrived (its queueing, batching and forward pass).
"""

from __future__ import annotations

import asyncio
import logging
import os
import time
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from aiohttp import web

from torchyard import __version__
from torchyard.api.modelversion import ArtifactSpec
from torchyard.factories import FactoryNotAllowed
from torchyard.oip import ANALYSIS_REQUEST_ID
from torchyard.oip.binary import EXTENSION, HEADER_LENGTH
from torchyard.storage import DigestMismatch, StorageError, fetch, verify
from torchyard.workloads.report import PERMANENT
from torchyard.workloads.serve.batching import Batcher, InferenceError
from torchyard.workloads.serve.body import (
    REQUEST_TIMEOUT,
    ByteBudget,
    Holding,
    Overloaded,
    read_request,
)
from torchyard.workloads.serve.client import VERSION_HEADER
from torchyard.workloads.serve.config import ServeConfig, cpu_limit
from torchyard.workloads.serve.faults import FAULT_RATE_ENV, FaultInjector
from torchyard.workloads.serve.limits import ENV
from torchyard.workloads.serve.metrics import ServerMetrics
from torchyard.workloads.serve.protocol import (
    ProtocolError,
    Signature,
    dumps,
    infer_response,
    parse_infer_request,
)
from torchyard.workloads.serve.runner import PLATFORM, Runner, load_runner

log = logging.getLogger("torchyard.serve")

SERVER_NAME = "torchyard"
# The protocol: a health API answers 200 for true and a 4xx status for false.
NOT_HEALTHY = 400
TRANSIENT = 1
RECEIVED = web.RequestKey("received", float)
"""Request key: when its body had arrived, set once the model is asked (timed from then)."""


class LoadFailure(Exception):
    """The model cannot be served; `reason` goes into the termination message."""

    def __init__(self, reason: str, message: str, exit_code: int) -> None:
        super().__init__(message)
        self.reason = reason
        self.exit_code = exit_code


Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@web.middleware
async def _errors_as_json(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Every error is the protocol's {"error": "..."} object, and none stops the server."""
    try:
        return await handler(request)
    except ProtocolError as error:
        return json_response({"error": str(error)}, status=error.status, headers=error.headers)
    except web.HTTPException as error:
        if error.status < 400:
            raise
        headers = {"Allow": error.headers["Allow"]} if "Allow" in error.headers else None
        message = f"{error.reason}: {request.method} {request.path}"
        return json_response({"error": message}, status=error.status, headers=headers)
    except Exception as error:
        log.exception("unexpected error on %s %s", request.method, request.path)
        return json_response({"error": f"internal error: {error}"}, status=500)


class ModelServer:
    """One model version behind the Open Inference Protocol."""

    def __init__(self, config: ServeConfig) -> None:
        self.config = config
        self.model = config.spec.model
        self.version = config.spec.version
        self.metrics = ServerMetrics(self.model, self.version)
        self.faults = FaultInjector(config.fault_rate, config.fault_after_s)
        self.limits = config.limits
        self.budget = ByteBudget(self.limits.max_buffered_bytes, self.limits.retry_after_s)
        self.signature: Signature | None = None
        self.batcher: Batcher | None = None
        self.draining = False
        # One forward pass at a time: torch parallelises inside it.
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="forward")

    @property
    def ready(self) -> bool:
        """Loaded, warmed up and not draining: what readiness probes ask."""
        return self.batcher is not None and not self.draining

    def application(self) -> web.Application:
        app = web.Application(
            middlewares=[_errors_as_json], client_max_size=self.limits.max_body_bytes
        )
        model, versioned = "/v2/models/{model}", "/v2/models/{model}/versions/{version}"
        app.router.add_get("/v2", self.server_metadata)
        app.router.add_get("/v2/health/live", self.live)
        app.router.add_get("/v2/health/ready", self.server_ready)
        for prefix in (model, versioned):
            app.router.add_get(prefix, self.model_metadata)
            app.router.add_get(f"{prefix}/ready", self.model_ready)
            app.router.add_post(f"{prefix}/infer", self.infer)
        app.router.add_get("/metrics", self.prometheus)
        app.on_response_prepare.append(self._stamp_version)
        return app

    async def _stamp_version(self, request: web.Request, response: web.StreamResponse) -> None:
        # Errors carry no model_version in their body; behind the model's Service, a
        # client (or an e2e test) still learns which version answered.
        response.headers[VERSION_HEADER] = self.version

    # -- life ---------------------------------------------------------------------------

    async def load(self) -> None:
        """Verify the artifact's digest, load the model, warm it up; then take requests."""
        loop = asyncio.get_running_loop()
        runner, self.signature = await loop.run_in_executor(
            self._executor, _load, self.config.spec.artifact
        )
        batching = self.config.spec.serving.batching
        self.batcher = Batcher(
            runner.forward,
            self._executor,
            max_batch_size=batching.max_batch_size,
            max_queue_delay_s=batching.max_queue_delay_ms / 1000.0,
            max_queue=self.limits.max_queue,
            on_batch=self.metrics.batch,
        )
        self.batcher.start()

    async def close(self) -> None:
        if self.batcher is not None:
            await self.batcher.stop()
        self._executor.shutdown(wait=False, cancel_futures=True)

    # -- routes -------------------------------------------------------------------------

    async def server_metadata(self, request: web.Request) -> web.Response:
        return json_response(
            {"name": SERVER_NAME, "version": __version__, "extensions": [EXTENSION]}
        )

    async def live(self, request: web.Request) -> web.Response:
        return json_response({"live": True})

    async def server_ready(self, request: web.Request) -> web.Response:
        return json_response({"ready": self.ready}, status=200 if self.ready else NOT_HEALTHY)

    async def model_ready(self, request: web.Request) -> web.Response:
        self._check_route(request)
        return json_response(
            {"name": self.model, "ready": self.ready}, status=200 if self.ready else NOT_HEALTHY
        )

    async def model_metadata(self, request: web.Request) -> web.Response:
        self._check_route(request)
        if self.signature is None:
            raise ProtocolError(f"model '{self.model}' is still loading", 503)
        return json_response(
            {
                "name": self.model,
                "versions": [self.version],
                "platform": PLATFORM,
                "inputs": [spec.to_json() for spec in self.signature.inputs],
                "outputs": [spec.to_json() for spec in self.signature.outputs],
            }
        )

    async def infer(self, request: web.Request) -> web.Response:
        headers: dict[str, str] = {}
        parts: list[bytes] = []
        # What the request's body holds of the server's byte budget goes back once it
        # is answered, whatever the answer.
        with self.metrics.in_flight.track_inprogress(), self.budget.hold() as holding:
            try:
                status = 200
                body, parts = await self._infer(request, holding)
            except ProtocolError as error:
                status, body, headers = error.status, {"error": str(error)}, error.headers
            except InferenceError as error:
                status, body = 500, {"error": f"inference failed: {error}"}
            except Exception as error:
                # Counted like any other 500: the analysis and the alerts must see it.
                log.exception("unexpected error on %s %s", request.method, request.path)
                status, body = 500, {"error": f"internal error: {error}"}
        received = request.get(RECEIVED)
        if not (status == 200 and body.get("id") == ANALYSIS_REQUEST_ID):
            # The operator's reference request is no client's: it stays out of the window.
            self.metrics.request(
                status, None if received is None else time.perf_counter() - received
            )
        if parts:
            response = _binary_response(body, parts)
        else:
            response = json_response(body, status=status, headers=headers)
        if status == REQUEST_TIMEOUT:
            # Answer, then close at once: aiohttp would otherwise linger, reading the
            # rest of the slow body for as long again.
            await response.prepare(request)
            await response.write_eof()
            request.protocol.force_close()
        return response

    async def prometheus(self, request: web.Request) -> web.Response:
        response = web.Response(body=self.metrics.render())
        response.headers["Content-Type"] = self.metrics.content_type
        return response

    async def _infer(
        self, request: web.Request, holding: Holding
    ) -> tuple[dict[str, Any], list[bytes]]:
        self._check_route(request)
        batcher, signature = self.loaded()
        if self.faults.next_fails():
            request[RECEIVED] = time.perf_counter()
            raise InferenceError(f"injected fault ({FAULT_RATE_ENV}={self.faults.rate})")
        # Refused before its body is read: a full queue has no use for it.
        self.check_room()
        body, binary = await read_request(request, self.limits, holding)
        received = time.perf_counter()
        parsed = parse_infer_request(body, signature, self.limits, binary)
        del body, binary  # the JSON values are many times the size of the tensors
        self.check_room()
        request[RECEIVED] = received
        outputs = await batcher.infer(parsed.inputs, parsed.rows)
        return infer_response(self.model, self.version, parsed, outputs)

    def loaded(self) -> tuple[Batcher, Signature]:
        """The batcher and the signature, once the model is loaded: 503 before."""
        # Draining servers still answer: requests may reach them until the Service
        # has noticed they are not ready any more.
        if self.batcher is None or self.signature is None:
            raise ProtocolError(f"model '{self.model}' is still loading", 503)
        return self.batcher, self.signature

    def check_room(self) -> None:
        """503 with Retry-After while the batcher's queue is full."""
        assert self.batcher is not None
        if self.batcher.full:
            raise Overloaded(
                f"{self.limits.max_queue} requests already wait for the model ({ENV['max_queue']})",
                self.limits.retry_after_s,
            )

    def _check_route(self, request: web.Request) -> None:
        self.check_model(request.match_info["model"], request.match_info.get("version"))

    def check_model(self, name: str, version: str | None) -> None:
        """404 unless the request names this server's model (and version, if any)."""
        if name != self.model:
            raise ProtocolError(f"unknown model '{name}'; this server serves '{self.model}'", 404)
        if version is not None and version != self.version:
            raise ProtocolError(
                f"model '{name}' has no version '{version}' here; this server serves version "
                f"{self.version}",
                404,
            )


def json_response(
    body: Any, status: int = 200, headers: dict[str, str] | None = None
) -> web.Response:
    """JSON as `application/json` with no charset parameter, which JSON does not have
    (RFC 8259); KServe's client reads an error's message only from exactly that type.
    Never a bare NaN or Infinity."""
    return web.Response(
        body=dumps(body).encode(), status=status, headers=headers, content_type="application/json"
    )


def _binary_response(body: dict[str, Any], parts: list[bytes]) -> web.Response:
    """The binary data extension's answer: the JSON, then the outputs' bytes."""
    header = dumps(body).encode()
    return web.Response(
        body=b"".join([header, *parts]),
        content_type="application/octet-stream",
        headers={HEADER_LENGTH: str(len(header))},
    )


def _load(artifact: ArtifactSpec) -> tuple[Runner, Signature]:
    """Runs on the forward thread: nothing is loaded before the digest matches."""
    try:
        path = fetch(artifact.uri)
        verify(path, artifact.digest)
    except DigestMismatch as error:
        raise LoadFailure("DigestMismatch", str(error), PERMANENT) from None
    except StorageError as error:
        # Perhaps not written yet: worth a restart.
        raise LoadFailure("ArtifactNotFound", str(error), TRANSIENT) from None
    log.info("artifact %s verified (%s)", artifact.uri, artifact.digest)
    _fit_threads_to_cpu_limit()
    try:
        runner = load_runner(path, artifact)
    except FactoryNotAllowed as error:
        raise LoadFailure(error.reason, str(error), PERMANENT) from None
    except Exception as error:
        raise LoadFailure("ModelLoadError", f"{type(error).__name__}: {error}", PERMANENT) from None
    try:
        signature = runner.warm_up()
    except Exception as error:
        raise LoadFailure("WarmupFailed", f"{type(error).__name__}: {error}", PERMANENT) from None
    log.info("model loaded and warmed up: inputs %s", [s.to_json() for s in signature.inputs])
    return runner, signature


def _fit_threads_to_cpu_limit() -> None:
    """Runs on the forward thread, whose thread pool size this sets (OpenMP's is per
    calling thread). OMP_NUM_THREADS, when set, is the user's choice and wins."""
    limit = cpu_limit()
    if limit is not None and "OMP_NUM_THREADS" not in os.environ:
        import torch

        torch.set_num_threads(min(torch.get_num_threads(), limit))
