"""The latest known copy of an object: the watch's or the operator's own last write."""

from __future__ import annotations

from tests.builders import training_job
from torchyard.controllers import objects


def _body(version: str, phase: str) -> dict:
    """The job as the API server returns it, with the bookkeeping reconciles never read."""
    return (
        training_job("job", "ns")
        .uid("u")
        .generation(1)
        .resource_version(version)
        .managed_by("kubectl")
        .annotation("torchyard.io/last-handled-configuration", "{...}")
        .spec(suspend=False)
        .phase(phase)
        .obj()
    )


def test_compact_keeps_what_reconciles_read_and_drops_bookkeeping():
    kept = objects.compact(_body("7", "Running"))
    assert kept["metadata"] == {
        "name": "job",
        "namespace": "ns",
        "uid": "u",
        "generation": 1,
        "resourceVersion": "7",
    }
    assert kept["status"] == {"phase": "Running"} and kept["spec"] == {"suspend": False}


def test_own_write_wins_until_the_watch_catches_up():
    objects.latest("TrainingJob", "ns", "job", [])  # no copy left from another test
    watched = [objects.compact(_body("10", "Pending"))]
    objects.remember("TrainingJob", _body("11", "Running"))
    assert objects.latest("TrainingJob", "ns", "job", watched)["status"]["phase"] == "Running"
    caught_up = [objects.compact(_body("12", "Running"))]
    assert (
        objects.latest("TrainingJob", "ns", "job", caught_up)["metadata"]["resourceVersion"] == "12"
    )
    # the write was dropped: an older watch copy is not shadowed any more
    assert (
        objects.latest("TrainingJob", "ns", "job", watched)["metadata"]["resourceVersion"] == "10"
    )


def test_unknown_objects_have_no_copy():
    objects.latest("TrainingJob", "ns", "job", [])  # no copy left from another test
    assert objects.latest("TrainingJob", "ns", "job", []) is None


def test_a_written_copy_never_outlives_the_object_in_the_watch():
    objects.remember("TrainingJob", _body("11", "Running"))
    assert objects.latest("TrainingJob", "ns", "job", []) is None  # deleted: ask the API
    watched = [objects.compact(_body("10", "Pending"))]
    assert objects.latest("TrainingJob", "ns", "job", watched)["status"]["phase"] == "Pending"
