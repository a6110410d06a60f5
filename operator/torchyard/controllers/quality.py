"""Quality analysis's I/O: the reference request (spec.rollout.analysis.quality) sent to
one ready pod of the analysed version and one of the serving version, when an analysis
is made, and their answers compared (torchyard.plans.rollout.quality).

The pods run a tenant's image: each exchange is bounded like every other read from a pod
(torchyard.controllers.podhttp: 4 MiB, 5 s, no redirects, JSON depth checked first).
Both pods are asked at once, so an analysis waits at most one exchange's limit.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping, Sequence
from typing import Any

import aiohttp

from torchyard.api.modelversion import QualitySpec
from torchyard.controllers import podhttp
from torchyard.controllers.podhttp import Refused
from torchyard.plans.rollout import Compared, NotCompared, compare, output_rows, reference_request
from torchyard.plans.rollout.model import pod_ready
from torchyard.resources.serving import PORT

LIMITS = podhttp.Limits(max_bytes=4 * 1024 * 1024, connect=1.0, total=5.0)

Pods = Sequence[Mapping[str, Any]]


async def compare_versions(
    session: aiohttp.ClientSession,
    spec: QualitySpec,
    model: str,
    analysed: Pods,
    baseline: Pods | None,
    baseline_version: str | None,
    port: int = PORT,
) -> Compared:
    """The analysed version's score on the reference request, or why there is none.
    `baseline` None: no version to compare with (the watch after promotion)."""
    analysed_ip = _ready_ip(analysed)
    if analysed_ip is None:
        return NotCompared("no ready pod of the analysed version to send it to", "Inconclusive")
    needs_baseline = spec.metric != "accuracy"
    if needs_baseline and baseline is None:
        return NotCompared(
            f"metric {spec.metric} compares with the serving version during a rollout; after "
            "promotion the version replaced serves no pods (metric accuracy is judged then)",
            None,
        )
    baseline_ip = _ready_ip(baseline or ()) if needs_baseline else None
    if needs_baseline and baseline_ip is None:
        return NotCompared(
            f"no ready pod of version {baseline_version} to compare with", "Inconclusive"
        )
    body = reference_request(spec)
    asked = [ask(session, analysed_ip, model, body, port)]
    if baseline_ip is not None:
        asked.append(ask(session, baseline_ip, model, body, port))
    answers = await asyncio.gather(*asked)
    refused = [_refused_as_invalid(answer) for answer in answers]
    if refused[0] and (baseline_ip is None or refused[1]):
        # Refused by every version asked: the request is wrong, not the version.
        return NotCompared(
            f"the reference request is refused as invalid ({_reason(answers[0])}): "
            "fix spec.rollout.analysis.quality (inputs, output) to match the model's "
            f"(GET /v2/models/{model} lists them)",
            "Inconclusive",
        )
    return await asyncio.to_thread(_score, spec, answers, baseline_version)


def _score(spec: QualitySpec, answers: list[Any], baseline_version: str | None) -> Compared:
    """The answers read and compared; in a thread, as reading up to 4 MiB of JSON and
    scoring it takes tens of milliseconds."""
    mine = _rows(answers[0], spec)
    theirs = _rows(answers[1], spec) if len(answers) > 1 else None
    if isinstance(mine, NotCompared):
        shared = isinstance(theirs, NotCompared) and theirs.reason == mine.reason
        if shared or (theirs is None and "no output named" in mine.reason):
            # Every version answers alike: the spec asks for what the model has not.
            return NotCompared(
                f"{mine.reason}: fix spec.rollout.analysis.quality (output, inputs)",
                "Inconclusive",
            )
        return mine
    if isinstance(theirs, NotCompared):
        return NotCompared(f"version {baseline_version}'s answer: {theirs.reason}", "Inconclusive")
    return compare(spec, mine, theirs)


async def ask(
    session: aiohttp.ClientSession, pod_ip: str, model: str, body: Any, port: int = PORT
) -> Any | Refused:
    """A pod's JSON answer to the inference request `body`, or why there is none."""
    url = podhttp.pod_url(pod_ip, port, f"/v2/models/{model}/infer")
    if isinstance(url, Refused):
        return url
    answer = await podhttp.post_json(session, url, body, LIMITS)
    return answer if isinstance(answer, Refused) else podhttp.loads(answer)


def _rows(answer: Any, spec: QualitySpec) -> list[list[float]] | NotCompared:
    """The rows of one answer; an unusable answer is the version's fault (Fail), no
    answer at all (a pod starting or stopping) is no verdict."""
    if isinstance(answer, Refused):
        verdict = "Fail" if answer.answered else "Inconclusive"
        return NotCompared(f"no usable answer to the reference request: {answer.reason}", verdict)
    rows = output_rows(answer, spec.output, spec.rows)
    if isinstance(rows, str):
        return NotCompared(f"the answer to the reference request: {rows}", "Fail")
    return rows


def _refused_as_invalid(answer: Any) -> bool:
    return isinstance(answer, Refused) and answer.status in (400, 404, 422)


def _reason(answer: Any) -> str:
    return answer.reason if isinstance(answer, Refused) else ""


def _ready_ip(pods: Pods) -> str | None:
    """The IP of the first ready pod by name (the same pod each time, while it lasts)."""
    ready = sorted(
        (pod for pod in pods if pod_ready(pod)),
        key=lambda pod: pod["metadata"]["name"],
    )
    for pod in ready:
        ip = (pod.get("status") or {}).get("podIP")
        if ip:
            return str(ip)
    return None
