"""Quality analysis's reference request against real serving pods (the torchyard server
on 127.0.0.2-4, one port, as a Deployment's pods): a digits classifier trained here, the
same weights slightly perturbed, and the same classifier over-pruned. The controller's
comparison (torchyard.controllers.quality) passes the first and fails the second, and a
pod that answers garbage, or a reference request no version accepts, is said as such."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from typing import Any

import aiohttp
import pytest
from aiohttp import web

from tests.workload.compression import digits
from tests.workload.quality import BASE, over_pruned, perturbed, reference, trained
from tests.workload.serving import RunningServer, free_port, serving_spec
from torchyard.api.modelversion import QualitySpec
from torchyard.controllers import podhttp
from torchyard.controllers.quality import LIMITS, compare_versions
from torchyard.plans.rollout import NotCompared, Quality
from torchyard.workloads.artifacts import save_artifact

ROWS = 64


def _pod(name: str, ip: str) -> dict[str, Any]:
    return {
        "metadata": {"name": name},
        "status": {
            "phase": "Running",
            "podIP": ip,
            "conditions": [{"type": "Ready", "status": "True"}],
        },
    }


def _quality(metric: str, min_score: float, **extra: Any) -> QualitySpec:
    return QualitySpec.model_validate(reference(metric, min_score, ROWS, **extra))


@pytest.fixture(scope="module")
def pods(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[int, dict[str, str]]]:
    """Three versions' pods on one port: 1 (trained), 2 (perturbed), 3 (over-pruned)."""
    directory = tmp_path_factory.mktemp("quality")
    port = free_port()
    models = {"1": trained(), "2": perturbed(), "3": over_pruned()}
    hosts = {version: f"127.0.0.{index + 2}" for index, version in enumerate(models)}
    servers = []
    for version, model in models.items():
        artifact = save_artifact(f"file://{directory}/v{version}", model, base=BASE)
        spec = {**serving_spec(artifact), "version": version}
        servers.append(RunningServer(spec, host=hosts[version], port=port))
    for server in servers:
        server.__enter__()
    try:
        yield port, hosts
    finally:
        for server in servers:
            server.__exit__(None, None, None)


def _compare(spec: QualitySpec, port: int, analysed: str, baseline: str | None) -> Any:
    async def run() -> Any:
        async with podhttp.session(LIMITS, 4) as session:
            return await compare_versions(
                session,
                spec,
                "digits",
                [_pod("analysed-0", analysed)],
                None if baseline is None else [_pod("stable-0", baseline)],
                "1",
                port=port,
            )

    return asyncio.run(run())


def test_a_faithful_version_passes_and_an_over_pruned_one_fails(pods):
    port, hosts = pods
    agreement = _quality("agreement", 0.95)
    faithful = _compare(agreement, port, hosts["2"], hosts["1"])
    assert isinstance(faithful, Quality), faithful
    assert faithful.passed and faithful.score >= 0.98 and faithful.rows == ROWS
    pruned = _compare(agreement, port, hosts["3"], hosts["1"])
    assert isinstance(pruned, Quality) and not pruned.passed
    assert pruned.score < 0.7
    cosine = _compare(_quality("cosine", 0.99), port, hosts["3"], hosts["1"])
    assert isinstance(cosine, Quality) and not cosine.passed
    assert cosine.lowest_row is not None and cosine.lowest_row < cosine.score


def test_accuracy_compares_with_labels_and_needs_no_serving_version(pods):
    port, hosts = pods
    labels = digits("test").labels[:ROWS].tolist()
    accuracy = _quality("accuracy", 0.9, labels=labels)
    trained = _compare(accuracy, port, hosts["1"], None)
    assert isinstance(trained, Quality) and trained.passed, trained
    pruned = _compare(accuracy, port, hosts["3"], None)
    assert isinstance(pruned, Quality) and not pruned.passed


