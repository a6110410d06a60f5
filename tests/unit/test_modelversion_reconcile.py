"""The ModelVersion controller's glue, against a fake API: which requests one reconcile
of a model makes, what status it writes, which Events it posts, and that it reads the
clock once. The decisions themselves are tested in test_model_plan.py; the controller
against a real API server in tests/cluster/test_modelversion_controller.py."""

from __future__ import annotations

import asyncio
import copy
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import kopf
import pytest
from prometheus_client import REGISTRY

from torchyard.controllers import client, modelversion, objects
from torchyard.controllers.children import CreatedChildren
from torchyard.controllers.modelversion import FINALIZER, KOPF_FINALIZER, Indexes
from torchyard.controllers.queue import Stale
from torchyard.metrics import ANALYSES, ROLLBACKS, VERSION_HEALTHY, VERSION_READY, VERSION_WEIGHT
from torchyard.plans.rollout import ROLLBACK_REASONS, VERDICTS, Counters
from torchyard.refusals import Backoff, Refusal
from torchyard.resources.serving import ROUTER_LABEL
from torchyard.router.proxy import token_digest

T0 = datetime(2026, 12, 3, 9, 0, tzinfo=UTC)
SPEC = {
    "model": "digits",
    "artifact": {"uri": "pvc://models/digits", "digest": "sha256:" + "c" * 64},
    "serving": {"replicas": 1},
}


def _token_sha256(template: dict[str, Any]) -> str:
    env = template["spec"]["containers"][0]["env"]
    assert "TORCHYARD_ROUTER_TOKEN" not in {var["name"] for var in env}  # never the token
    return next(v["value"] for v in env if v["name"] == "TORCHYARD_ROUTER_TOKEN_SHA256")


