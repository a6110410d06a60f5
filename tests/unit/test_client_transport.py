"""The operator client's aiohttp transport, under lightkube's httpx client, against a
real local HTTP server: requests arrive as httpx built them, answers and failures come
back as httpx's."""

from __future__ import annotations

import asyncio
import json
import socket

import httpx2
import pytest
from aiohttp import web

from torchyard.controllers.transport import AiohttpTransport, client_timeout


async def _serve(handler) -> tuple[web.AppRunner, str]:
    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", handler)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    return runner, f"http://127.0.0.1:{port}"


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
        runner, url = await _serve(handler)
        transport = AiohttpTransport(None)
        try:
            async with httpx2.AsyncClient(base_url=url, transport=transport) as client:
                response = await client.patch(
                    "/api/v1/namespaces/ns/pods/a%2Fb/status",
                    params={"fieldManager": "torchyard-operator"},
                    headers={
                        "Authorization": "Bearer t0ken",
                        "Content-Type": "application/merge-patch+json",
                    },
                    content=json.dumps({"status": {"phase": "Running"}}),
                )
            return response
        finally:
            await transport.aclose()
            await runner.cleanup()

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
        runner, url = await _serve(handler)
        transport = AiohttpTransport(None)
        try:
            async with httpx2.AsyncClient(base_url=url, transport=transport) as client:
                return await client.post("/api/v1/namespaces/ns/pods", content=b"{}")
        finally:
            await transport.aclose()
            await runner.cleanup()

    response = asyncio.run(scenario())
    assert response.status_code == 409
    assert response.json()["code"] == 409


def test_an_unreachable_server_raises_httpx_connect_error():
    with socket.socket() as probe:  # a port nobody listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]

    async def scenario():
        transport = AiohttpTransport(None)
        try:
            async with httpx2.AsyncClient(transport=transport) as client:
                await client.get(f"http://127.0.0.1:{port}/api")
        finally:
            await transport.aclose()

    with pytest.raises(httpx2.ConnectError):
        asyncio.run(scenario())


def test_a_slow_answer_raises_httpx_read_timeout():
    async def handler(request: web.Request) -> web.Response:
        await asyncio.sleep(1)
        return web.Response(text="late")

    async def scenario():
        runner, url = await _serve(handler)
        transport = AiohttpTransport(None)
        try:
            timeout = httpx2.Timeout(5.0, read=0.2)
            async with httpx2.AsyncClient(
                base_url=url, transport=transport, timeout=timeout
            ) as client:
                await client.get("/slow")
        finally:
            await transport.aclose()
            await runner.cleanup()

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
