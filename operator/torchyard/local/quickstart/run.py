"""`torchyard local quickstart`: the mission, end to end, on the running local cluster.

1. apply manifests/samples: a TrainingJob trains the digits model and registers
   version 1, which serves; a CompressionJob prunes version 1 (it waits for the
   training) and registers version 2, which rolls out under the samples' client
   traffic and is promoted; MiniLM is quantized to int8 and served as it ships;
2. version 3, deliberately broken (every request answers 500), is rolled back by the
   analysis on its own;
3. version 2 is rolled back by hand (spec.rollback), and version 1 serves again;
4. both served models answer a request from this machine (a port-forward);
5. the summary, and the rollout drawn as an HTML page.

Every change of every object is printed as it happens; nothing is silent for long.
"""

from __future__ import annotations

import json
import socket
import sys
import time
import urllib.request
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from lightkube import Client
from lightkube.config.kubeconfig import KubeConfig
from lightkube.core.exceptions import ApiError
from lightkube.generic_resource import create_namespaced_resource
from lightkube.resources.core_v1 import Pod

from torchyard.api.base import GROUP, VERSION
from torchyard.api.kinds import KINDS
from torchyard.local.agent.logs import LogsError, log_file
from torchyard.local.portforward import forwarding
from torchyard.local.quickstart import chart, report
from torchyard.local.quickstart.observe import view
from torchyard.local.quickstart.timeline import Line, Timeline

NAMESPACE = "torchyard-demo"
MODEL = "digits"
TRAFFIC_LABEL = "app.kubernetes.io/name=digits-traffic"
FAULTY_VERSION = "3"
POLL_SECONDS = 1.0
QUIET_SECONDS = 20.0
"""After this long without news, say what is still under way."""
RESOURCES = {
    kind.kind: create_namespaced_resource(GROUP, VERSION, kind.kind, kind.plural) for kind in KINDS
}

Objects = dict[str, dict[str, Any]]
"""The demo's torchyard objects by Kind/name."""


class MissionFailed(RuntimeError):
    """A step of the quickstart did not end as it should; the message says where to look."""