@dataclass
class FakeApi:
    """The objects a reconcile reads (as the watches would hold them) and the requests
    it makes, applied to those objects as the API server would."""

    versions: dict[str, dict[str, Any]] = field(default_factory=dict)
    deployments: dict[str, dict[str, Any]] = field(default_factory=dict)
    pods: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    service_owners: list[str] | None = None
    service_ports: list[str] = field(default_factory=lambda: ["http", "grpc"])
    service_selector: dict[str, str] = field(default_factory=dict)
    router: dict[str, Any] | None = None
    """The router Deployment's index entry, once created."""
    requests: list[tuple[str, ...]] = field(default_factory=list)
    events: list[tuple[str, str]] = field(default_factory=list)
    clock_reads: int = 0
    revision: int = 1

    def version(self, version: str, phase: str | None = None, **spec: Any) -> str:
        name = f"digits-v{version}"
        self.versions[name] = {
            "apiVersion": "torchyard.io/v1alpha1",
            "kind": "ModelVersion",
            "metadata": {
                "name": name,
                "namespace": "ns",
                "uid": f"uid-{name}",
                "generation": 1,
                "resourceVersion": "1",
            },
            "spec": {**SPEC, "version": version, **spec},
            "status": {"phase": phase} if phase else {},
        }
        return name

    def ready_pod(self, name: str) -> None:
        self.pods[name] = [
            {
                "metadata": {"name": f"{name}-pod", "namespace": "ns"},
                "status": {
                    "phase": "Running",
                    "podIP": "10.0.0.7",
                    "conditions": [{"type": "Ready", "status": "True"}],
                },
            }
        ]

    def indexes(self) -> Indexes:
        deployments = {("ns", f"uid-{n}"): [d] for n, d in self.deployments.items()}
        replicasets = {("ns", f"dep-{n}"): [f"rs-{n}"] for n in self.deployments}
        pods = {("ns", f"rs-{n}"): p for n, p in self.pods.items()}
        services = (
            {
                ("ns", "digits-model"): [
                    {
                        "owners": self.service_owners,
                        "labels": {},
                        "ports": self.service_ports,
                        "selector": self.service_selector,
                    }
                ]
            }
            if self.service_owners is not None
            else {}
        )
        versions = {("ns", "digits"): [copy.deepcopy(v) for v in self.versions.values()]}
        routers = {("ns", "digits-router"): [self.router]} if self.router else {}
        return Indexes(versions, pods, replicasets, deployments, services, routers)  # type: ignore[arg-type]

    def _bump(self, body: dict[str, Any]) -> dict[str, Any]:
        self.revision += 1
        body["metadata"]["resourceVersion"] = str(self.revision)
        return body

    async def create_child(self, manifest: dict[str, Any], **_: Any) -> bool:
        kind, name = manifest["kind"], manifest["metadata"]["name"]
        self.requests.append(("create", kind, name))
        if kind == "Service":
            self.service_owners = [r["uid"] for r in manifest["metadata"]["ownerReferences"]]
            self.service_selector = dict(manifest["spec"]["selector"])
        elif name == "digits-router":
            owners = [r["uid"] for r in manifest["metadata"]["ownerReferences"]]
            digest = manifest["metadata"]["annotations"]["torchyard.io/template-hash"]
            self.router = {
                "uid": "dep-router",
                "owners": owners,
                "token_sha256": _token_sha256(manifest["spec"]["template"]),
                "hash": digest,
            }
        else:
            version = name.removesuffix("-serving")
            self.deployments[version] = {
                "metadata": {
                    "name": name,
                    "uid": f"dep-{version}",
                    "annotations": dict(manifest["metadata"]["annotations"]),
                },
                "spec": {"replicas": manifest["spec"]["replicas"]},
                "status": {},
            }
        return True

    async def patch_status(
        self, kind: Any, namespace: str, name: str, status: dict[str, Any], rv: str | None
    ) -> dict[str, Any] | None:
        self.requests.append(("patch status", name, *sorted(status)))
        body = self.versions[name]
        if rv != body["metadata"]["resourceVersion"]:
            return None  # 409: the write was decided from an old copy
        body["status"] = {**body["status"], **status}
        return self._bump(body)

    async def set_finalizers(
        self, kind: Any, namespace: str, name: str, finalizers: list[str], rv: str
    ) -> dict[str, Any] | None:
        self.requests.append(("finalizers", name, *finalizers))
        body = self.versions[name]
        if rv != body["metadata"]["resourceVersion"]:
            return None
        body["metadata"]["finalizers"] = finalizers
        return self._bump(body)

    async def patch(self, kind: Any, name: str, patch: dict[str, Any], **_: Any) -> None:
        """A serving Deployment's patch (the client's own, in place of the API server's)."""
        self.requests.append(("patch", name, *sorted(patch)))
        if name == "digits-router":
            assert self.router is not None
            self.router["hash"] = patch["metadata"]["annotations"]["torchyard.io/template-hash"]
            self.router["token_sha256"] = _token_sha256(patch["spec"]["template"])
            return
        spec = self.deployments[name.removesuffix("-serving")]["spec"]
        spec["replicas"] = patch.get("spec", {}).get("replicas", spec["replicas"])

    async def add_owners(self, kind: Any, namespace: str, name: str, refs: list[Any]) -> None:
        self.requests.append(("add owners", name, *(r["name"] for r in refs)))

    async def set_selector(
        self, namespace: str, name: str, selector: dict[str, str], current: dict[str, str]
    ) -> None:
        self.requests.append(("select", name, *sorted(selector)))
        self.service_selector = dict(selector)

    async def add_service_ports(self, namespace: str, name: str, ports: list[Any]) -> None:
        self.requests.append(("add ports", name, *(p["name"] for p in ports)))

    def now(self) -> datetime:
        self.clock_reads += 1
        return T0 + timedelta(seconds=self.clock_reads)

    def reconcile(self) -> float | None:
        self.requests.clear()
        self.events.clear()
        self.clock_reads = 0
        return asyncio.run(modelversion.reconcile_model("ns", "digits", self.indexes()))


@pytest.fixture
def api(monkeypatch: pytest.MonkeyPatch) -> FakeApi:
    fake = FakeApi()
    monkeypatch.setattr(client, "create_child", fake.create_child)
    monkeypatch.setattr(client, "patch_status", fake.patch_status)
    monkeypatch.setattr(client, "set_finalizers", fake.set_finalizers)
    monkeypatch.setattr(client, "add_owners", fake.add_owners)
    monkeypatch.setattr(client, "set_selector", fake.set_selector)
    monkeypatch.setattr(client, "add_service_ports", fake.add_service_ports)
    # Never the kubeconfig's cluster, whatever it is.
    monkeypatch.setattr(client, "api", lambda: fake)
    monkeypatch.setattr(modelversion, "now", fake.now)
    monkeypatch.setattr(modelversion, "tokens", {})
    monkeypatch.delenv(modelversion.ROUTER_ENV, raising=False)  # the default: on
    monkeypatch.setattr(
        kopf, "event", lambda body, type, reason, message: fake.events.append((type, reason))
    )
    # What earlier tests' reconciles wrote and created must not be taken for news.
    monkeypatch.setattr(objects, "_written", {})
    monkeypatch.setattr(
        modelversion, "created_deployments", CreatedChildren(snap=modelversion.deployment_entry)
    )
    return fake


