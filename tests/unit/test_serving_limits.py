"""The serving limits as the environment sets them, the JSON depth check, and what the
rollout analysis counts of the refusals."""

from __future__ import annotations

import pytest

from torchyard.plans.rollout import Counters
from torchyard.workloads.serve.limits import ENV, Limits, limits_from_env, too_deep


def test_defaults_when_nothing_is_set():
    assert limits_from_env({}) == Limits()
    assert set(ENV) == set(Limits.__dataclass_fields__)


def test_each_variable_sets_its_limit():
    environ = {
        "TORCHYARD_MAX_BODY_BYTES": "1024",
        "TORCHYARD_MAX_ROWS": "8",
        "TORCHYARD_MAX_ELEMENTS": "64",
        "TORCHYARD_MAX_JSON_DEPTH": "4",
        "TORCHYARD_MAX_QUEUE": "2",
        "TORCHYARD_MAX_BUFFERED_BYTES": "4096",
        "TORCHYARD_HEADER_TIMEOUT_SECONDS": "2.5",
        "TORCHYARD_BODY_TIMEOUT_SECONDS": " 7 ",
        "TORCHYARD_RETRY_AFTER_SECONDS": "3",
    }
    assert limits_from_env(environ) == Limits(
        max_body_bytes=1024,
        max_rows=8,
        max_elements=64,
        max_json_depth=4,
        max_queue=2,
        max_buffered_bytes=4096,
        header_timeout_s=2.5,
        body_timeout_s=7.0,
        retry_after_s=3,
    )


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("TORCHYARD_MAX_BODY_BYTES", "0"),
        ("TORCHYARD_MAX_BODY_BYTES", "1.5"),
        ("TORCHYARD_MAX_BODY_BYTES", "8Mi"),
        ("TORCHYARD_MAX_ROWS", "-1"),
        ("TORCHYARD_MAX_QUEUE", "99999999999999"),
        ("TORCHYARD_MAX_JSON_DEPTH", "100000"),
        ("TORCHYARD_HEADER_TIMEOUT_SECONDS", "nan"),
        ("TORCHYARD_BODY_TIMEOUT_SECONDS", "inf"),
        ("TORCHYARD_RETRY_AFTER_SECONDS", "soon"),
    ],
)
def test_a_value_out_of_range_is_refused_naming_the_variable(variable, value):
    with pytest.raises(ValueError, match=variable):
        limits_from_env({variable: value})


def test_the_byte_budget_must_hold_one_request_of_the_largest_size():
    environ = {"TORCHYARD_MAX_BODY_BYTES": "2048", "TORCHYARD_MAX_BUFFERED_BYTES": "1024"}
    with pytest.raises(ValueError, match="TORCHYARD_MAX_BUFFERED_BYTES=1024 is below"):
        limits_from_env(environ)
    enough = {**environ, "TORCHYARD_MAX_BUFFERED_BYTES": "2048"}
    assert limits_from_env(enough).max_buffered_bytes == 2048


@pytest.mark.parametrize(
    ("raw", "limit", "deeper"),
    [
        (b"1", 0, False),
        (b"[]", 0, True),
        (b"[]", 1, False),
        (b'{"a": [[1, 2], [3]]}', 3, False),
        (b'{"a": [[1, 2], [3]]}', 2, True),
        (b"[" * 33 + b"]" * 33, 32, True),
        (b"[" * 32 + b"]" * 32, 32, False),
        # Brackets inside strings, escaped quotes included, are not nesting.
        (b'["[[[[[[", "\\"[[[[[["]', 1, False),
        # Arrays and objects alike; one round strips only the innermost pair.
        (b'{"a": [{"b": []}]}', 3, True),
        (b'{"a": [{"b": []}]}', 4, False),
        # Unbalanced: as deep as the openings the parser would descend through.
        (b'{"a": ' * 5000, 32, True),
        (b"[[1]", 8, False),
        (b"[" * 9 + b"]", 8, True),
    ],
)
def test_json_depth_is_judged_before_parsing(raw, limit, deeper):
    assert too_deep(raw, limit) is deeper


def test_many_shallow_arrays_are_not_deep():
    assert too_deep(b"[" + b"[0]," * 500_000 + b"[0]]", 2) is False


def test_the_analysis_counts_server_faults_and_overload_not_client_mistakes():
    exposition = "\n".join(
        [
            'torchyard_inference_requests_total{model="m",version="2"} 100.0',
            'torchyard_inference_errors_total{code="400",model="m",version="2"} 30.0',
            'torchyard_inference_errors_total{code="408",model="m",version="2"} 5.0',
            'torchyard_inference_errors_total{code="413",model="m",version="2"} 10.0',
            'torchyard_inference_errors_total{code="503",model="m",version="2"} 4.0',
            'torchyard_inference_errors_total{code="500",model="m",version="2"} 1.0',
        ]
    )
    counters = Counters.parse(exposition)
    # 45 refused as the client's: neither requests nor errors of the version.
    assert counters.requests == 55
    assert counters.server_errors == 5
