"""A real server on loopback against oversized, slow, malformed and flooding clients: it
stays up, answers each abuse with its code, and a normal client keeps being answered.

The limits are set small (as spec.serving.env would) so that each one is reached with
little traffic; benchmarks/serving_abuse.py measures the same abuse at the defaults.
"""

from __future__ import annotations

import contextlib
import http.client
import json
import math
import random
import select
import socket
import struct
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path

import pytest
import torch

from tests.workload.serving import (
    FEATURES,
    call,
    infer_body,
    mlp_artifact,
    serving,
    serving_spec,
    text,
)
from torchyard.api.modelversion import AnalysisSpec
from torchyard.plans.rollout import Counters, analyse, measure
from torchyard.storage import describe
from torchyard.workloads.serve.limits import Limits

# TorchScript is deprecated in torch 2.15 but the simplest way to ship a model of any shape.
pytestmark = pytest.mark.filterwarnings("ignore:`torch.jit.*deprecated:FutureWarning")

LIMITS = Limits(
    max_body_bytes=64 << 10,
    max_rows=16,
    max_elements=16 * FEATURES,
    max_json_depth=8,
    max_queue=4,
    max_buffered_bytes=256 << 10,
    header_timeout_s=1.0,
    body_timeout_s=1.0,
    retry_after_s=2,
)
INFER = "/v2/models/digits/infer"


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    directory = tmp_path_factory.mktemp("abuse")
    with serving(directory, serving_spec(mlp_artifact(directory)), limits=LIMITS) as running:
        yield running


def _good(server) -> int:
    return server.infer(infer_body(torch.zeros(2, FEATURES)))[0]


def _request(method: str, path: str, body: bytes, headers: dict[str, str] | None = None) -> bytes:
    head = f"{method} {path} HTTP/1.1\r\nHost: test\r\n"
    fields = {"Content-Type": "application/json", "Content-Length": str(len(body))}
    for name, value in {**fields, **(headers or {})}.items():
        head += f"{name}: {value}\r\n"
    return head.encode() + b"\r\n" + body


@pytest.fixture
def connect(server) -> Iterator:
    opened: list[socket.socket] = []

    def open_socket(timeout: float = 10.0) -> socket.socket:
        sock = socket.create_connection(("127.0.0.1", server.port), timeout=timeout)
        opened.append(sock)
        return sock

    yield open_socket
    for sock in opened:
        sock.close()


def _answer(sock: socket.socket) -> tuple[int, dict[str, str], bytes]:
    response = http.client.HTTPResponse(sock)
    response.begin()
    return response.status, dict(response.getheaders()), response.read()


def _closed_by_server(sock: socket.socket, within: float) -> bool:
    """Whether the server closes the connection (EOF or reset) within `within` seconds."""
    sock.settimeout(within)
    try:
        while sock.recv(65536):
            pass
    except TimeoutError:
        return False
    except ConnectionError:
        pass
    return True


# -- oversized ---------------------------------------------------------------------------


def test_an_oversized_body_is_413_before_it_is_sent(server, connect):
    sock = connect()
    # Only the headers: the server answers from the declared length, reading nothing.
    sock.sendall(_request("POST", INFER, b"", {"Content-Length": str(1 << 30)}))
    status, _, body = _answer(sock)
    assert status == 413
    assert "TORCHYARD_MAX_BODY_BYTES" in json.loads(body)["error"]
    assert _good(server) == 200


def test_an_oversized_chunked_body_is_413_once_it_passes_the_limit(server, connect):
    sock = connect()
    head = f"POST {INFER} HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n".encode()
    chunk = b"[" + b"0," * (16 << 10)
    sock.sendall(head)
    status = None
    for _ in range(8):  # 8 x 32 KiB: past the 64 KiB limit
        try:
            sock.sendall(f"{len(chunk):x}\r\n".encode() + chunk + b"\r\n")
        except ConnectionError:
            break  # the server answered and stopped reading
    status, _, body = _answer(sock)
    assert status == 413 and "TORCHYARD_MAX_BODY_BYTES" in json.loads(body)["error"]
    assert _good(server) == 200