def test_a_new_version_gets_its_service_deployment_status_and_finalizer(api: FakeApi):
    api.version("1")
    assert api.reconcile() is not None  # deploying: looked at again
    assert api.requests[:3] == [
        ("create", "Service", "digits-model"),
        ("create", "Deployment", "digits-v1-serving"),
        ("create", "Deployment", "digits-router"),
    ]
    assert api.requests[3][:2] == ("patch status", "digits-v1")
    assert api.requests[4] == ("finalizers", "digits-v1", FINALIZER)
    assert api.events == [("Normal", "Accepted"), ("Normal", "Deploying")]
    assert api.versions["digits-v1"]["status"]["phase"] == "Progressing"


def test_one_reconcile_reads_the_clock_once(api: FakeApi):
    api.version("1")
    api.reconcile()
    assert api.clock_reads == 1
    stamps = {c["lastTransitionTime"] for c in api.versions["digits-v1"]["status"]["conditions"]}
    assert stamps == {"2026-12-03T09:00:01Z"}


def test_a_settled_model_makes_no_request(api: FakeApi):
    api.version("1")
    api.reconcile()
    api.ready_pod("digits-v1")
    for _ in range(2):  # serves, then is recorded as the stable version
        api.reconcile()
    assert api.versions["digits-v1"]["status"]["phase"] == "Serving"
    assert api.reconcile() is None
    assert (api.requests, api.events) == ([], [])


def test_an_older_release_finalizer_is_replaced(api: FakeApi):
    name = api.version("1")
    api.versions[name]["metadata"]["finalizers"] = [KOPF_FINALIZER, "example.com/keep"]
    api.reconcile()
    assert ("finalizers", name, "example.com/keep", FINALIZER) in api.requests


def test_a_leaving_serving_version_is_let_go_once_the_restored_one_is_ready(api: FakeApi):
    old = api.version("1", phase="Superseded")
    new = api.version("2", phase="Serving")
    api.versions[new]["metadata"]["finalizers"] = [FINALIZER]
    api.versions[new]["metadata"]["deletionTimestamp"] = "2026-12-03T08:59:00Z"
    api.reconcile()
    assert not [r for r in api.requests if r[:2] == ("finalizers", new)]
    assert api.deployments[old]["spec"]["replicas"] == 1  # restored
    api.ready_pod(old)
    api.reconcile()
    assert ("finalizers", new) in [r[:2] for r in api.requests]
    assert api.versions[new]["metadata"]["finalizers"] == []


def test_a_refused_model_service_is_tried_again_on_a_timer(api: FakeApi, monkeypatch):
    """On a settled model nothing else would wake it: the refusal's pause does."""
    api.version("1")
    api.reconcile()
    api.ready_pod("digits-v1")
    for _ in range(2):
        api.reconcile()
    assert api.reconcile() is None  # settled

    async def refused(manifest: dict[str, Any], **_: Any) -> bool:
        raise client.Refused(Refusal("FailedCreate", "exceeded quota: services=0"))

    monkeypatch.setattr(client, "create_child", refused)
    monkeypatch.setattr(modelversion, "refused_creates", Backoff())
    api.service_owners = None  # deleted by hand
    delay = api.reconcile()
    ready = next(
        c for c in api.versions["digits-v1"]["status"]["conditions"] if c["type"] == "Ready"
    )
    assert (ready["status"], ready["reason"]) == ("False", "FailedCreate")
    assert delay == pytest.approx(10.0, abs=1.0)  # the first pause of refusals.Backoff


