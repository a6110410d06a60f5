"""The API models parse the samples, apply defaults, and refuse invalid objects by field."""

from __future__ import annotations

import pytest

from tests.objects import INVALID, Invalid, sample
from torchyard.api import KINDS_BY_NAME
from torchyard.api.compression import CompressionJobSpec
from torchyard.api.modelversion import ModelVersionSpec, version_key
from torchyard.api.training import RESERVED_ENV, TrainingJobSpec
from torchyard.validation import InvalidSpec, parse_spec


@pytest.mark.parametrize("kind", sorted(KINDS_BY_NAME))
def test_samples_parse(kind):
    spec = parse_spec(KINDS_BY_NAME[kind].spec, sample(kind)["spec"])
    assert spec.to_k8s()  # round-trips to a non-empty camelCase dict


def test_defaults_are_applied():
    spec = parse_spec(
        TrainingJobSpec,
        {
            "model": {"uri": "file:///m", "format": "torchscript"},
            "dataset": {"uri": "builtin://digits"},
            "output": {"uri": "file:///out"},
        },
    )
    assert spec.parallelism.mode == "data"
    assert spec.parallelism.replicas == 1
    assert spec.backoff_limit == 3
    assert spec.hyperparameters.global_batch_size == 64
    assert spec.to_k8s()["parallelism"]["procsPerReplica"] == 1


def test_model_version_defaults_to_one_full_weight_step():
    spec = parse_spec(ModelVersionSpec, sample("ModelVersion")["spec"] | {"rollout": {}})
    assert [step.set_weight for step in spec.rollout.steps] == [100]
    assert spec.rollout.analysis.min_request_count == 10


@pytest.mark.parametrize("case", [c for c in INVALID if not c.server_only], ids=lambda c: c.id)
def test_invalid_objects_are_refused_naming_the_field(case: Invalid):
    obj = case.build()
    with pytest.raises(InvalidSpec) as error:
        parse_spec(KINDS_BY_NAME[case.kind].spec, obj["spec"])
    assert case.field in str(error.value)


def test_invalid_table_is_large_and_covers_every_kind():
    assert len(INVALID) >= 15
    assert {case.kind for case in INVALID} == set(KINDS_BY_NAME)


def test_every_reserved_env_name_is_refused():
    base = sample("TrainingJob")["spec"]
    for name in RESERVED_ENV:
        with pytest.raises(InvalidSpec, match=name):
            parse_spec(TrainingJobSpec, base | {"env": [{"name": name, "value": "x"}]})


def test_user_env_is_accepted():
    spec = parse_spec(
        TrainingJobSpec, sample("TrainingJob")["spec"] | {"env": [{"name": "OMP_NUM_THREADS"}]}
    )
    assert spec.env[0].name == "OMP_NUM_THREADS"


@pytest.mark.parametrize(
    ("lower", "higher"), [("1", "2"), ("v1.9", "v1.10"), ("1.2", "1.2.1"), ("2", "v10")]
)
def test_versions_order_number_by_number(lower, higher):
    assert version_key(lower) < version_key(higher)


def test_equal_versions_compare_equal():
    assert version_key("1") == version_key("v1.0.0")


def test_method_block_must_match_method():
    spec = sample("CompressionJob")["spec"]
    parsed = parse_spec(CompressionJobSpec, spec)
    assert parsed.method == "quantize"
    assert parsed.quantize is not None
    assert parsed.prune is None
