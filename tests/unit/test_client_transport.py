"""The operator client's aiohttp transport, under lightkube's httpx client, against a
real local HTTP server: requests arrive as httpx built them, answers and failures come
back as httpx's."""

from __future__ import annotations

import asyncio
import contextlib
import json
import socket
from collections.abc import AsyncIterator

import httpx2
import pytest
from aiohttp import web

from torchyard.controllers.transport import AiohttpTransport, client_timeout


@contextlib.asynccontextmanager
async def _client(handler=None, **options) -> AsyncIterator[httpx2.AsyncClient]:
    """An httpx client over the transport, talking to `handler` on a local server."""
    runner = None
    if handler is not None:
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", handler)
        runner = web.AppRunner(app)
        await runner.setup()
        await web.TCPSite(runner, "127.0.0.1", 0).start()
        host, port = runner.addresses[0][:2]
        options["base_url"] = f"http://{host}:{port}"
    transport = AiohttpTransport(None)
    try:
        async with httpx2.AsyncClient(transport=transport, **options) as client:
            yield client
    finally:
        await transport.aclose()
        if runner is not None:
            await runner.cleanup()


def test_a_request_arrives_whole_and_its_answer_comes_back():
    seen = {}

    async def handler(request: web.Request) -> web.Response:
        seen.update(
            method=request.method,
            path=request.path_qs,
            auth=request.headers.get("Authorization"),
            type=request.headers.get("Content-Type"),
            body=await request.json(),
        )
        return web.json_response({"kind": "Pod", "ok": True}, status=201)

    async def scenario():
        async with _client(handler) as client:
            return await client.patch(
                "/api/v1/namespaces/ns/pods/a%2Fb/status",
                params={"fieldManager": "torchyard-operator"},
                headers={
                    "Authorization": "Bearer t0ken",
                    "Content-Type": "application/merge-patch+json",
                },
                content=json.dumps({"status": {"phase": "Running"}}),
            )

    response = asyncio.run(scenario())
    assert response.status_code == 201
    assert response.json() == {"kind": "Pod", "ok": True}
    assert seen == {
        "method": "PATCH",
        # Sent as httpx encoded it: the escaped slash stays escaped.
        "path": "/api/v1/namespaces/ns/pods/a%2Fb/status?fieldManager=torchyard-operator",
        "auth": "Bearer t0ken",
        "type": "application/merge-patch+json",
        "body": {"status": {"phase": "Running"}},
    }


def test_an_error_status_is_an_answer_not_an_exception():
    async def handler(request: web.Request) -> web.Response:
        return web.json_response({"kind": "Status", "code": 409}, status=409)

    async def scenario():
        async with _client(handler) as client:
            return await client.post("/api/v1/namespaces/ns/pods", content=b"{}")

    response = asyncio.run(scenario())
    assert response.status_code == 409
    assert response.json()["code"] == 409


def test_an_unreachable_server_raises_httpx_connect_error():
    with socket.socket() as probe:  # a port nobody listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]

    async def scenario():
        async with _client() as client:
            await client.get(f"http://127.0.0.1:{port}/api")

    with pytest.raises(httpx2.ConnectError):
        asyncio.run(scenario())


def test_a_slow_answer_raises_httpx_read_timeout():
    async def handler(request: web.Request) -> web.Response:
        await asyncio.sleep(1)
        return web.Response(text="late")

    async def scenario():
        async with _client(handler, timeout=httpx2.Timeout(5.0, read=0.2)) as client:
            await client.get("/slow")

    with pytest.raises(httpx2.ReadTimeout):
        asyncio.run(scenario())


def test_httpx_timeouts_map_to_aiohttp_ones():
    mapped = client_timeout({"connect": 10.0, "read": 10.0, "write": 10.0, "pool": None})
    assert (mapped.total, mapped.connect, mapped.sock_connect, mapped.sock_read) == (
        None,
        None,  # waiting for a free connection has no limit, as with httpx pool=None
        10.0,
        10.0,
    )