def test_a_write_that_lost_a_race_keeps_the_analysis_window(api: FakeApi, monkeypatch):
    """A 409 on the candidate's status means planning again from a fresh copy: the
    window the analysis measures from must not move before that plan."""
    api.version("1", phase="Serving")
    api.ready_pod("digits-v1")
    api.version("2", rollout={"steps": [{"setWeight": 50}]})
    start = {"digits-v2-pod": Counters(requests=10.0)}
    monkeypatch.setattr(modelversion, "windows", modelversion.Windows())
    modelversion.windows.keep(("ns", "digits"), "digits-v2", start)

    async def conflict(*args: Any) -> None:
        return None

    monkeypatch.setattr(client, "patch_status", conflict)
    monkeypatch.setattr(client, "get_object", lambda *args: _found(api.versions[args[2]]))
    with pytest.raises(Stale):
        api.reconcile()
    assert modelversion.windows.start(("ns", "digits"), "digits-v2") == start


@pytest.fixture
def no_series(monkeypatch: pytest.MonkeyPatch) -> None:
    """Forget the series earlier tests' reconciles of the same model made."""
    for metric in (ANALYSES, ROLLBACKS, VERSION_WEIGHT, VERSION_HEALTHY, VERSION_READY):
        metric.clear()
    monkeypatch.setattr(modelversion, "_versions_seen", {})


def _rollbacks(reason: str) -> float | None:
    labels = {"namespace": "ns", "model": "digits", "reason": reason}
    return REGISTRY.get_sample_value("torchyard_modelversion_rollbacks_total", labels)


def _analyses(version: str, verdict: str) -> float | None:
    labels = {"namespace": "ns", "model": "digits", "version": version, "verdict": verdict}
    return REGISTRY.get_sample_value("torchyard_modelversion_analysis_total", labels)


@pytest.mark.usefixtures("no_series")
def test_the_counters_are_at_zero_before_the_first_rollback(api: FakeApi):
    """A series first scraped at 1 has no rise for increase() to see: the alert on a
    model's first rollback (manifests/monitoring) needs the 0 before it."""
    api.version("1", phase="Superseded")
    serving = api.version("2", phase="Serving")
    api.reconcile()
    assert [_rollbacks(reason) for reason in ROLLBACK_REASONS] == [0.0] * len(ROLLBACK_REASONS)
    for version in ("1", "2"):
        assert [_analyses(version, verdict) for verdict in VERDICTS] == [0.0] * len(VERDICTS)
    api.versions[serving]["spec"]["rollback"] = True
    api.versions[serving]["metadata"]["generation"] = 2
    api.reconcile()
    assert api.versions[serving]["status"]["phase"] == "RolledBack"
    assert _rollbacks("ManualRollback") == 1.0


@pytest.mark.usefixtures("no_series")
def test_a_version_s_series_go_with_it_and_the_model_s_with_the_last(api: FakeApi):
    api.version("1", phase="Superseded")
    gone = api.version("2", phase="Serving")
    api.reconcile()
    del api.versions[gone]  # its deletion is over
    api.reconcile()
    assert [_analyses("2", verdict) for verdict in VERDICTS] == [None] * len(VERDICTS)
    assert _analyses("1", "Fail") == 0.0 and _rollbacks("Replaced") == 0.0
    api.versions.clear()
    api.reconcile()
    assert [_rollbacks(reason) for reason in ROLLBACK_REASONS] == [None] * len(ROLLBACK_REASONS)
    assert _analyses("1", "Fail") is None


@pytest.mark.usefixtures("no_series")
def test_the_ready_pods_gauge_follows_the_version_s_ready_pods(api: FakeApi):
    """What TorchyardModelNoReadyPods reads, beside the versions' weights."""
    labels = {"namespace": "ns", "model": "digits", "version": "1"}
    name = api.version("1")
    api.reconcile()
    assert REGISTRY.get_sample_value("torchyard_modelversion_ready_replicas", labels) == 0.0
    api.ready_pod(name)
    api.reconcile()
    assert REGISTRY.get_sample_value("torchyard_modelversion_ready_replicas", labels) == 1.0
    api.pods[name] = []  # evicted, and none can come back
    api.reconcile()
    assert api.versions[name]["status"]["phase"] == "Serving"
    assert REGISTRY.get_sample_value("torchyard_modelversion_ready_replicas", labels) == 0.0
    weight = REGISTRY.get_sample_value("torchyard_modelversion_weight_percent", labels)
    assert weight == 100.0
    api.versions.clear()
    api.reconcile()
    assert REGISTRY.get_sample_value("torchyard_modelversion_ready_replicas", labels) is None


