"""Quality analysis without a cluster: answers to the reference request read as rows,
scored (cosine, agreement, accuracy), and the analysis's verdict with the score in it."""

from __future__ import annotations

import math
from datetime import UTC, datetime
from typing import Any

import pytest

from torchyard.api.modelversion import AnalysisSpec, QualitySpec
from torchyard.plans.rollout.analysis import Analysis, Measurement, analyse
from torchyard.plans.rollout.quality import (
    NotCompared,
    Quality,
    compare,
    output_rows,
    reference_request,
)

NOW = datetime(2026, 12, 4, 12, 0, tzinfo=UTC)
ROWS = [[1.0, 0.0, 0.0], [0.0, 2.0, 0.5], [0.3, 0.2, 0.1], [0.0, 0.0, 3.0]]


def _spec(metric: str = "agreement", min_score: float = 0.9, **extra: Any) -> QualitySpec:
    tensor = {"name": "input", "datatype": "FP32", "shape": [4, 2], "data": list(range(8))}
    return QualitySpec.model_validate(
        {"metric": metric, "minScore": min_score, "inputs": [tensor], **extra}
    )


def _answer(rows: list[list[Any]], name: str = "output") -> dict[str, Any]:
    width = len(rows[0])
    data = [value for row in rows for value in row]
    return {
        "outputs": [{"name": name, "datatype": "FP32", "shape": [len(rows), width], "data": data}]
    }


def test_the_reference_request_is_the_specs_inputs_as_the_protocol_has_them():
    spec = _spec(output="logits")
    assert reference_request(spec) == {
        "id": "torchyard-quality-analysis",
        "inputs": [{"name": "input", "datatype": "FP32", "shape": [4, 2], "data": list(range(8))}],
        "outputs": [{"name": "logits"}],
    }
    text = QualitySpec.model_validate(
        {
            "metric": "cosine",
            "minScore": 0.98,
            "inputs": [{"name": "text", "datatype": "BYTES", "shape": [2], "texts": ["a", "b"]}],
        }
    )
    assert reference_request(text)["inputs"][0]["data"] == ["a", "b"]


def test_the_output_asked_for_is_read_row_by_row():
    answer = {"outputs": [_answer([[9.0]] * 4, "other")["outputs"][0], _answer(ROWS)["outputs"][0]]}
    assert output_rows(answer, "output", 4) == ROWS
    assert output_rows(answer, None, 4) == [[9.0]] * 4  # the first output by default


@pytest.mark.parametrize(
    ("answer", "said"),
    [
        ({"error": "boom"}, "no outputs list"),
        ([1, 2], "no outputs list"),
        (_answer(ROWS, "logits"), "no output named 'output'"),
        (_answer(ROWS[:3]), "3 rows, 4 were sent"),
        ({"outputs": [{"name": "output", "shape": [4, 3], "data": [1.0] * 11}]}, "12 values"),
        ({"outputs": [{"name": "output", "shape": "4x3", "data": []}]}, "no usable shape"),
        ({"outputs": [{"name": "output", "shape": [4, True], "data": []}]}, "no usable shape"),
        ({"outputs": [{"name": "output", "shape": [4, -3], "data": []}]}, "no usable shape"),
    ],
)
def test_an_answer_that_is_not_the_rows_asked_for_is_refused_with_the_reason(answer, said):
    refused = output_rows(answer, "output", 4)
    assert isinstance(refused, str) and said in refused


def test_values_that_are_not_finite_numbers_read_as_nan():
    rows = output_rows(_answer([["NaN", 1.0], [True, 10**400], [None, "x"], [1.5, 2]]), None, 4)
    assert isinstance(rows, list)
    assert [math.isnan(value) for row in rows for value in row] == [
        True, False, True, True, True, True, False, False
    ]  # fmt: skip


def test_agreement_is_the_share_of_rows_with_the_serving_versions_top_class():
    other = [[0.0, 1.0, 0.0], [0.0, 2.0, 0.5], [0.9, 0.0, 0.1], [0.0, 5.0, 3.1]]
    score = compare(_spec(), other, ROWS)
    assert isinstance(score, Quality)
    assert (score.score, score.rows, score.passed) == (0.5, 4, False)
    assert score.describe() == (
        "agreement 50.00% (2 of 4 rows agree with the serving version) below the minimum 90.00%"
    )
    assert compare(_spec(), ROWS, ROWS) == Quality("agreement", 1.0, 0.9, 4)