@pytest.mark.parametrize(
    ("rows", "words"),
    [(LIMITS.max_rows + 1, "TORCHYARD_MAX_ROWS"), (10**30, "TORCHYARD_MAX_ROWS")],
)
def test_too_many_rows_is_413_before_any_value_is_decoded(server, rows, words):
    # A shape that promises more rows than allowed is refused from the shape alone.
    body = {"inputs": [{"name": "input", "shape": [rows, FEATURES], "datatype": "FP32"}]}
    body["inputs"][0]["data"] = [0.0] * FEATURES
    status, response = server.infer(body)
    assert status == 413 and words in response["error"]


def test_too_many_values_is_413(tmp_path):
    limits = Limits(max_elements=3 * FEATURES)
    with serving(tmp_path, serving_spec(mlp_artifact(tmp_path)), limits=limits) as server:
        status, response = server.infer(infer_body(torch.zeros(4, FEATURES)))
        assert status == 413 and "TORCHYARD_MAX_ELEMENTS" in response["error"]
        assert server.infer(infer_body(torch.zeros(3, FEATURES)))[0] == 200


# -- malformed ---------------------------------------------------------------------------


def _tensor(data, datatype="FP32", shape=(1, FEATURES)):
    return {"inputs": [{"name": "input", "shape": list(shape), "datatype": datatype, "data": data}]}


def _raw_tensor(data: str) -> bytes:
    return (
        '{"inputs": [{"name": "input", "shape": [1, 8], "datatype": "FP32", "data": ' + data + "}]}"
    ).encode()


MALFORMED = [
    ("NaN", _raw_tensor("[NaN, 0, 0, 0, 0, 0, 0, 0]"), 400, "NaN is not a JSON number"),
    ("Infinity", _raw_tensor("[Infinity, 0, 0, 0, 0, 0, 0, 0]"), 400, "Infinity is not"),
    ("-Infinity", _raw_tensor("[-Infinity, 0, 0, 0, 0, 0, 0, 0]"), 400, "-Infinity is not"),
    ("a number past float", _raw_tensor("[1e999, 0, 0, 0, 0, 0, 0, 0]"), 400, "non-finite"),
    ("FP32 overflow", _raw_tensor("[1e39, 0, 0, 0, 0, 0, 0, 0]"), 400, "range of FP32"),
    ("NaN in the id", b'{"id": NaN, "inputs": []}', 400, "NaN is not a JSON number"),
    ("deep data", _raw_tensor("[" * 50 + "]" * 50), 400, "TORCHYARD_MAX_JSON_DEPTH"),
    ("deep parameters", b'{"parameters": ' + b'{"a": ' * 5000, 400, "MAX_JSON_DEPTH"),
    ("random bytes", bytes(random.Random(7).randrange(256) for _ in range(4096)), 400, "JSON"),
    ("invalid UTF-8", b'{"id": "\xff\xfe"}', 400, "not JSON"),
    ("truncated JSON", _raw_tensor("[0, 0, 0")[:-3], 400, "not JSON"),
    ("booleans as FP32", json.dumps(_tensor([True] * 8)).encode(), 400, "booleans"),
    ("a boolean among FP32", json.dumps(_tensor([1.0, False] * 4)).encode(), 400, "booleans"),
    ("nested booleans", json.dumps(_tensor([[0.5] * 7 + [True]])).encode(), 400, "booleans"),
    ("a string for a number", json.dumps(_tensor(["1.5"] + [0] * 7)).encode(), 400, "FP32"),
    ("null for a number", json.dumps(_tensor([None] * 8)).encode(), 400, "FP32"),
    ("an object for a number", json.dumps(_tensor([{}] * 8)).encode(), 400, "FP32"),
    ("more values than the shape", json.dumps(_tensor([0.0] * 9)).encode(), 400, "9 values"),
    ("fewer values", json.dumps(_tensor([0.0] * 7)).encode(), 400, "7 values"),
    ("a negative dimension", json.dumps(_tensor([0.0] * 8, shape=(-1, 8))).encode(), 400, "shape"),
    ("a float dimension", json.dumps(_tensor([0.0] * 8, shape=(1.0, 8))).encode(), 400, "shape"),
    ("shape not a list", _raw_tensor("[0]").replace(b"[1, 8]", b"8"), 400, "shape"),
    ("inputs not a list", b'{"inputs": {"name": "input"}}', 400, "'inputs'"),
    ("a list, not an object", b"[1, 2, 3]", 400, "JSON object"),
    ("an empty body", b"", 400, "not JSON"),
]


