"""Jobs chained through artifacts: a job whose model is another job's output waits for it.

A CompressionJob that compresses what a TrainingJob writes names the same URI in its
`spec.model.uri` as the TrainingJob in its `spec.output.uri`. Applied together (one
`kubectl apply -k`, one GitOps sync), the consumer must not start before the producer
has published, or it would fail with ModelNotFound. So before a job starts, the
operator looks for a producer of its model in the namespace:

- none: the model is expected to exist already; start;
- one still running: wait (phase Pending, reason WaitingForInput);
- one that failed: fail at once (reason InputFailed), saying why the producer failed;
- one that succeeded: start, pinned to the digest the producer reported, so the job
  reads exactly the artifact its lineage names.

Pure: the controllers pass what their watches hold.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from torchyard.api.common import ModelSource
from torchyard.plans.names import Phase
from torchyard.storage import normalize_uri

WAIT_SECONDS = 5.0
"""How often a waiting job looks at its producer again."""


@dataclass(frozen=True)
class Producer:
    """A job in the namespace whose spec.output.uri is a given model's URI."""

    kind: str
    name: str
    phase: str | None
    digest: str | None
    message: str | None

    @property
    def ref(self) -> str:
        return f"{self.kind}/{self.name}"


def output_uri(body: Mapping[str, Any]) -> str | None:
    """A job's normalised spec.output.uri (its index key), None if it has none."""
    uri = ((body.get("spec") or {}).get("output") or {}).get("uri")
    return normalize_uri(uri) if isinstance(uri, str) and uri else None


def output_entry(
    kind: str, namespace: str, body: Mapping[str, Any]
) -> dict[tuple[str, str], Producer]:
    """A job's entry in its kind's index of jobs by the artifact they write. Empty, not
    None, for a job that writes nothing: kopf keeps an object's earlier entry when its
    indexer returns None."""
    uri = output_uri(body)
    return {(namespace, uri): producer(kind, body)} if uri else {}


def producer(kind: str, body: Mapping[str, Any]) -> Producer:
    """What a job's watched copy says about the artifact it writes."""
    status = body.get("status") or {}
    result = status.get("result") or {}
    # CompressionJob keeps its artifact under result.artifact, TrainingJob in result.
    artifact = result.get("artifact") or result
    return Producer(
        kind=kind,
        name=str(body["metadata"]["name"]),
        phase=status.get("phase"),
        digest=artifact.get("digest"),
        message=status.get("message"),
    )


def find_producer(
    model_uri: str | None, consumer: tuple[str, str], candidates: Iterable[Producer]
) -> Producer | None:
    """The producer of `model_uri` among `candidates` (never the consumer itself); a
    running one wins over finished ones, so a job re-run into the same URI is waited for."""
    if model_uri is None:
        return None
    found = [p for p in candidates if (p.kind, p.name) != consumer]
    if not found:
        return None
    return next((p for p in found if p.phase not in (Phase.SUCCEEDED, Phase.FAILED)), found[0])


@dataclass(frozen=True)
class InputGate:
    """Whether a job may start, and what status says about its input."""

    input: dict[str, Any]
    """status.input: uri or factory, the digest it is pinned to, the producing job."""
    waiting: str | None = None
    """Why the job waits (phase Pending); None when it may start."""
    failure: str | None = None
    """Why the job fails at once (reason InputFailed); None otherwise."""

    @property
    def digest(self) -> str | None:
        """The digest the job must read: its own spec's, else its producer's."""
        digest = self.input.get("digest")
        return digest if isinstance(digest, str) else None


def gate(model: ModelSource, producer: Producer | None) -> InputGate:
    """May a job whose model is `model` start, given the job that produces it?"""
    described: dict[str, Any] = {"uri": model.uri, "factory": model.factory}
    if model.digest:
        described["digest"] = model.digest
    if producer is None:
        return InputGate(_compact(described))
    described["producedBy"] = producer.ref
    if producer.phase == Phase.FAILED:
        said = f": {producer.message}" if producer.message else ""
        return InputGate(
            _compact(described),
            failure=f"model {model.uri} was to be written by {producer.ref}, which failed"
            f"{said}; fix and re-run {producer.ref}, then re-create this job",
        )
    if producer.phase != Phase.SUCCEEDED:
        return InputGate(
            _compact(described),
            waiting=f"waiting for {producer.ref} (phase {producer.phase or 'Pending'}) to "
            f"write model {model.uri}; this job starts when it succeeds",
        )
    described.setdefault("digest", producer.digest)
    return InputGate(_compact(described))


def _compact(values: dict[str, Any]) -> dict[str, Any]:
    return {key: value for key, value in values.items() if value is not None}