def test_a_row_the_version_answers_with_nan_agrees_with_nothing_and_is_the_worst_cosine():
    broken = [row[:] for row in ROWS]
    broken[1][0] = math.nan
    agreement = compare(_spec(), broken, ROWS)
    assert isinstance(agreement, Quality) and agreement.score == 0.75
    cosine = compare(_spec("cosine", 0.98), broken, ROWS)
    assert isinstance(cosine, Quality)
    assert cosine.lowest_row == -1.0
    assert cosine.score == pytest.approx((1.0 - 1.0 + 1.0 + 1.0) / 4)


def test_cosine_is_the_mean_of_the_rows_and_says_the_lowest():
    scaled = [[value * 3.0 for value in row] for row in ROWS]  # same direction: cosine 1
    orthogonal = [row[:] for row in scaled]
    orthogonal[0] = [0.0, 1.0, 0.0]
    score = compare(_spec("cosine", 0.9), orthogonal, ROWS)
    assert isinstance(score, Quality)
    assert score.score == pytest.approx(0.75)
    assert score.lowest_row == pytest.approx(0.0)
    assert score.describe() == (
        "mean cosine 0.7500 over 4 reference rows (lowest row 0.0000) below the minimum 0.9000"
    )
    zero = compare(_spec("cosine", 0.9), [[0.0, 0.0, 0.0]] * 4, [[0.0, 0.0, 0.0]] * 4)
    assert isinstance(zero, Quality) and zero.score == 1.0


def test_accuracy_needs_no_serving_version_only_the_labels():
    spec = _spec("accuracy", 0.75, labels=[0, 1, 0, 2])
    score = compare(spec, ROWS, None)
    assert isinstance(score, Quality)
    assert (score.score, score.passed) == (1.0, True)
    assert compare(spec, [ROWS[0]] * 4, None) == Quality("accuracy", 0.5, 0.75, 4)


def test_a_serving_version_that_answers_nan_gives_no_verdict():
    broken = [row[:] for row in ROWS]
    broken[2][2] = math.inf
    compared = compare(_spec(), ROWS, broken)
    assert isinstance(compared, NotCompared) and compared.verdict == "Inconclusive"
    assert compare(_spec(), ROWS, None) == NotCompared(
        "no answer of the serving version to compare with", "Inconclusive"
    )


def _measured(quality: Any, errors: int = 0) -> Measurement:
    return Measurement(requests=100, errors=errors, p99_latency_ms=10.0, quality=quality)


def _analysis(**quality: Any) -> AnalysisSpec:
    reference = {
        "metric": "agreement",
        "minScore": 0.9,
        "inputs": [{"name": "input", "datatype": "FP32", "shape": [4, 2], "data": list(range(8))}],
    }
    return AnalysisSpec.model_validate({"minRequestCount": 10, "quality": reference | quality})


def test_a_version_that_answers_200_but_worse_fails_on_quality_alone():
    ran = analyse(_measured(Quality("agreement", 0.5, 0.9, 4)), _analysis(), NOW)
    assert (ran.verdict, ran.failed_on) == ("Fail", ("quality",))
    assert ran.message == (
        "error rate 0.00% (0 of 100 requests) within the maximum 1.00%; agreement 50.00% "
        "(2 of 4 rows agree with the serving version) below the minimum 90.00%"
    )
    passed = analyse(_measured(Quality("agreement", 1.0, 0.9, 4)), _analysis(), NOW)
    assert (passed.verdict, passed.failed_on) == ("Pass", ())
    both = analyse(_measured(Quality("agreement", 0.5, 0.9, 4), errors=50), _analysis(), NOW)
    assert both.failed_on == ("errorRate", "quality")


def test_no_comparison_is_no_pass_but_an_unusable_answer_is_the_versions_failure():
    baseline_down = NotCompared("no ready pod of version 1 to compare with", "Inconclusive")
    ran = analyse(_measured(baseline_down), _analysis(), NOW)
    assert ran.verdict == "Inconclusive"
    assert "quality not compared: no ready pod of version 1" in ran.message
    # Errors still fail: a missing comparison never hides them.
    assert analyse(_measured(baseline_down, errors=50), _analysis(), NOW).verdict == "Fail"
    garbage = NotCompared("the answer to the reference request: no outputs list", "Fail")
    failed = analyse(_measured(garbage), _analysis(), NOW)
    # A failure, but no score: rolled back as AnalysisFailed, not QualityRegression.
    assert (failed.verdict, failed.failed_on) == ("Fail", ("qualityUnanswered",))
    not_made = analyse(_measured(None), _analysis(), NOW)
    assert (not_made.verdict, not_made.awaits_quality) == ("Inconclusive", True)
    by_design = NotCompared("not compared after promotion", None)
    noted = analyse(_measured(by_design), _analysis(), NOW)
    assert noted.verdict == "Pass" and "not compared after promotion" in noted.message