@dataclass
class Quickstart:
    repo: Path
    kubeconfig: Path
    kubectl: Path
    state: Path
    """Where the quickstart writes what it made (digits-v3.yaml, summary, rollout.html)."""
    pods_dir: Path | None
    """The node agent's pod directories, where the traffic clients' logs are; None: read
    logs through the API server (a container node's kubelet serves them)."""
    out: Any = sys.stdout
    timeline: Timeline = field(default_factory=Timeline)
    began: float = field(default_factory=time.monotonic)
    marks: list[tuple[float, str]] = field(default_factory=list)
    _client: Client | None = None
    _traffic_read: dict[str, int] = field(default_factory=dict)
    _last_said: float = 0.0

    # -- the mission ----------------------------------------------------------------------

    def run(self) -> str:
        """Run the whole mission; return the summary (also printed)."""
        self.say("quickstart", "applying manifests/samples (kubectl apply --server-side -k)")
        self.kubectl_run("apply", "--server-side", "-k", str(self.repo / "manifests" / "samples"))
        self.follow(
            "the chain: train -> v1 serves -> prune -> v2 rolls out; MiniLM int8",
            self._mission_done,
            timeout=1500,
        )
        self._faulty_version()
        self.follow("v3 to be rolled back by its analysis", self._faulty_rolled_back, timeout=300)
        self.say(f"quickstart/{MODEL}", "rolling back v2 by hand: spec.rollback=true on digits-v2")
        self.mark("v2 rolled back by hand")
        self.kubectl_run(
            "patch", "mv", f"{MODEL}-v2", "-n", NAMESPACE, "--type=merge",
            "-p", '{"spec":{"rollback":true}}',
        )  # fmt: skip
        self.follow("v1 to serve again", self._v1_restored, timeout=300)
        self._read_traffic()
        answers = self._ask_models()
        return self._finish(answers)

    def _mission_done(self, objects: Objects) -> bool:
        for ref, body in objects.items():
            status = body.get("status") or {}
            if status.get("phase") in ("Failed", "RolledBack") and not ref.endswith("-v3"):
                raise MissionFailed(self._failure(ref, body))
        wanted = {
            "TrainingJob/digits-train": "Succeeded",
            "CompressionJob/digits-pruned": "Succeeded",
            "CompressionJob/minilm-int8": "Succeeded",
            f"ModelVersion/{MODEL}-v2": "Serving",
            "ModelVersion/minilm-v1": "Serving",
        }
        return all(_phase(objects.get(ref)) == phase for ref, phase in wanted.items()) and (
            _ready(objects.get(f"ModelVersion/{MODEL}-v2")) > 0
        )

    def _faulty_version(self) -> None:
        """Version 3: the artifact of version 2, served by pods that fail every request."""
        v2 = self.get("ModelVersion", f"{MODEL}-v2")
        spec = v2["spec"]
        manifest = {
            "apiVersion": f"{GROUP}/{VERSION}",
            "kind": "ModelVersion",
            "metadata": {"name": f"{MODEL}-v{FAULTY_VERSION}", "namespace": NAMESPACE},
            "spec": {
                "model": MODEL,
                "version": FAULTY_VERSION,
                "artifact": spec["artifact"],
                "serving": {
                    **spec.get("serving", {}),
                    # The serving workload's fault injection: every answer is a 500.
                    "env": [{"name": "TORCHYARD_FAULT_RATE", "value": "1"}],
                },
                "rollout": spec["rollout"],
            },
        }
        path = self.state / f"{MODEL}-v{FAULTY_VERSION}.yaml"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(yaml.safe_dump(manifest, sort_keys=False))
        self.say(
            f"quickstart/{MODEL}",
            f"applying a broken v{FAULTY_VERSION}: v2's artifact, but its servers answer every "
            f"request with 500 (serving.env TORCHYARD_FAULT_RATE=1; {path})",
        )
        self.mark("v3 applied")
        self.kubectl_run("apply", "-f", str(path))

    def _faulty_rolled_back(self, objects: Objects) -> bool:
        phase = _phase(objects.get(f"ModelVersion/{MODEL}-v{FAULTY_VERSION}"))
        if phase == "Serving":
            raise MissionFailed("the broken version 3 was promoted: its analysis let it through")
        return phase == "RolledBack"

    def _v1_restored(self, objects: Objects) -> bool:
        v1 = objects.get(f"ModelVersion/{MODEL}-v1")
        return (
            _phase(objects.get(f"ModelVersion/{MODEL}-v2")) == "RolledBack"
            and _phase(v1) == "Serving"
            and _ready(v1) > 0
        )

    # -- watching -------------------------------------------------------------------------

    def follow(self, what: str, done: Callable[[Objects], bool], timeout: float) -> Objects:
        """Print every change until done(objects) says so; MissionFailed after `timeout`."""
        self.say("quickstart", f"waiting for {what}")
        deadline = time.monotonic() + timeout
        while True:
            objects = self.objects()
            for line in self.timeline.observe(self.now(), (view(b) for b in objects.values())):
                self.print_line(line)
            self._read_traffic()
            if done(objects):
                return objects
            if time.monotonic() > deadline:
                raise MissionFailed(
                    f"timed out after {timeout:.0f}s waiting for {what}; "
                    + self._under_way(objects)
                )
            if self.now() - self._last_said > QUIET_SECONDS:
                self.say("quickstart", "still working: " + self._under_way(objects))
            time.sleep(POLL_SECONDS)

    def objects(self) -> Objects:
        found: Objects = {}
        for kind, resource in RESOURCES.items():
            for obj in self.client().list(resource, namespace=NAMESPACE):
                body = obj.to_dict()
                body["kind"] = kind
                found[f"{kind}/{body['metadata']['name']}"] = body
        return found

    def get(self, kind: str, name: str) -> dict[str, Any]:
        body: dict[str, Any] = (
            self.client().get(RESOURCES[kind], name, namespace=NAMESPACE).to_dict()
        )
        body["kind"] = kind
        return body

    def _under_way(self, objects: Objects) -> str:
        busy = []
        for ref, body in objects.items():
            shown = view(body)
            if shown.phase in ("Succeeded", "Serving", "Superseded", "RolledBack"):
                continue
            extra = f" ({shown.progress})" if shown.progress else ""
            busy.append(f"{ref} {shown.phase or 'Pending'}{extra}")
        return ", ".join(busy) or "the operator to act"

    def _read_traffic(self) -> None:
        """New report lines of the traffic clients."""
        pods = self.client().list(Pod, namespace=NAMESPACE, labels=_selector(TRAFFIC_LABEL))
        for pod in pods:
            for text in self._new_log_lines(pod.metadata.name):
                if text.startswith("{"):
                    self.timeline.add_traffic(self.now(), text)

    def _new_log_lines(self, name: str) -> list[str]:
        """The complete lines a pod logged since the last call: from its log file on the
        node agent, through the API server (the kubelet) on a container node."""
        if self.pods_dir is None:
            try:
                lines = list(self.client().log(name, namespace=NAMESPACE))
            except ApiError:
                return []  # not started yet
            complete = [line for line in lines if line.endswith("\n")]
            seen = self._traffic_read.get(name, 0)
            self._traffic_read[name] = len(complete)
            return complete[seen:]
        try:
            path = log_file(self.pods_dir, NAMESPACE, name, None, False)
        except LogsError:
            return []
        offset = self._traffic_read.get(str(path), 0)
        with path.open("rb") as log:
            log.seek(offset)
            data = log.read()
        complete = data[: data.rfind(b"\n") + 1]  # a line still being written waits
        self._traffic_read[str(path)] = offset + len(complete)
        return complete.decode(errors="replace").splitlines(keepends=True)

    # -- the end --------------------------------------------------------------------------

    def _ask_models(self) -> list[str]:
        """One request to each served model from this machine, through a port-forward."""
        answers = []
        for model, (body, asked) in (
            (MODEL, _digits_request()),
            ("minilm", _text_request("torchyard serves this sentence")),
        ):
            port = _free_port()
            with forwarding(self.kubeconfig, NAMESPACE, f"{model}-model", 80, port) as base:
                version, answer = _infer(f"{base}/v2/models/{model}/infer", body)
            answers.append(f"{model} version {version}, asked about {asked}: {answer}")
        return answers

    def _finish(self, answers: list[str]) -> str:
        objects = self.objects()
        out_dir = self.state
        out_dir.mkdir(parents=True, exist_ok=True)
        page = out_dir / "rollout.html"
        marks = [*self.marks, *self._milestones()]
        page.write_text(chart.render(MODEL, self.timeline, marks, f"torchyard rollout of {MODEL}"))
        commands = [
            f"export KUBECONFIG={self.kubeconfig} PATH={self.kubectl.parent}:$PATH",
            f"kubectl get torchyard -n {NAMESPACE}",
            f"kubectl describe mv {MODEL}-v3 -n {NAMESPACE}      # why v3 was rolled back",
            f"kubectl get events -n {NAMESPACE} --sort-by=.lastTimestamp",
            f".venv/bin/torchyard local logs digits-train-worker-0 -n {NAMESPACE}",
            f".venv/bin/torchyard local port-forward -n {NAMESPACE} svc/minilm-model 8080:80 &",
            "curl -s localhost:8080/v2/models/minilm/infer -H 'Content-Type: application/json' "
            """-d '{"inputs":[{"name":"text","shape":[1],"datatype":"BYTES","data":["hello"]}]}'""",
            f"kubectl scale deploy/digits-traffic -n {NAMESPACE} --replicas=0   # stop the clients",
            ".venv/bin/torchyard local down      # stop the cluster",
        ]
        text = report.summary(
            list(objects.values()),
            self.timeline,
            elapsed=self.now(),
            model=MODEL,
            answers=answers,
            chart=str(page),
            commands=commands,
        )
        (out_dir / "summary.txt").write_text(text)
        print("\n" + text, file=self.out, flush=True)
        return text

    def _milestones(self) -> list[tuple[float, str]]:
        """The rollout's moments the timeline saw: first sight, promotion, rollback."""
        moments = []
        for version, phase, label in (
            ("1", "Serving", "v1 serves"),
            ("2", None, "v2 registered"),
            ("2", "Serving", "v2 promoted"),
            (FAULTY_VERSION, "RolledBack", "v3 rolled back"),
        ):
            ref = f"ModelVersion/{MODEL}-v{version}"
            seen = self.timeline.phases.get(ref) or []
            at = seen[0][0] if phase is None and seen else self.timeline.entered(ref, phase or "")
            if at is not None:
                moments.append((at, label))
        return moments

    def _failure(self, ref: str, body: Mapping[str, Any]) -> str:
        status = body.get("status") or {}
        failed = [
            c for c in status.get("conditions") or [] if c.get("type") in ("Failed", "Progressing")
        ]
        said = "; ".join(f"{c.get('reason')}: {c.get('message')}" for c in failed)
        return (
            f"{ref} is {status.get('phase')}: {said or status.get('message')}. Look at "
            f"`kubectl describe {ref.replace('/', ' ')} -n {NAMESPACE}`, the operator's log "
            f"(`torchyard local` keeps it in ~/.local/state/torchyard/local/operator.log) and "
            f"`torchyard local logs POD -n {NAMESPACE}`"
        )

    # -- saying ---------------------------------------------------------------------------

    def now(self) -> float:
        return time.monotonic() - self.began

    def mark(self, label: str) -> None:
        self.marks.append((self.now(), label))

    def say(self, ref: str, text: str) -> None:
        self.print_line(self.timeline.note(self.now(), ref, text))

    def print_line(self, line: Line) -> None:
        self._last_said = line.at
        print(f"[{report.clock(line.at):>5}] {line.ref:<30} {line.text}", file=self.out, flush=True)

    def kubectl_run(self, *args: str) -> str:
        import subprocess

        result = subprocess.run(
            [str(self.kubectl), f"--kubeconfig={self.kubeconfig}", *args],
            capture_output=True,
            text=True,
            check=False,
        )
        if result.returncode != 0:
            raise MissionFailed(f"kubectl {' '.join(args)} failed: {result.stderr.strip()}")
        for text in result.stdout.splitlines():
            self.say("kubectl", text)
        return result.stdout

    def client(self) -> Client:
        if self._client is None:
            self._client = Client(KubeConfig.from_file(str(self.kubeconfig)))
        return self._client