@pytest.mark.parametrize(
    ("body", "status", "words"),
    [case[1:] for case in MALFORMED],
    ids=[case[0] for case in MALFORMED],
)
def test_malformed_requests_are_the_clients_mistake(server, body, status, words):
    got, response = call("POST", f"{server.model_url}/infer", body)
    assert got == status, response
    assert set(response) == {"error"} and words in response["error"]
    assert _good(server) == 200


def _binary(
    header: dict | None = None,
    tail: bytes = struct.pack("<8f", *range(8)),
    length: str | None = None,
) -> tuple[bytes, str]:
    """A body of the binary data extension and its Inference-Header-Content-Length: by
    default a valid one-row FP32 request."""
    if header is None:
        size = {"binary_data_size": len(tail)}
        header = {"inputs": [{**_tensor(None)["inputs"][0], "parameters": size}]}
        del header["inputs"][0]["data"]
    raw = json.dumps(header).encode()
    return raw + tail, str(len(raw)) if length is None else length


def _binary_input(**fields) -> dict:
    tensor = {"name": "input", "shape": [1, FEATURES], "datatype": "FP32", **fields}
    return {"inputs": [tensor]}


def _sized(size) -> dict:
    return _binary_input(parameters={"binary_data_size": size})


_BOTH = _binary_input(data=[0] * 8, parameters={"binary_data_size": 32})
_NOT_A_FLAG = {**_sized(32), "parameters": {"binary_data_output": "yes"}}
BINARY_LIES = [
    ("a header length that is not a number", _binary(length="12abc"), "must be an integer"),
    ("a header length of 0 (raw binary)", _binary(length="0"), "not supported"),
    ("a header longer than the body", _binary(length="100000"), "cannot be longer"),
    ("a header length cutting the JSON", _binary(length="10"), "not JSON"),
    ("a size past the end", _binary(_sized(64)), "only 32 are left"),
    ("a size short of the shape", _binary(_sized(16), bytes(16)), "shape [1, 8] of FP32 needs 32"),
    ("bytes no input accounts for", _binary(_sized(32), bytes(40)), "8 bytes of binary data"),
    ("a negative size", _binary(_sized(-32)), "non-negative integer"),
    ("a size as a string", _binary(_sized("32")), "non-negative integer"),
    ("both data and a size", _binary(_BOTH), "both"),
    ("neither data nor a size", _binary(_binary_input()), "neither"),
    ("parameters not an object", _binary(_binary_input(parameters=[1])), "must be an object"),
    ("a NaN in the bytes", _binary(tail=struct.pack("<8f", math.nan, *range(7))), "NaN"),
    ("an infinity", _binary(tail=struct.pack("<8f", math.inf, *range(7))), "NaN or beyond"),
    ("binary_data_output not a flag", _binary(_NOT_A_FLAG), "true or false"),
]


@pytest.mark.parametrize(
    ("body", "words"),
    [(case[1], case[2]) for case in BINARY_LIES],
    ids=[case[0] for case in BINARY_LIES],
)
def test_binary_bodies_that_lie_are_400(server, body, words):
    raw, length = body
    got, response = _call_binary(server, raw, length)
    assert got == 400, response
    assert set(response) == {"error"} and words in response["error"], response
    assert _good(server) == 200


def _call_binary(server, raw: bytes, length: str) -> tuple[int, dict]:
    request = urllib.request.Request(
        f"{server.model_url}/infer",
        data=raw,
        method="POST",
        headers={"Inference-Header-Content-Length": length},
    )
    try:
        with urllib.request.urlopen(request, timeout=60) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read())


def test_a_valid_binary_body_is_answered(server):
    got, response = _call_binary(server, *_binary())
    assert got == 200 and response["outputs"][0]["shape"] == [1, 3], response


