"""Children created but not yet seen by the watch (expectations)."""

from __future__ import annotations

from tests.builders import pod
from torchyard.controllers.children import CreatedChildren


def test_created_children_count_until_the_watch_shows_them():
    created = CreatedChildren(patience=60)
    owner = ("ns", "job")
    replica_1 = pod("job-worker-1", "ns").label("torchyard.io/replica", "1").obj()
    watched = [pod("job-worker-0", "ns").ready().obj()]
    created.record(owner, [replica_1], at=100.0)
    names = [c["metadata"]["name"] for c in created.with_created(owner, watched, at=101.0)]
    assert names == ["job-worker-0", "job-worker-1"]
    seen = [*watched, pod("job-worker-1", "ns").phase("Pending").obj()]
    assert created.with_created(owner, seen, at=102.0) == seen  # no double count
    created.record(owner, [replica_1], at=100.0)
    assert created.with_created(owner, watched, at=161.0) == watched  # never seen: given up


def test_what_an_owner_deleted_meanwhile_created_is_dropped_after_the_patience():
    created = CreatedChildren(patience=60)
    created.record(("ns", "gone"), [pod("gone-serving-x", "ns").obj()], at=100.0)
    created.record(("ns", "here"), [pod("here-serving-y", "ns").obj()], at=150.0)
    created.expire(at=161.0)
    assert created.with_created(("ns", "gone"), [], at=161.0) == []
    assert [c["metadata"]["name"] for c in created.with_created(("ns", "here"), [], 161.0)] == [
        "here-serving-y"
    ]
    assert len(created) == 1  # nothing kept for the owner that is gone