def _phase(body: Mapping[str, Any] | None) -> str | None:
    return None if body is None else (body.get("status") or {}).get("phase")


def _ready(body: Mapping[str, Any] | None) -> int:
    return 0 if body is None else int((body.get("status") or {}).get("readyReplicas") or 0)


def _selector(label: str) -> dict[str, str]:
    key, _, value = label.partition("=")
    return {key: value}


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _digits_request() -> tuple[dict[str, Any], str]:
    """The first image of the digits test split, as the jobs saw it, and its label."""
    from torchyard.api.common import DatasetSource
    from torchyard.workloads.datasets import TensorData, load_dataset

    test = load_dataset(DatasetSource(uri="builtin://digits", split="test"))
    assert isinstance(test, TensorData) and test.labels is not None
    row = test.features[0].tolist()
    body = {"inputs": [{"name": "input", "shape": [1, 64], "datatype": "FP32", "data": row}]}
    return body, f"a test image of the digit {int(test.labels[0])}"


def _text_request(sentence: str) -> tuple[dict[str, Any], str]:
    body = {"inputs": [{"name": "text", "shape": [1], "datatype": "BYTES", "data": [sentence]}]}
    return body, f'"{sentence}"'


def _infer(url: str, body: dict[str, Any]) -> tuple[str, str]:
    request = urllib.request.Request(
        url, json.dumps(body).encode(), {"Content-Type": "application/json"}, method="POST"
    )
    with urllib.request.urlopen(request, timeout=30) as response:
        version = response.headers.get("X-Model-Version") or "?"
        answer = json.loads(response.read())
    output = answer["outputs"][0]
    data = output["data"]
    if len(data) > 10 and output["name"] == "embedding":
        shown = f"embedding of {len(data)} numbers, first {[round(v, 3) for v in data[:4]]}"
    else:
        best = max(range(len(data)), key=lambda i: data[i])
        shown = f"scores for {len(data)} classes, the highest for {best}"
    return version, shown
