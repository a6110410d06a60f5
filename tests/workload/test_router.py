"""The model router (torchyard.router) in front of two real serving processes of one
model, versions 1 and 2: the share each version serves is exactly the weight pushed,
sessions stick, the routes API wants its token, and a backend that went away costs a
client nothing."""

from __future__ import annotations

import asyncio
import http.client
import json
import threading
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from typing import Any

import numpy as np
import pytest
import torch
from prometheus_client.parser import text_string_to_metric_families

from tests.workload.serving import (
    FEATURES,
    free_port,
    infer_body,
    mlp_artifact,
    serving,
    serving_spec,
    small_mlp,
    text,
)
from torchyard.router.proxy import ROUTES_PATH, Router

TOKEN = "s3cret-token"
BODY = json.dumps(infer_body(torch.zeros(1, FEATURES))).encode()


class RunningRouter:
    """The router on a free port, in a thread with its own event loop."""

    def __init__(self, router: Router | None = None, grpc_backend_port: int | None = None) -> None:
        from torchyard.router.app import GrpcPorts, route

        self.port = free_port()
        self.router = router or Router("digits", TOKEN)
        self.grpc_port: int | None = None
        """Where the router takes gRPC, with `grpc_backend_port` (the serving pods')."""
        self._grpc = None if grpc_backend_port is None else GrpcPorts(0, grpc_backend_port)
        self._loop = asyncio.new_event_loop()
        self._stop = asyncio.Event()
        self._started = threading.Event()
        self._route = route
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        self._loop.call_soon(self._started.set)
        self._loop.run_until_complete(
            self._route(
                self.router, "127.0.0.1", self.port, self._stop, 0.0, self._grpc, self._bound
            )
        )

    def _bound(self, port: int) -> None:
        self.grpc_port = port

    def __enter__(self) -> RunningRouter:
        self._thread.start()
        self._started.wait(10)
        for _ in range(100):
            try:
                self.request("GET", "/_torchyard/ready")
                if self._grpc is None or self.grpc_port is not None:
                    break
            except OSError:
                pass
            threading.Event().wait(0.05)
        return self

    def __exit__(self, *exc: object) -> None:
        self._loop.call_soon_threadsafe(self._stop.set)
        self._thread.join(timeout=30)
        self._loop.close()

    def request(
        self, method: str, path: str, body: bytes | None = None, headers: dict | None = None
    ) -> tuple[int, dict[str, str], bytes]:
        connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
        try:
            connection.request(method, path, body=body, headers=headers or {})
            response = connection.getresponse()
            return response.status, dict(response.getheaders()), response.read()
        finally:
            connection.close()

    def push(self, table: dict[str, Any], token: str = TOKEN) -> tuple[int, Any]:
        status, _, raw = self.request(
            "PUT", ROUTES_PATH, json.dumps(table).encode(), {"Authorization": f"Bearer {token}"}
        )
        return status, json.loads(raw)


@pytest.fixture(scope="module")
def versions(tmp_path_factory) -> Iterator[dict[str, Any]]:
    """Versions 1 and 2 of the model 'digits', each a real serving process."""
    directory = tmp_path_factory.mktemp("router")
    artifact = mlp_artifact(directory)
    with (
        serving(directory, {**serving_spec(artifact), "version": "1"}) as one,
        serving(directory, serving_spec(artifact)) as two,
    ):
        yield {"1": one, "2": two}


@contextmanager
def router() -> Iterator[RunningRouter]:
    with RunningRouter() as running:
        yield running


def table(
    versions: dict[str, Any], candidate: int, generation: int = 1, **extra: Any
) -> dict[str, Any]:
    return {
        "generation": generation,
        "versions": [
            {"version": "2", "weight": candidate, "endpoints": [f"127.0.0.1:{versions['2'].port}"]},
            {
                "version": "1",
                "weight": 100 - candidate,
                "endpoints": [f"127.0.0.1:{versions['1'].port}"],
            },
        ],
        **extra,
    }


def samples(running: RunningRouter, name: str) -> dict[tuple, float]:
    """The router's metric `name`: value by its labels' values (sorted by label name)."""
    found = {}
    for family in text_string_to_metric_families(text(f"http://127.0.0.1:{running.port}/metrics")):
        for sample in family.samples:
            if sample.name == name:
                found[tuple(value for _, value in sorted(sample.labels.items()))] = sample.value
    return found


def answered_by(running: RunningRouter, count: int, headers: dict | None = None) -> Counter:
    """Which version answered each of `count` inference requests on one keep-alive
    connection (as a pooled client sends them)."""
    connection = http.client.HTTPConnection("127.0.0.1", running.port, timeout=30)
    seen: Counter = Counter()
    try:
        for _ in range(count):
            connection.request("POST", "/v2/models/digits/infer", body=BODY, headers=headers or {})
            response = connection.getresponse()
            response.read()
            assert response.status == 200
            seen[response.getheader("X-Model-Version")] += 1
    finally:
        connection.close()
    return seen


# Exact in every 100 requests (tests/unit/test_router_table.py over 2,000 picks at many
# weights); here through real processes, 2,000 requests at the middle weight.
@pytest.mark.parametrize(("weight", "requests"), [(10, 400), (25, 2000), (50, 400)])
def test_the_served_share_is_the_weight(versions, weight, requests):
    with router() as running:
        assert running.push(table(versions, weight))[0] == 200
        seen = answered_by(running, requests)
        served = samples(running, "torchyard_router_requests_total")
    wanted = requests * weight // 100
    assert seen["2"] == wanted and seen["1"] == requests - wanted
    # The router's own counters say the same: what status.weight will report.
    assert served == {
        ("200", "digits", "2"): wanted,
        ("200", "digits", "1"): requests - wanted,
    }


