"""Acceptance of a new or changed object, and the condition bookkeeping behind it."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from tests.objects import sample
from torchyard.admission import ACCEPTED, admit
from torchyard.api import COMPRESSION_JOB, MODEL_VERSION
from torchyard.conditions import find_condition, set_condition

T0 = datetime(2026, 11, 28, 12, 0, tzinfo=UTC)
T1 = T0 + timedelta(minutes=5)


def test_valid_object_becomes_pending_with_accepted_condition_and_event():
    decision = admit(COMPRESSION_JOB, sample("CompressionJob")["spec"], {}, 1, T0)
    status = decision.status_patch
    assert status["phase"] == "Pending"
    assert status["observedGeneration"] == 1
    accepted = find_condition(status["conditions"], ACCEPTED)
    assert accepted["status"] == "True"
    assert accepted["reason"] == "SpecValid"
    assert accepted["lastTransitionTime"] == "2026-11-28T12:00:00Z"
    assert accepted["observedGeneration"] == 1
    assert [(e.type, e.reason) for e in decision.events] == [("Normal", "Accepted")]


def test_readmitting_the_same_generation_posts_no_event_and_keeps_transition_time():
    first = admit(MODEL_VERSION, sample("ModelVersion")["spec"], {}, 1, T0)
    again = admit(MODEL_VERSION, sample("ModelVersion")["spec"], first.status_patch, 1, T1)
    assert again.events == []
    assert again.status_patch == first.status_patch


def test_new_generation_updates_observed_generation_but_not_transition_time():
    first = admit(MODEL_VERSION, sample("ModelVersion")["spec"], {}, 1, T0)
    second = admit(MODEL_VERSION, sample("ModelVersion")["spec"], first.status_patch, 2, T1)
    assert second.status_patch["observedGeneration"] == 2
    accepted = find_condition(second.status_patch["conditions"], ACCEPTED)
    assert accepted["observedGeneration"] == 2
    assert accepted["lastTransitionTime"] == "2026-11-28T12:00:00Z"
    assert len(second.events) == 1


def test_invalid_spec_fails_with_a_message_naming_the_field():
    spec = sample("CompressionJob")["spec"]
    spec["quantize"] = {"mode": "static"}
    decision = admit(COMPRESSION_JOB, spec, {}, 3, T0)
    status = decision.status_patch
    assert status["phase"] == "Failed"
    accepted = find_condition(status["conditions"], ACCEPTED)
    assert accepted["status"] == "False"
    assert accepted["reason"] == "InvalidSpec"
    assert "spec.quantize.calibration" in accepted["message"]
    assert decision.events[0].type == "Warning"
    assert "spec.quantize.calibration" in decision.events[0].message


def test_fixing_an_invalid_spec_returns_the_object_to_pending():
    bad = sample("CompressionJob")["spec"]
    bad["quantize"] = {"mode": "static"}
    failed = admit(COMPRESSION_JOB, bad, {}, 1, T0)
    fixed = admit(COMPRESSION_JOB, sample("CompressionJob")["spec"], failed.status_patch, 2, T1)
    assert fixed.status_patch["phase"] == "Pending"
    accepted = find_condition(fixed.status_patch["conditions"], ACCEPTED)
    assert accepted["status"] == "True"
    assert accepted["lastTransitionTime"] == "2026-11-28T12:05:00Z"


def test_a_phase_set_by_later_work_is_kept():
    status = admit(COMPRESSION_JOB, sample("CompressionJob")["spec"], {}, 1, T0).status_patch
    status["phase"] = "Running"
    again = admit(COMPRESSION_JOB, sample("CompressionJob")["spec"], status, 2, T1)
    assert again.status_patch["phase"] == "Running"


def test_set_condition_keeps_other_conditions():
    conditions = set_condition(
        [], type="Ready", status="False", reason="Starting", message="", generation=1, now=T0
    )
    conditions = set_condition(
        conditions,
        type="Accepted",
        status="True",
        reason="SpecValid",
        message="",
        generation=1,
        now=T0,
    )
    assert [c["type"] for c in conditions] == ["Ready", "Accepted"]
