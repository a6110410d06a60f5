"""Which factories torchyard may import and call: torchyard's own and the administrator's,
refused at admission for a spec, passed on to every pod the operator creates."""

from __future__ import annotations

import os
from datetime import UTC, datetime

import pytest

from tests.objects import sample
from torchyard.admission import ACCEPTED, admit
from torchyard.api import COMPRESSION_JOB, TRAINING_JOB
from torchyard.api.modelversion import ModelVersionSpec
from torchyard.cli import _configure_factories, build_parser
from torchyard.conditions import find_condition
from torchyard.factories import (
    ALLOWED_FACTORIES_ENV,
    BUILTIN,
    FactoryNotAllowed,
    check_factory,
    is_allowed,
    parse_allowed,
)
from torchyard.resources.pods import owner_labels, worker_pod
from torchyard.resources.serving import serving_deployment

T0 = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)
ADMIN = ("acme.models:resnet", "acme.zoo:*")


@pytest.mark.parametrize(
    ("factory", "allowed"),
    [
        *((factory, True) for factory in BUILTIN),
        ("acme.models:resnet", True),
        ("acme.zoo:anything", True),
        ("acme.zoo:_private", False),  # a wildcard covers public names only
        ("acme.models:other", False),
        ("os:system", False),
        ("subprocess:run", False),
        ("builtins:eval", False),
        # torchyard's own module holds loaders too: only its factories are allowed.
        ("torchyard.workloads.models:load_path", False),
        ("torchyard.workloads.models:build", False),
        ("torchyard.workloads.models:*", False),
        ("os:system\n", False),
        ("os.path:join.__globals__", False),
        ("", False),
        (None, False),
        (["os:system"], False),
    ],
)
def test_only_torchyards_factories_and_the_administrators_are_allowed(factory, allowed):
    assert is_allowed(factory, ADMIN) is allowed


def test_the_refusal_names_the_factory_the_field_and_how_to_allow_it():
    with pytest.raises(FactoryNotAllowed) as refused:
        check_factory("os:system", ADMIN, "spec.model.factory")
    message = str(refused.value)
    assert refused.value.reason == "FactoryNotAllowed"
    assert "'os:system' (spec.model.factory) is not allowed" in message
    assert "torchyard.workloads.models:mlp" in message and "acme.zoo:*" in message
    assert "--allowed-factories" in message and ALLOWED_FACTORIES_ENV in message


@pytest.mark.parametrize(
    ("raw", "parsed"),
    [
        ("", ()),
        (" acme.models:resnet , acme.zoo:* ,", ("acme.models:resnet", "acme.zoo:*")),
    ],
)
def test_the_administrators_list_parses(raw, parsed):
    assert parse_allowed(raw) == parsed


@pytest.mark.parametrize("raw", ["acme.models", "acme:*x", "*:*", "acme.*:f", "a b:c", "os:s t"])
def test_a_malformed_list_is_refused_naming_the_entry(raw):
    with pytest.raises(ValueError, match=ALLOWED_FACTORIES_ENV):
        parse_allowed(raw)


def _training(factory: str) -> dict:
    spec = sample("TrainingJob")["spec"]
    spec["model"] = {"format": "state_dict", "factory": factory}
    return spec


def _distilling(student_factory: str) -> dict:
    spec = sample("CompressionJob")["spec"]
    spec["method"] = "distill"
    del spec["quantize"]
    spec["model"] = {"uri": "file:///models/teacher", "format": "torchyard"}
    spec["distill"] = {
        "student": {
            "uri": "file:///models/student.safetensors",
            "format": "safetensors",
            "factory": student_factory,
        },
        "dataset": {"uri": "builtin://sentences"},
    }
    return spec


@pytest.mark.parametrize(
    ("kind", "spec", "field"),
    [
        (TRAINING_JOB, _training("os:system"), "spec.model.factory"),
        (COMPRESSION_JOB, _distilling("subprocess:run"), "spec.distill.student.factory"),
    ],
)
def test_admission_refuses_a_foreign_factory_naming_the_field(kind, spec, field):
    decision = admit(kind, spec, {}, 1, T0, allowed_factories=ADMIN)
    status = decision.status_patch
    assert status["phase"] == "Failed"
    accepted = find_condition(status["conditions"], ACCEPTED)
    assert (accepted["status"], accepted["reason"]) == ("False", "FactoryNotAllowed")
    assert field in accepted["message"] and "--allowed-factories" in accepted["message"]
    [event] = decision.events
    assert (event.type, event.reason) == ("Warning", "FactoryNotAllowed")


def test_a_refused_job_is_accepted_once_the_administrator_allows_its_factory():
    spec = _training("acme.models:resnet")
    refused = admit(TRAINING_JOB, spec, {}, 1, T0)
    assert refused.status_patch["phase"] == "Failed"
    allowed = admit(TRAINING_JOB, spec, refused.status_patch, 1, T0, allowed_factories=ADMIN)
    assert allowed.status_patch["phase"] == "Pending"
    accepted = find_condition(allowed.status_patch["conditions"], ACCEPTED)
    assert accepted["reason"] == "SpecValid"


def test_torchyards_own_factory_needs_no_permission():
    decision = admit(TRAINING_JOB, _training("torchyard.workloads.models:cnn"), {}, 1, T0)
    assert decision.status_patch["phase"] == "Pending"


def _env(pod: dict) -> dict[str, str]:
    return {e["name"]: e.get("value") for e in pod["spec"]["containers"][0]["env"]}


def _worker(env: dict[str, str] | None = None) -> dict:
    labels = owner_labels("TrainingJob", "t")
    return worker_pod(name="t-0", namespace="n", labels=labels, args=["workload"], env=env)


def test_every_pod_gets_the_operators_list_and_a_default_install_changes_nothing(monkeypatch):
    monkeypatch.delenv(ALLOWED_FACTORIES_ENV, raising=False)
    assert ALLOWED_FACTORIES_ENV not in _env(_worker())
    monkeypatch.setenv(ALLOWED_FACTORIES_ENV, "acme.models:resnet,acme.zoo:*")
    # The operator's value wins over any other of the same name.
    pod = _worker({ALLOWED_FACTORIES_ENV: "os:*"})
    assert _env(pod)[ALLOWED_FACTORIES_ENV] == "acme.models:resnet,acme.zoo:*"
    spec = ModelVersionSpec.model_validate(sample("ModelVersion")["spec"])
    template = serving_deployment("digits-v2", "n", spec, 1)["spec"]["template"]
    assert _env(template)[ALLOWED_FACTORIES_ENV] == "acme.models:resnet,acme.zoo:*"


def test_the_operator_flag_becomes_its_environment_and_a_bad_list_stops_it(monkeypatch, capsys):
    monkeypatch.setenv(ALLOWED_FACTORIES_ENV, "from.the:environment")
    args = build_parser().parse_args(["operator", "--allowed-factories=acme.zoo:*, acme.m:f"])
    assert _configure_factories(args.allowed_factories)
    assert os.environ[ALLOWED_FACTORIES_ENV] == "acme.zoo:*,acme.m:f"
    assert _configure_factories(None)  # without the flag, the environment's list stays
    assert os.environ[ALLOWED_FACTORIES_ENV] == "acme.zoo:*,acme.m:f"
    assert not _configure_factories("acme.zoo")
    assert "'acme.zoo' is not 'package.module:function'" in capsys.readouterr().err