async def _found(body: dict[str, Any]) -> dict[str, Any]:
    return copy.deepcopy(body)


def test_a_model_service_of_an_earlier_release_gets_the_ports_added_since(api: FakeApi):
    """A Service made before the gRPC port existed is patched to have it (a strategic
    merge by port: its http port and its ClusterIP stay)."""
    api.version("1")
    api.reconcile()
    api.service_ports = ["http"]
    api.reconcile()
    assert ("add ports", "digits-model", "grpc") in api.requests
    api.service_ports = ["http", "grpc"]
    api.reconcile()
    assert not [r for r in api.requests if r[0] == "add ports"]


def test_a_router_made_by_another_release_is_rolled_with_its_token_kept(api: FakeApi):
    api.version("1")
    api.reconcile()
    assert api.router is not None
    digest = api.router["token_sha256"]
    assert digest == token_digest(modelversion.tokens[("ns", "digits")])
    api.router["hash"] = "an-older-release"
    api.reconcile()
    assert ("patch", "digits-router", "metadata", "spec") in api.requests
    assert api.router["token_sha256"] == digest and api.router["hash"] != "an-older-release"
    api.reconcile()
    assert not [r for r in api.requests if r[:2] == ("patch", "digits-router")]


def test_another_operator_process_rolls_the_router_once_with_a_token_of_its_own(
    api: FakeApi, monkeypatch
):
    api.version("1")
    api.reconcile()
    assert api.router is not None
    before = api.router["token_sha256"]
    monkeypatch.setattr(modelversion, "tokens", {})  # a restart: the token was in memory
    # Until the watch shows the patch, the same new token is patched in again, never another.
    patched = []
    for _ in range(2):
        seen = dict(api.router)
        api.reconcile()
        patched.append(api.router["token_sha256"])
        api.router.update(token_sha256=seen["token_sha256"], hash=seen["hash"])
    assert patched[0] == patched[1] != before
    assert patched[0] == token_digest(modelversion.tokens[("ns", "digits")])


def test_with_the_router_turned_off_no_router_is_made(api: FakeApi, monkeypatch):
    monkeypatch.setenv(modelversion.ROUTER_ENV, "off")
    api.version("1")
    api.reconcile()
    assert api.router is None
    assert ("create", "Deployment", "digits-router") not in api.requests


def test_a_refused_router_says_so_in_an_event_and_the_model_still_serves(api: FakeApi, monkeypatch):
    monkeypatch.setattr(modelversion, "refused_creates", Backoff())
    create = api.create_child

    async def no_router(manifest: dict[str, Any], **kwargs: Any) -> bool:
        if manifest["metadata"]["name"] == "digits-router":
            api.requests.append(("create", "Deployment", "digits-router"))
            raise client.Refused(Refusal("FailedCreate", "exceeded quota: deployments=2"))
        return await create(manifest, **kwargs)

    monkeypatch.setattr(client, "create_child", no_router)
    api.version("1")
    api.reconcile()
    assert ("Warning", modelversion.ROUTER_REFUSED) in api.events
    api.ready_pod("digits-v1")
    api.reconcile()
    api.reconcile()
    assert api.versions["digits-v1"]["status"]["phase"] == "Serving"
    # Held for its pause: neither tried nor told again on every reconcile.
    assert ("create", "Deployment", "digits-router") not in api.requests
    assert ("Warning", modelversion.ROUTER_REFUSED) not in api.events
    assert ROUTER_LABEL not in api.service_selector  # the Service selects the serving pods


@pytest.mark.parametrize(
    ("setting", "on"),
    [(None, True), ("", True), ("on", True), ("off", False), ("OFF", False), ("false", False),
     ("0", False), (" No ", False), ("true", True), ("maybe", True)],
)  # fmt: skip
def test_the_router_setting_is_on_unless_it_says_off(setting, on, caplog, monkeypatch):
    monkeypatch.setattr(modelversion, "_warned_settings", set())
    assert modelversion.routers_on(setting) is on
    if setting == "maybe":
        assert "neither on nor off" in caplog.text
