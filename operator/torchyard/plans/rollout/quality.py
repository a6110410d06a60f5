"""Quality analysis: the analysed version's answers to a reference request, compared row
by row with the serving version's (cosine, agreement) or with labels (accuracy). Pure.

Error rates and latency cannot see a version that answers 200 with worse outputs (a badly
quantized or over-pruned model): Argo Rollouts, Flagger and KServe all share that blind
spot. Here the controller sends the request of spec.rollout.analysis.quality to one ready
pod of each version when an analysis is made (torchyard.controllers.quality), and this
module turns the two answers into a score that `analysis.analyse` holds against minScore.

The answers come from a tenant's image: anything but the output asked for, with the rows
asked for and a plausible number of values, is refused with the reason. A value that is
not a finite number (NaN, Infinity, a string) makes its row the worst possible in the
analysed version's answer (a model that answers NaN is broken), and makes the baseline's
answer unusable (no verdict from a broken reference).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from torchyard.api.modelversion import QualityMetric, QualityResult, QualitySpec
from torchyard.oip import ANALYSIS_REQUEST_ID

MAX_OUTPUT_VALUES = 1 << 18
"""Most values of an output compared (262,144: 512 rows of 512), so that reading and
scoring an answer stays in the tens of milliseconds."""


@dataclass(frozen=True)
class Quality:
    """The score of the analysed version's answer."""

    metric: QualityMetric
    score: float
    min_score: float
    rows: int
    lowest_row: float | None = None
    """The lowest cosine of one row (metric cosine)."""

    @property
    def passed(self) -> bool:
        return self.score >= self.min_score

    def describe(self) -> str:
        if self.metric == "cosine":
            figure = f"mean cosine {self.score:.4f} over {self.rows} reference rows"
            if self.lowest_row is not None:
                figure += f" (lowest row {self.lowest_row:.4f})"
        else:
            agreeing = round(self.score * self.rows)
            what = "agree with the serving version" if self.metric == "agreement" else "right"
            figure = f"{self.metric} {self.score:.2%} ({agreeing} of {self.rows} rows {what})"
        verdict = "below" if not self.passed else "at or above"
        shown = f"{self.min_score:.4f}" if self.metric == "cosine" else f"{self.min_score:.2%}"
        return f"{figure} {verdict} the minimum {shown}"

    @classmethod
    def from_status(cls, result: QualityResult) -> Quality:
        return cls(result.metric, result.score, result.min_score, result.rows, result.lowest_row)

    def to_status(self) -> QualityResult:
        return QualityResult(
            metric=self.metric,
            score=max(-1.0, min(1.0, self.score)) if math.isfinite(self.score) else -1.0,
            min_score=self.min_score,
            rows=self.rows,
            lowest_row=self.lowest_row,
        )


@dataclass(frozen=True)
class NotCompared:
    """Why no score could be had, and what that means for the verdict."""

    reason: str
    verdict: Literal["Fail", "Inconclusive"] | None
    """Fail: the analysed version's answer is unusable (its fault); Inconclusive: the
    baseline's is, or no pod could be asked; None: not compared here by design (said in
    the message, no effect on the verdict)."""


Compared = Quality | NotCompared


def reference_request(spec: QualitySpec) -> dict[str, Any]:
    """The Open Inference Protocol request body the controller sends to both versions."""
    inputs = []
    for tensor in spec.inputs:
        values: Sequence[Any] = tensor.texts if tensor.texts is not None else tensor.data or []
        if tensor.datatype == "BOOL":
            values = [bool(value) for value in values]
        elif tensor.datatype.startswith(("INT", "UINT")):
            # Whole numbers (the spec says so): a server refuses 101.0 for an INT64.
            values = [int(value) for value in values]
        inputs.append(
            {
                "name": tensor.name,
                "datatype": tensor.datatype,
                "shape": list(tensor.shape),
                "data": list(values),
            }
        )
    body: dict[str, Any] = {"id": ANALYSIS_REQUEST_ID, "inputs": inputs}
    if spec.output is not None:
        body["outputs"] = [{"name": spec.output}]
    return body


