"""Refused creates and taken names: what status says, and when the operator tries again."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from tests.builders import deployment, pod, service
from torchyard.controllers.children import owned_entry
from torchyard.refusals import (
    CONFLICT,
    FAILED_CREATE,
    Backoff,
    Refusal,
    controller_uid,
    is_refusal,
    on_status,
    owned_by,
    pods_refused,
    refused,
    taken,
    was_refused,
)

NOW = datetime(2026, 1, 1, tzinfo=UTC)
QUOTA = (
    'pods "train-worker-0" is forbidden: exceeded quota: tight, requested: pods=1, '
    "used: pods=0, limited: pods=0"
)


@pytest.mark.parametrize(
    ("code", "message", "advice"),
    [
        (403, QUOTA, "raise the quota"),
        (
            403,
            'pods "x" is forbidden: error looking up service account ns/robot: '
            'serviceaccount "robot" not found',
            "Create the ServiceAccount",
        ),
        (
            403,
            'pods "x" is forbidden: violates PodSecurity "restricted:latest": ...',
            "Pod Security",
        ),
        (
            403,
            'pods is forbidden: User "system:serviceaccount:torchyard-system:torchyard-'
            'operator" cannot create resource "pods"',
            "rbac.yaml",
        ),
        (
            422,
            'Pod "x" is invalid: spec.containers[0].resources.limits: Required value: '
            "Limit must be set for non overcommitable resources",
            "the field the message names",
        ),
        (404, 'configmaps "x" not found', "does not exist"),
        (
            403,
            'pods "x" is forbidden: no PriorityClass with name high was found',
            "change priorityClassName",
        ),
    ],
)
def test_a_refused_create_quotes_the_api_and_says_what_to_change(code, message, advice):
    refusal = refused("Pod", "train-worker-0", code, message)
    assert refusal.reason == FAILED_CREATE
    assert refusal.message.startswith("cannot create Pod train-worker-0: ")
    assert message.rstrip(".") in refusal.message
    assert advice in refusal.message
    assert "tries again" in refusal.message


@pytest.mark.parametrize(
    ("code", "object_to_fix"),
    [
        *[(code, True) for code in (400, 403, 404, 422)],
        *[(code, False) for code in (401, 408, 409, 429, 500, 503)],
    ],
)
def test_only_answers_about_the_object_itself_are_refusals(code, object_to_fix):
    assert is_refusal(code) is object_to_fix


def test_a_taken_name_names_the_object_and_its_owner():
    holder = service("digits-model", "ns").owned_by("TrainingJob", "digits-model").obj()
    refusal = taken("Service", "digits-model", holder, "model digits's ModelVersions")
    assert refusal.reason == CONFLICT
    assert "Service digits-model already exists" in refusal.message
    assert "TrainingJob/digits-model" in refusal.message
    assert "untouched" in refusal.message and "Delete or rename" in refusal.message
    unowned = taken("Deployment", "v1-serving", deployment("v1-serving").obj(), "ModelVersion v1")
    assert "no owner" in unowned.message


def test_pods_a_controller_cannot_create_are_a_failed_create():
    refusal = pods_refused("Job minilm-int8-compress", "Error creating: " + QUOTA)
    assert refusal.reason == FAILED_CREATE
    assert "Job minilm-int8-compress" in refusal.message and "raise the quota" in refusal.message


def test_ownership_is_by_uid_and_only_the_controller_keys_an_index():
    replica = pod("job-worker-0", "ns").uid("p1").label("torchyard.io/trainingjob", "job")
    child = replica.clone().owned_by("TrainingJob", "job", "u1").obj()
    assert owned_by(child, {"u1"}) and not owned_by(child, {"u2"})
    assert controller_uid(child, "TrainingJob") == "u1"
    assert controller_uid(child, "Job") is None
    assert list(owned_entry("TrainingJob", "ns", child)) == [("ns", "u1")]
    assert owned_entry("TrainingJob", "ns", replica.obj()) == {}  # labels alone make no child
    not_controller = replica.clone().owned_by("TrainingJob", "job", "u1", controller=False)
    assert owned_entry("TrainingJob", "ns", not_controller.obj()) == {}


def test_the_condition_says_it_and_the_warning_is_posted_only_when_it_is_news():
    refusal = Refusal(FAILED_CREATE, "cannot create Pod x: quota")
    conditions, events = on_status([], "Created", refusal, 3, NOW, stored=[])
    (created,) = conditions
    assert (created["type"], created["status"], created["reason"]) == (
        "Created",
        "False",
        FAILED_CREATE,
    )
    assert created["message"] == refusal.message and created["observedGeneration"] == 3
    assert [(e.type, e.reason) for e in events] == [("Warning", FAILED_CREATE)]
    assert was_refused(conditions, "Created")
    planned = [{**conditions[0], "status": "True", "reason": "PodsCreated", "message": "2 pods"}]
    again, events = on_status(planned, "Created", refusal, 3, NOW, stored=conditions)
    assert again == conditions  # the same condition, its lastTransitionTime kept
    assert events == []  # the next try says nothing new, whatever a planner set meanwhile
    other = Refusal(CONFLICT, "Pod x already exists")
    later = NOW.replace(hour=1)
    changed, events = on_status(conditions, "Created", other, 3, later, stored=conditions)
    assert changed[0]["lastTransitionTime"] == conditions[0]["lastTransitionTime"]
    assert [e.reason for e in events] == [CONFLICT]


def test_backoff_doubles_from_ten_seconds_to_five_minutes():
    backoff = Backoff()
    refusal = Refusal(FAILED_CREATE, "no")
    delays = [backoff.refused("job", 1, refusal, now=0.0) for _ in range(8)]
    assert delays == [10, 20, 40, 80, 160, 300, 300, 300]


def test_a_held_refusal_pauses_creates_until_due_or_a_new_generation():
    backoff = Backoff()
    refusal = Refusal(FAILED_CREATE, "no")
    backoff.refused("job", 1, refusal, now=100.0)
    assert backoff.held("job", 1, now=105.0) == refusal
    assert backoff.wait("job", now=105.0) == 5.0
    assert backoff.held("job", 1, now=110.0) is None  # due: try again
    assert backoff.held("job", 2, now=105.0) is None  # the user changed the spec: at once
    assert backoff.refused("job", 2, refusal, now=105.0) == 10  # a new spec starts over
    backoff.forget("job")
    assert backoff.held("job", 2, now=106.0) is None and len(backoff) == 0


def test_backoff_memory_goes_with_the_objects():
    backoff = Backoff()
    for key in (("ns", "a"), ("ns", "b"), ("other", "a")):
        backoff.refused(key, 1, Refusal(FAILED_CREATE, "no"), now=0.0)
    backoff.forget_where(lambda key: key != ("ns", "b"))
    assert len(backoff) == 2 and backoff.held(("ns", "b"), 1, now=1.0) is None