def test_a_session_header_sticks_to_one_version(versions):
    with router() as running:
        running.push(table(versions, 50, stickyHeader="X-Session"))
        chosen = set()
        for user in (f"user-{i}" for i in range(12)):
            seen = answered_by(running, 5, {"X-Session": user})
            assert len(seen) == 1, (user, seen)
            chosen |= set(seen)
        assert chosen == {"1", "2"}  # sessions spread over both versions


def test_binary_bodies_pass_through_unparsed(versions):
    import tritonclient.http as http

    with router() as running:
        running.push(table(versions, 50))
        client = http.InferenceServerClient(url=f"127.0.0.1:{running.port}")
        batch = np.ones((3, FEATURES), dtype=np.float32)
        tensor = http.InferInput("input", list(batch.shape), "FP32")
        tensor.set_data_from_numpy(batch)
        result = client.infer("digits", [tensor])
    with torch.no_grad():
        expected = small_mlp()(torch.from_numpy(batch)).numpy()
    np.testing.assert_allclose(result.as_numpy("output"), expected, atol=1e-5)


def test_the_routes_api_wants_the_token_and_never_goes_back_a_generation(versions):
    with router() as running:
        assert running.push(table(versions, 10), token="wrong")[0] == 401
        assert running.request("GET", ROUTES_PATH)[0] == 401
        assert running.request("GET", "/_torchyard/ready")[0] == 503
        status, _, raw = running.request("POST", "/v2/models/digits/infer", BODY)
        assert status == 503 and "no version of model 'digits'" in json.loads(raw)["error"]

        assert running.push(table(versions, 10, generation=5))[0] == 200
        assert running.request("GET", "/_torchyard/ready")[0] == 200
        status, refused = running.push(table(versions, 90, generation=4))
        assert status == 409 and "older than the current 5" in refused["error"]
        status, refused = running.push({**table(versions, 90), "generation": "x"})
        assert status == 400 and "generation" in refused["error"]
        headers = {"Authorization": f"Bearer {TOKEN}"}
        current = json.loads(running.request("GET", ROUTES_PATH, headers=headers)[2])
        assert current["generation"] == 5 and current["versions"][0]["weight"] == 10


def test_an_endpoint_that_went_away_costs_the_client_nothing(versions):
    gone = f"127.0.0.1:{free_port()}"  # nothing listens there
    with router() as running:
        routes = table(versions, 50)
        routes["versions"][0]["endpoints"].insert(0, gone)
        routes["versions"][1]["endpoints"].append(gone)
        running.push(routes)
        seen = answered_by(running, 100)
        assert sum(seen.values()) == 100  # every request answered 200
        retries = samples(running, "torchyard_router_retries_total")
        assert retries[("digits", "2")] >= 1 and retries[("digits", "1")] >= 1

        # Concurrent requests each try every endpoint: none is skipped for another's turn.
        with ThreadPoolExecutor(16) as pool:
            statuses = list(pool.map(lambda _: _infer(running)[0], range(200)))
        assert statuses == [200] * 200

        # A version whose every endpoint is gone: its share goes to the other one.
        routes["versions"][0]["endpoints"] = [gone]
        routes["generation"] = 2
        running.push(routes)
        assert answered_by(running, 20) == Counter({"1": 20})


def _infer(running: RunningRouter, headers: dict | None = None) -> tuple[int, dict]:
    status, answer, _ = running.request("POST", "/v2/models/digits/infer", BODY, headers)
    return status, answer


def test_only_inference_requests_are_weighed_and_counted(versions):
    with router() as running:
        running.push(table(versions, 50))
        seen: Counter = Counter()
        for _ in range(40):
            assert running.request("GET", "/v2/health/ready")[0] == 200
            status, headers = _infer(running)
            assert status == 200
            seen[headers["X-Model-Version"]] += 1
        assert seen == Counter({"1": 20, "2": 20})
        served = samples(running, "torchyard_router_requests_total")
        assert sum(served.values()) == 40


def test_compressed_bodies_pass_through_as_sent(versions):
    import tritonclient.http as http

    with router() as running:
        running.push(table(versions, 50))
        client = http.InferenceServerClient(url=f"127.0.0.1:{running.port}")
        batch = np.ones((2, FEATURES), dtype=np.float32)
        for algorithm in ("gzip", "deflate"):
            tensor = http.InferInput("input", list(batch.shape), "FP32")
            tensor.set_data_from_numpy(batch)
            result = client.infer("digits", [tensor], request_compression_algorithm=algorithm)
            assert result.as_numpy("output").shape == (2, 3)
        status, _, raw = running.request(
            "POST", "/v2/models/digits/infer", b"not gzip", {"Content-Encoding": "gzip"}
        )
        assert status == 400 and "cannot be read" in json.loads(raw)["error"]


def test_a_body_over_the_limit_is_the_protocols_413(versions):
    small = Router("digits", TOKEN, max_body_bytes=1024)
    with RunningRouter(router=small) as running:
        running.push(table(versions, 50))
        status, _, raw = running.request("POST", "/v2/models/digits/infer", b"x" * 4096)
        assert status == 413 and "error" in json.loads(raw)


def test_a_router_given_only_the_tokens_digest_takes_routes_from_the_token(versions):
    from torchyard.router.proxy import token_digest

    with RunningRouter(router=Router("digits", token_sha256=token_digest(TOKEN))) as running:
        assert running.push(table(versions, 50), token=token_digest(TOKEN))[0] == 401
        assert running.push(table(versions, 50))[0] == 200
    with pytest.raises(ValueError, match="SHA-256"):
        Router("digits", token_sha256="not-hex")