def test_the_reference_request_is_asked_for_only_when_the_verdict_turns_on_it():
    few = Measurement(requests=3, errors=0, p99_latency_ms=10.0)
    ran = analyse(few, _analysis(), NOW)
    assert (ran.verdict, ran.awaits_quality) == ("Inconclusive", False)
    assert "fewer than the 10 needed" in ran.message
    enough = analyse(_measured(None), _analysis(), NOW)
    assert enough.awaits_quality and "quality not compared yet" in enough.message
    answered = analyse(_measured(Quality("agreement", 1.0, 0.9, 4)), _analysis(), NOW)
    assert not answered.awaits_quality


def test_without_a_quality_spec_nothing_about_quality_is_said():
    ran = analyse(_measured(None), AnalysisSpec(min_request_count=10), NOW)
    assert ran.verdict == "Pass" and "quality" not in ran.message


def test_the_score_is_kept_in_status_and_read_back():
    ran = analyse(_measured(Quality("cosine", 0.93, 0.98, 16, 0.41)), _analysis(), NOW)
    status = ran.to_status(failures=1)
    assert status["quality"] == {
        "metric": "cosine", "score": 0.93, "minScore": 0.98, "rows": 16, "lowestRow": 0.41
    }  # fmt: skip
    again = Analysis.from_status(status)
    assert again is not None and again.measurement is not None
    assert again.measurement.quality == Quality("cosine", 0.93, 0.98, 16, 0.41)


def test_rows_of_another_width_than_the_serving_versions_fail_and_one_value_rows_have_no_class():
    wider = [[*row, 0.0] for row in ROWS]
    compared = compare(_spec("cosine", 0.9), wider, ROWS)
    assert isinstance(compared, NotCompared) and compared.verdict == "Fail"
    assert "4 values per row where the serving version answers 3" in compared.reason
    single = [[1.0]] * 4
    compared = compare(_spec(), single, single)
    assert isinstance(compared, NotCompared) and compared.verdict == "Inconclusive"
    assert "1 value(s) per row" in compared.reason
    cosine = compare(_spec("cosine", 0.9), single, single)
    assert isinstance(cosine, Quality) and cosine.score == 1.0


def test_huge_values_give_the_right_cosine_not_an_overflow():
    huge = [[1.7e308, 0.0, 1e308]] * 4
    compared = compare(_spec("cosine", 0.9), huge, [[10.0, 5.0, 0.0]] * 4)
    assert isinstance(compared, Quality)
    expected = (1.7 * 10) / (math.hypot(1.7, 1.0) * math.hypot(10.0, 5.0))
    assert compared.score == pytest.approx(expected)


def test_integer_and_boolean_inputs_go_out_as_integers_and_booleans():
    spec = QualitySpec.model_validate(
        {
            "metric": "cosine",
            "minScore": 0.9,
            "inputs": [
                {
                    "name": "input_ids",
                    "datatype": "INT64",
                    "shape": [1, 3],
                    "data": [101, 2023, 102],
                },
                {"name": "mask", "datatype": "BOOL", "shape": [1, 3], "data": [1, 1, 0]},
            ],
        }
    )
    sent = reference_request(spec)["inputs"]
    assert sent[0]["data"] == [101, 2023, 102] and all(type(v) is int for v in sent[0]["data"])
    assert sent[1]["data"] == [True, True, False]


@pytest.mark.parametrize(
    ("datatype", "data", "said"),
    [("INT64", [1.5, 2.0], "whole numbers, not 1.5"), ("BOOL", [1.0, 2.0], "0 or 1, not 2.0")],
)
def test_integer_and_boolean_inputs_hold_whole_numbers(datatype, data, said):
    tensor = {"name": "x", "datatype": datatype, "shape": [1, 2], "data": data}
    with pytest.raises(ValueError, match=said):
        QualitySpec.model_validate({"metric": "cosine", "minScore": 0.9, "inputs": [tensor]})