def test_fuzzed_binary_bodies_get_an_answer_and_never_a_server_error(server):
    rng = random.Random(2027)
    raw, length = _binary()
    answers = []
    for _ in range(200):
        body = bytearray(raw)
        for _ in range(rng.randrange(1, 4)):
            where = rng.randrange(len(body))
            body[where : where + rng.randrange(1, 4)] = rng.randbytes(rng.randrange(0, 4))
        declared = str(int(length) + rng.randrange(-3, 4)) if rng.random() < 0.3 else length
        status, response = _call_binary(server, bytes(body), declared)
        answers.append(status)
        assert status in (200, 400), (status, bytes(body), declared, response)
    assert answers.count(400) > 100
    assert _good(server) == 200


def test_a_byte_stream_that_is_not_http_is_refused_and_closed(server, connect):
    sock = connect()
    sock.sendall(bytes(random.Random(3).randrange(256) for _ in range(2048)))
    status, _, _ = _answer(sock)
    assert status == 400
    assert _closed_by_server(sock, within=10)
    assert _good(server) == 200


def _mutations(seed: int, count: int) -> Iterator[bytes]:
    """Valid requests broken at random: flipped, inserted and deleted bytes, cut short,
    values swapped for other JSON types."""
    rng = random.Random(seed)
    valid = json.dumps(infer_body(torch.zeros(2, FEATURES), id="fuzz")).encode()
    others = [b"true", b"null", b'"x"', b"{}", b"[]", b"1e999", b"-0", b"[[[[1]]]]", b"NaN"]
    for _ in range(count):
        body = bytearray(valid)
        for _ in range(rng.randrange(1, 6)):
            where = rng.randrange(len(body))
            match rng.randrange(5):
                case 0:
                    body[where] = rng.randrange(256)
                case 1:
                    body[where:where] = rng.randbytes(rng.randrange(1, 8))
                case 2:
                    del body[where : where + rng.randrange(1, 8)]
                case 3:
                    body = body[:where]
                case _:
                    body = body.replace(b"0.0", rng.choice(others), 1)
            if not body:
                break
        yield bytes(body)


def test_fuzzed_requests_get_an_answer_and_never_a_server_error(server):
    answers = []
    for body in _mutations(seed=2026, count=300):
        status, response = call("POST", f"{server.model_url}/infer", body)
        answers.append(status)
        assert status in (200, 400, 413), (status, body, response)
        assert status == 200 or set(response) == {"error"}
    assert answers.count(400) > 200  # the mutations broke most requests
    assert _good(server) == 200


# -- models with other datatypes and outputs -------------------------------------------