def output_rows(answer: Any, output: str | None, rows: int) -> list[list[float]] | str:
    """The rows of the output compared, from a pod's JSON answer, or why they cannot be
    had. Values that are not finite numbers are NaN here."""
    if not isinstance(answer, Mapping) or not isinstance(answer.get("outputs"), list):
        return "the answer has no outputs list"
    found = [
        o for o in answer["outputs"] if isinstance(o, Mapping) and (output in (None, o.get("name")))
    ]
    if not found:
        return f"the answer has no output named {output!r}"
    tensor = found[0]
    shape, data = tensor.get("shape"), tensor.get("data")
    if (
        not isinstance(shape, list)
        or not shape
        or not all(isinstance(size, int) and not isinstance(size, bool) for size in shape)
        or any(size < 0 for size in shape)
    ):
        return f"output {_name(tensor)} has no usable shape"
    if shape[0] != rows:
        return f"output {_name(tensor)} has {shape[0]} rows, {rows} were sent"
    width = math.prod(shape[1:])
    if not isinstance(data, list) or len(data) != rows * width:
        return f"output {_name(tensor)}'s data does not have the {rows * width} values of its shape"
    if len(data) > MAX_OUTPUT_VALUES:
        return f"output {_name(tensor)} has over {MAX_OUTPUT_VALUES} values"
    numbers = [_number(value) for value in data]
    return [numbers[row * width : (row + 1) * width] for row in range(rows)]


def compare(
    spec: QualitySpec,
    analysed: list[list[float]],
    baseline: list[list[float]] | None,
) -> Compared:
    """The analysed version's score: against the baseline's rows (cosine, agreement) or
    the spec's labels (accuracy)."""
    width = len(analysed[0]) if analysed else 0
    if spec.metric != "cosine" and width < 2:
        return NotCompared(
            f"metric {spec.metric} compares top classes, and the output has {width} value(s) "
            "per row: compare class scores (spec.rollout.analysis.quality.output) or use cosine",
            "Inconclusive",
        )
    if spec.metric == "accuracy":
        assert spec.labels is not None
        right = sum(_top(row) == label for row, label in zip(analysed, spec.labels, strict=True))
        return Quality("accuracy", right / len(analysed), spec.min_score, len(analysed))
    if baseline is None:
        return NotCompared("no answer of the serving version to compare with", "Inconclusive")
    if any(not math.isfinite(value) for row in baseline for value in row):
        return NotCompared(
            "the serving version's answer has values that are not finite numbers", "Inconclusive"
        )
    theirs = len(baseline[0]) if baseline else 0
    if width != theirs:
        return NotCompared(
            f"the version answers {width} values per row where the serving version answers "
            f"{theirs}: its outputs are not comparable (a client of both would break)",
            "Fail",
        )
    if spec.metric == "agreement":
        agree = sum(
            _top(mine) is not None and _top(mine) == _top(theirs)
            for mine, theirs in zip(analysed, baseline, strict=True)
        )
        return Quality("agreement", agree / len(analysed), spec.min_score, len(analysed))
    cosines = [_cosine(mine, theirs) for mine, theirs in zip(analysed, baseline, strict=True)]
    return Quality(
        "cosine", sum(cosines) / len(cosines), spec.min_score, len(cosines), min(cosines)
    )


def _top(row: list[float]) -> int | None:
    """The row's top class (the first of equal ones, as torch.argmax); None if any value
    is not a finite number (then it agrees with nothing)."""
    if not row or any(not math.isfinite(value) for value in row):
        return None
    return max(range(len(row)), key=row.__getitem__)


def _cosine(mine: list[float], theirs: list[float]) -> float:
    """Cosine similarity; -1 (the worst) when the analysed row is not finite."""
    if any(not math.isfinite(value) for value in mine):
        return -1.0
    # Each row scaled by its largest value first: products of values near 1e308 would
    # overflow, and the cosine does not change.
    mine, theirs = _scaled(mine), _scaled(theirs)
    dot = math.fsum(a * b for a, b in zip(mine, theirs, strict=True))
    norms = math.sqrt(math.fsum(a * a for a in mine)) * math.sqrt(math.fsum(b * b for b in theirs))
    if norms == 0.0:
        # Two zero rows say the same; one zero row says nothing of the other.
        return 1.0 if not any(mine) and not any(theirs) else 0.0
    cosine = dot / norms
    return max(-1.0, min(1.0, cosine)) if math.isfinite(cosine) else -1.0


def _scaled(row: list[float]) -> list[float]:
    largest = max((abs(value) for value in row), default=0.0)
    return row if largest == 0.0 else [value / largest for value in row]


def _number(value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return math.nan
    try:
        number = float(value)
    except OverflowError:  # an integer of hundreds of digits
        return math.nan
    return number if math.isfinite(number) else math.nan


def _name(tensor: Mapping[str, Any]) -> str:
    name = tensor.get("name")
    return repr(name[:64]) if isinstance(name, str) else "(unnamed)"
