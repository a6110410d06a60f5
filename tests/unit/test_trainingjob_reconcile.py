"""The TrainingJob controller's glue (controllers.jobs with the TrainingJob kind), against
a fake API, table-driven: for each state of the world, the requests one reconcile
makes, the status it writes and the Events it posts, and that it reads the clock once.
The decisions are tested in test_training_plan.py; the controller against a real API
server in tests/cluster/test_trainingjob_controller.py."""

from __future__ import annotations

import asyncio
import copy
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import kopf
import pytest

from tests.builders import PodBuilder
from tests.objects import sample
from torchyard.api.kinds import TRAINING_JOB
from torchyard.api.training import TrainingJobSpec
from torchyard.controllers import client, objects, reconciler, trainingjob
from torchyard.controllers.children import CreatedChildren
from torchyard.resources.registration import REGISTERED_BY
from torchyard.resources.training import training_pod

T0 = datetime(2026, 12, 3, 9, 0, tzinfo=UTC)
FIRST_WRITE = (
    "conditions",
    "input",
    "message",
    "observedGeneration",
    "phase",
    "replicaStatuses",
    "startTime",
)


@dataclass
class FakeApi:
    """The job and its children as the watches would hold them, and the requests a
    reconcile makes."""

    job: dict[str, Any]
    pods: list[dict[str, Any]] = field(default_factory=list)
    service: bool = False
    requests: list[tuple[str, ...]] = field(default_factory=list)
    events: list[tuple[str, str]] = field(default_factory=list)
    clock_reads: int = 0

    async def create_child(self, manifest: dict[str, Any], **_: Any) -> bool:
        self.requests.append(("create", manifest["kind"], manifest["metadata"]["name"]))
        return True

    async def patch_status(
        self,
        kind: Any,
        namespace: str,
        name: str,
        status: dict[str, Any],
        resource_version: str | None = None,
    ) -> dict[str, Any] | None:
        self.requests.append(("patch status", *sorted(status)))
        if resource_version != self.job["metadata"]["resourceVersion"]:
            return None
        self.job["status"] = {**self.job.get("status", {}), **status}
        self.job["metadata"]["resourceVersion"] = str(int(resource_version) + 1)
        return copy.deepcopy(self.job)

    def api(self) -> FakeApi:
        return self

    async def delete(self, resource: Any, name: str, namespace: str) -> None:
        self.requests.append(("delete", resource.__name__, name))

    def now(self) -> datetime:
        self.clock_reads += 1
        return T0 + timedelta(seconds=self.clock_reads)

    def reconcile(self) -> float | None:
        self.requests.clear()
        self.events.clear()
        self.clock_reads = 0
        uid = self.job["metadata"]["uid"]
        jobs = {("ns", "digits-train"): [objects.compact(copy.deepcopy(self.job))]}
        pods = {("ns", uid): copy.deepcopy(self.pods)}
        services = {("ns", uid): ["digits-train"]} if self.service else {}
        return asyncio.run(trainingjob.reconcile("ns", "digits-train", jobs, pods, services))  # type: ignore[arg-type]


def _job() -> dict[str, Any]:
    job = sample("TrainingJob")
    job["metadata"].update(namespace="ns", uid="job-uid", generation=1, resourceVersion="7")
    job["status"] = {}
    return job


def _replica(job: dict[str, Any], index: int) -> PodBuilder:
    spec = TrainingJobSpec.model_validate(job["spec"])
    return PodBuilder.wrap(training_pod("digits-train", "ns", spec, index, 0, "job-uid"))


@pytest.fixture
def api(monkeypatch: pytest.MonkeyPatch) -> FakeApi:
    fake = FakeApi(_job())
    monkeypatch.setattr(client, "create_child", fake.create_child)
    monkeypatch.setattr(client, "patch_status", fake.patch_status)
    monkeypatch.setattr(client, "api", fake.api)
    monkeypatch.setattr(reconciler, "now", fake.now)
    monkeypatch.setattr(
        kopf, "event", lambda body, type, reason, message: fake.events.append((type, reason))
    )
    # Nothing kept from other tests' reconciles (their writes, their creates).
    monkeypatch.setattr(objects, "_written", {})
    monkeypatch.setattr(trainingjob, "created_pods", CreatedChildren())
    return fake