class _Log(torch.nn.Module):
    """FP16 in, FP32 out: log(x), so 0 and negative inputs give -inf and NaN."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.log(x.float())


def _torchscript(directory: Path, module: torch.nn.Module, inputs: list[dict]) -> dict:
    directory.mkdir()
    torch.jit.script(module).save(str(directory / "model.pt"))
    (directory / "manifest.json").write_text(json.dumps({"signature": {"inputs": inputs}}))
    return serving_spec(describe(f"file://{directory}"), format="torchscript")


@pytest.fixture(scope="module")
def fp16_server(tmp_path_factory):
    directory = tmp_path_factory.mktemp("fp16")
    inputs = [{"name": "input", "datatype": "FP16", "shape": [-1, 4]}]
    with serving(directory, _torchscript(directory / "log", _Log(), inputs)) as running:
        yield running


def test_fp16_values_that_overflow_are_refused(fp16_server):
    status, response = fp16_server.infer(_tensor([1.0, 2.0, 65504.0, 70000.0], "FP16", (1, 4)))
    assert status == 400
    assert "range of FP16" in response["error"] and "65504" in response["error"]
    ok = fp16_server.infer(_tensor([1.0, 2.0, 65504.0, 0.5], "FP16", (1, 4)))
    assert ok[0] == 200


def test_non_finite_outputs_are_strings_never_bare_nan(fp16_server):
    request = json.dumps(_tensor([1.0, 0.0, -1.0, 2.0], "FP16", (1, 4))).encode()
    connection = http.client.HTTPConnection("127.0.0.1", fp16_server.port, timeout=30)
    connection.request("POST", INFER, request, {"Content-Type": "application/json"})
    raw = connection.getresponse().read()
    # Strict JSON: a bare NaN or Infinity would fail here.
    response = json.loads(raw, parse_constant=lambda name: pytest.fail(f"bare {name}"))
    data = response["outputs"][0]["data"]
    assert data[0] == 0.0 and data[3] == pytest.approx(0.6931, abs=1e-3)
    assert data[1:3] == ["-Infinity", "NaN"]


# -- slow ---------------------------------------------------------------------------------


def test_slow_headers_are_cut_off_and_others_are_answered(server, connect):
    slow = [connect() for _ in range(20)]
    for sock in slow:
        sock.sendall(f"POST {INFER} HTTP/1.1\r\nHost: t\r\n".encode())
    began = time.monotonic()
    answered = []
    # A slowloris: one header byte now and then, never the end of the headers.
    while time.monotonic() - began < 2 * LIMITS.header_timeout_s:
        for sock in slow:
            with contextlib.suppress(ConnectionError):
                sock.sendall(b"X")
        answered.append(_good(server))
        time.sleep(0.1)
    assert all(_closed_by_server(sock, within=10) for sock in slow)
    assert set(answered) == {200}


def test_a_slow_body_is_408_and_closed(server, connect):
    sock = connect()
    body = json.dumps(infer_body(torch.zeros(1, FEATURES))).encode()
    sock.sendall(_request("POST", INFER, body)[: -len(body) // 2])  # half the body, then stall
    began = time.monotonic()
    status, _, response = _answer(sock)
    assert status == 408 and "TORCHYARD_BODY_TIMEOUT_SECONDS" in json.loads(response)["error"]
    assert time.monotonic() - began < LIMITS.body_timeout_s + 10
    assert _closed_by_server(sock, within=10)
    assert _good(server) == 200


def test_a_slow_body_cannot_be_trickled_past_the_body_timeout(server, connect):
    sock = connect()
    body = b"[" + b"0," * 4000
    sock.sendall(_request("POST", INFER, b"", {"Content-Length": str(len(body) + 1)}))
    began = time.monotonic()
    for byte in body:  # one byte every 10 ms: a drip, never a stall
        if select.select([sock], [], [], 0)[0]:
            break  # the server has answered
        sock.sendall(bytes([byte]))
        time.sleep(0.01)
    assert time.monotonic() - began < LIMITS.body_timeout_s + 10
    assert _answer(sock)[0] == 408


# -- flooding -----------------------------------------------------------------------------


class _Slow(torch.nn.Module):
    """A model that takes a while per row: a version too slow for its traffic."""

    def __init__(self) -> None:
        super().__init__()
        self.weight = torch.nn.Parameter(torch.eye(256) * 0.5)
        self.head = torch.nn.Linear(256, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        hidden = x.repeat(1, 32)
        for _ in range(400):
            hidden = torch.tanh(hidden @ self.weight)
        return self.head(hidden)


@pytest.fixture(scope="module")
def slow_server(tmp_path_factory):
    directory = tmp_path_factory.mktemp("slow")
    inputs = [{"name": "input", "datatype": "FP32", "shape": [-1, FEATURES]}]
    spec = _torchscript(directory / "slow", _Slow(), inputs)
    spec["serving"] = {"batching": {"maxBatchSize": 1, "maxQueueDelayMs": 0}}
    with serving(directory, spec, limits=LIMITS) as running:
        yield running


def test_a_flood_past_the_queue_is_503_with_retry_after(slow_server):
    def one(_: int) -> tuple[int, dict[str, str], bytes]:
        connection = http.client.HTTPConnection("127.0.0.1", slow_server.port, timeout=120)
        body = json.dumps(infer_body(torch.zeros(1, FEATURES))).encode()
        connection.request("POST", INFER, body, {"Content-Type": "application/json"})
        response = connection.getresponse()
        return response.status, dict(response.getheaders()), response.read()

    before = Counters.parse(text(f"{slow_server.url}/metrics"))
    with ThreadPoolExecutor(48) as pool:
        answers = list(pool.map(one, range(48)))
    after = Counters.parse(text(f"{slow_server.url}/metrics"))
    statuses = [status for status, _, _ in answers]
    assert set(statuses) == {200, 503}, statuses
    refused = [(headers, body) for status, headers, body in answers if status == 503]
    assert all(headers["Retry-After"] == "2" for headers, _ in refused)
    assert all("TORCHYARD_MAX_QUEUE" in json.loads(body)["error"] for _, body in refused)
    # Never more waiting than the queue holds, plus the pass in progress and the requests
    # parsed while it ran: everything else was refused at once.
    assert statuses.count(200) >= LIMITS.max_queue
    # Overload is the version's: the analysis counts it (docs/serving.md).
    window = measure({"pod": before}, {"pod": after})
    assert (window.requests, window.errors) == (48, statuses.count(503))
    assert slow_server.infer(infer_body(torch.zeros(1, FEATURES)))[0] == 200


def test_bodies_past_the_byte_budget_are_503_until_the_holder_is_done(tmp_path):
    limits = Limits(max_buffered_bytes=4096, body_timeout_s=2.0, retry_after_s=1)
    with serving(tmp_path, serving_spec(mlp_artifact(tmp_path)), limits=limits) as server:
        holder = socket.create_connection(("127.0.0.1", server.port), timeout=10)
        try:
            # 3 KiB of a 6 KiB body arrive, then nothing: the server holds 3 KiB.
            holder.sendall(_request("POST", INFER, b"", {"Content-Length": "6144"}))
            holder.sendall(b" " * 3072)
            time.sleep(0.5)
            body = json.dumps(infer_body(torch.zeros(4, FEATURES), id="x" * 1500)).encode()
            status, response = call("POST", f"{server.model_url}/infer", body)
            assert status == 503 and "TORCHYARD_MAX_BUFFERED_BYTES" in response["error"]
            assert _answer(holder)[0] == 408  # the holder times out and lets go
            assert call("POST", f"{server.model_url}/infer", body)[0] == 200
        finally:
            holder.close()


# -- all at once, and what the rollout analysis makes of it ------------------------------


def _abuse(server, stop: threading.Event) -> None:
    """Oversized, slow, malformed and deep requests in a loop until `stop`."""
    rng = random.Random(11)
    valid = json.dumps(infer_body(torch.zeros(1, FEATURES))).encode()
    while not stop.is_set():
        mutated = bytearray(valid)
        for _ in range(rng.randrange(1, 8)):
            mutated[rng.randrange(len(mutated))] = rng.randrange(256)
        for body in (bytes(mutated), b"[" * 5000, _raw_tensor("[NaN]"), b"0" * (80 << 10)):
            with contextlib.suppress(OSError):  # an oversized body may be cut off
                call("POST", f"{server.model_url}/infer", body)
        with socket.create_connection(("127.0.0.1", server.port), timeout=10) as sock:
            sock.sendall(f"POST {INFER} HTTP/1.1\r\nHost: t\r\nContent-Length: 99\r\n\r\n".encode())


def test_under_abuse_a_normal_client_is_answered_and_the_analysis_passes(server):
    before = Counters.parse(text(f"{server.url}/metrics"))
    stop = threading.Event()
    abusers = [threading.Thread(target=_abuse, args=(server, stop)) for _ in range(3)]
    for thread in abusers:
        thread.start()
    try:
        answers = [_good(server) for _ in range(60)]
    finally:
        stop.set()
        for thread in abusers:
            thread.join(timeout=60)
    after = Counters.parse(text(f"{server.url}/metrics"))
    assert answers == [200] * 60
    # Every abusive request was the client's mistake: not one counts against the version.
    window = measure({"pod": before}, {"pod": after})
    assert window.errors == 0 and window.requests >= 60
    verdict = analyse(window, AnalysisSpec(max_error_rate=0.01, min_request_count=50), _now())
    assert verdict.verdict == "Pass", verdict.message


def _now() -> datetime:
    return datetime.now(UTC)


@pytest.mark.parametrize("encoding", ["gzip", "deflate", "br", "x-unknown"])
def test_a_body_that_its_content_encoding_cannot_undo_is_400(server, encoding):
    request = urllib.request.Request(
        f"{server.model_url}/infer",
        data=b"this is not compressed",
        method="POST",
        headers={"Content-Encoding": encoding},
    )
    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(request, timeout=30)
    assert refused.value.code == 400
    assert set(json.loads(refused.value.read())) == {"error"}
    assert _good(server) == 200