def test_a_reference_request_no_version_accepts_is_the_specs_mistake(pods):
    port, hosts = pods
    rows = digits("test").features[:4, :10]  # 10 features where the model takes 64
    wrong = QualitySpec.model_validate(
        {
            "metric": "agreement",
            "minScore": 0.9,
            "inputs": [
                {
                    "name": "input",
                    "datatype": "FP32",
                    "shape": [4, 10],
                    "data": rows.reshape(-1).tolist(),
                }
            ],
        }
    )
    compared = _compare(wrong, port, hosts["2"], hosts["1"])
    assert isinstance(compared, NotCompared) and compared.verdict == "Inconclusive"
    assert "fix spec.rollout.analysis.quality (inputs, output)" in compared.reason


def test_no_ready_serving_pod_is_no_verdict(pods):
    port, hosts = pods
    compared = _compare(_quality("agreement", 0.9), port, hosts["2"], "127.0.0.9")
    assert isinstance(compared, NotCompared) and compared.verdict == "Inconclusive"
    assert "version 1's answer" in compared.reason


class Hostile:
    """A pod that answers the reference request with `body` (a tenant's image)."""

    def __init__(self, body: bytes, status: int = 200) -> None:
        self.body, self.status = body, status
        self.port = free_port()
        self._loop = asyncio.new_event_loop()
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        async def answer(request: web.Request) -> web.Response:
            return web.Response(body=self.body, status=self.status)

        app = web.Application()
        app.router.add_post("/v2/models/digits/infer", answer)
        runner = web.AppRunner(app)
        self._loop.run_until_complete(runner.setup())
        self._loop.run_until_complete(web.TCPSite(runner, "127.0.0.1", self.port).start())
        self._ready.set()
        self._loop.run_forever()
        self._loop.run_until_complete(runner.cleanup())

    def __enter__(self) -> Hostile:
        self._thread.start()
        self._ready.wait(10)
        return self

    def __exit__(self, *exc: object) -> None:
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)


@pytest.mark.parametrize(
    ("body", "status", "said"),
    [
        (b'{"outputs": [{"name": "output", "shape": [2, 10], "data": [1]}]}', 200, "2 rows"),
        (b"[" * 100_000, 200, "nested deeper"),
        (b"x" * (5 * 1024 * 1024), 200, "over the 4096 KiB limit"),
        (b"", 500, "answered HTTP 500"),
    ],
)
def test_an_analysed_pod_that_answers_garbage_fails_the_comparison(body, status, said):
    spec = _quality("accuracy", 0.9, labels=[0] * ROWS)
    with Hostile(body, status) as pod:

        async def run() -> Any:
            async with aiohttp.ClientSession() as session:
                return await compare_versions(
                    session, spec, "digits", [_pod("p", "127.0.0.1")], None, None, port=pod.port
                )

        compared = asyncio.run(run())
    assert isinstance(compared, NotCompared) and compared.verdict == "Fail", compared
    assert said in compared.reason


def test_no_ready_analysed_pod_is_no_verdict():
    spec = _quality("accuracy", 0.9, labels=[0] * ROWS)
    starting = _pod("a-0", "127.0.0.1") | {"status": {"phase": "Pending"}}

    async def run() -> Any:
        async with aiohttp.ClientSession() as session:
            return await compare_versions(session, spec, "digits", [starting], None, None)

    compared = asyncio.run(run())
    assert compared == NotCompared(
        "no ready pod of the analysed version to send it to", "Inconclusive"
    )


def test_an_output_no_version_has_is_the_specs_mistake_and_probes_stay_out_of_the_metrics(pods):
    port, hosts = pods
    before = [_requests(hosts[v], port) for v in ("1", "2")]
    wrong = _compare(_quality("agreement", 0.9, output="logits"), port, hosts["2"], hosts["1"])
    assert isinstance(wrong, NotCompared) and wrong.verdict == "Inconclusive", wrong
    assert "fix spec.rollout.analysis.quality (inputs, output)" in wrong.reason
    right = _compare(_quality("agreement", 0.9), port, hosts["2"], hosts["1"])
    assert isinstance(right, Quality)
    # Answered, but counted in neither pod's metrics: no analysis window sees them.
    assert [_requests(hosts[v], port) for v in ("1", "2")] == before


def _requests(host: str, port: int) -> float:
    from tests.workload.serving import text
    from torchyard.plans.rollout.analysis import read_counters

    counters = read_counters(text(f"http://{host}:{port}/metrics"))
    assert not isinstance(counters, str) and hasattr(counters, "requests")
    return float(counters.requests)