def test_a_new_job_gets_its_service_and_pods_and_one_status_write(api: FakeApi):
    api.reconcile()
    assert api.requests == [
        ("create", "Service", "digits-train"),
        ("create", "Pod", "digits-train-worker-0"),
        ("create", "Pod", "digits-train-worker-1"),
        ("patch status", *FIRST_WRITE),
    ]
    assert api.job["status"]["phase"] == "Pending"
    types = [c["type"] for c in api.job["status"]["conditions"]]
    assert types[:2] == ["Accepted", "Created"]
    assert ("Normal", "PodsCreated") in api.events


def test_one_reconcile_reads_the_clock_once(api: FakeApi):
    api.reconcile()
    assert api.clock_reads == 1
    stamps = {c["lastTransitionTime"] for c in api.job["status"]["conditions"]}
    assert stamps == {"2026-12-03T09:00:01Z"}


@pytest.mark.parametrize(
    ("pod_phases", "want_phase", "want_event"),
    [
        (("Running", "Running"), "Running", ("Normal", "Running")),
        (("Failed", "Running"), "Restarting", ("Warning", "Restarting")),
    ],
)
def test_what_the_replicas_do_is_one_write(
    api: FakeApi, pod_phases: tuple[str, str], want_phase: str, want_event: tuple[str, str]
):
    api.reconcile()  # the pods are created
    api.service = True
    api.pods = [
        _replica(api.job, i).phase(phase).obj()
        if phase != "Failed"
        # exit 137: killed, retried as a gang
        else _replica(api.job, i).phase(phase).terminated(137, message="Killed").obj()
        for i, phase in enumerate(pod_phases)
    ]
    api.reconcile()
    writes = [r for r in api.requests if r[0] == "patch status"]
    assert len(writes) == 1
    deleted = [r[2] for r in api.requests if r[0] == "delete"]
    # A failed replica restarts the gang: every pod of the attempt goes.
    gang = ["digits-train-worker-0", "digits-train-worker-1"]
    assert deleted == (gang if want_phase == "Restarting" else [])
    assert api.job["status"]["phase"] == want_phase
    assert want_event in api.events


def test_a_settled_job_writes_nothing(api: FakeApi):
    api.reconcile()
    api.service = True
    api.pods = [_replica(api.job, i).phase("Running").obj() for i in range(2)]
    api.reconcile()
    api.reconcile()
    assert (api.requests, api.events) == ([], [])


@pytest.mark.parametrize(
    ("made_by", "want"),
    [
        ("trainingjob.digits-train", ("Registered", "True")),
        ("trainingjob.someone-else", ("RegistrationConflict", "False")),
    ],
)
def test_a_model_version_that_exists_already_is_ours_only_if_this_job_made_it(
    monkeypatch: pytest.MonkeyPatch, made_by: str, want: tuple[str, str]
):
    """This job's own registration, whose Succeeded write then lost a race, is no conflict."""
    existing: dict[str, Any] = {}

    async def create(manifest: dict[str, Any]) -> bool:
        existing.update(copy.deepcopy(manifest))
        existing["metadata"]["labels"][REGISTERED_BY] = made_by
        return False  # 409: there already

    async def get_object(kind: Any, namespace: str, name: str) -> dict[str, Any]:
        return existing

    monkeypatch.setattr(client, "create", create)
    monkeypatch.setattr(client, "get_object", get_object)
    job = _job()
    obj = reconciler.Admitted(job, {}, {}, [], True, T0)
    artifact = {"uri": "pvc://models/digits-trained", "digest": "sha256:" + "d" * 64}
    patch: dict[str, Any] = {}
    spec = TrainingJobSpec.model_validate(job["spec"])
    events, _ = asyncio.run(reconciler.register(TRAINING_JOB, obj, spec, artifact, patch))
    registered = next(c for c in patch["conditions"] if c["type"] == "Registered")
    assert (registered["reason"], registered["status"]) == want
    assert [e.reason for e in events] == [want[0]]
