"""The quickstart's closing summary: resources, lineage, compression figures, the
rollout's timeline, and where to look further. Pure: it formats what it is given."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from torchyard.local.quickstart.timeline import Timeline

ORDER = {"TrainingJob": 0, "CompressionJob": 1, "ModelVersion": 2}


def clock(seconds: float) -> str:
    minutes, rest = divmod(round(seconds), 60)
    return f"{minutes}:{rest:02d}"


def took(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    minutes, rest = divmod(round(seconds), 60)
    return f"{minutes}m{rest:02d}s" if minutes else f"{rest}s"


def size(count: int | None) -> str:
    if count is None:
        return "?"
    for unit, scale in (("GB", 1e9), ("MB", 1e6), ("KB", 1e3)):
        if count >= scale:
            return f"{count / scale:.1f} {unit}"
    return f"{count} B"


def short(digest: str | None) -> str:
    return digest[:19] if digest else "-"


def resources(objects: Sequence[Mapping[str, Any]], timeline: Timeline) -> list[str]:
    rows = [("KIND", "NAME", "PHASE", "TOOK", "WHAT IT SAYS")]
    for body in sorted(objects, key=lambda b: (ORDER[b["kind"]], b["metadata"]["name"])):
        status = body.get("status") or {}
        ref = f"{body['kind']}/{body['metadata']['name']}"
        message = str(status.get("message") or "")
        if body["kind"] == "ModelVersion":
            message = _version_summary(status)
        rows.append(
            (
                body["kind"],
                body["metadata"]["name"],
                str(status.get("phase") or "-"),
                took(timeline.duration(ref)),
                message if len(message) <= 100 else message[:97] + "...",
            )
        )
    return _table(rows)


def _version_summary(status: Mapping[str, Any]) -> str:
    ready = {c["type"]: c for c in status.get("conditions") or []}
    progressing = ready.get("Progressing") or {}
    if status.get("phase") in ("RolledBack", "Failed") and progressing.get("message"):
        return f"{progressing.get('reason')}: {progressing['message']}"
    return str((ready.get("Ready") or {}).get("message") or "")


def lineage(objects: Sequence[Mapping[str, Any]]) -> list[str]:
    """Which job made which artifact from which input, and which version serves it."""
    lines = []
    for body in sorted(objects, key=lambda b: (ORDER[b["kind"]], b["metadata"]["name"])):
        status = body.get("status") or {}
        name = f"{body['kind']}/{body['metadata']['name']}"
        if body["kind"] == "ModelVersion":
            artifact = body["spec"]["artifact"]
            made_by = (body["metadata"].get("labels") or {}).get("torchyard.io/registered-by")
            by = f" (registered by {_job_ref(made_by)})" if made_by else " (applied)"
            lines.append(f"{name} serves {artifact['uri']} {short(artifact['digest'])}{by}")
            continue
        read = status.get("input") or {}
        if read.get("uri"):
            source = f"read {read['uri']} {short(read.get('digest'))}"
        else:
            source = f"started from {read.get('factory')} (fresh weights)"
        if read.get("producedBy"):
            source += f", written by {read['producedBy']}"
        result = status.get("result") or {}
        out = result.get("artifact") or result
        lines.append(f"{name} {source} -> wrote {out.get('uri', '-')} {short(out.get('digest'))}")
    return lines


JOB_KINDS = {"trainingjob": "TrainingJob", "compressionjob": "CompressionJob"}


def _job_ref(label: str) -> str:
    """compressionjob.digits-pruned (the registered-by label) -> CompressionJob/digits-pruned"""
    kind, _, name = label.partition(".")
    return f"{JOB_KINDS.get(kind, kind)}/{name}"


def compression(objects: Sequence[Mapping[str, Any]]) -> list[str]:
    rows = [("JOB", "METHOD", "SIZE", "LATENCY (1 batch)", "QUALITY")]
    for body in objects:
        if body["kind"] != "CompressionJob":
            continue
        spec, result = body["spec"], (body.get("status") or {}).get("result") or {}
        before, after = result.get("before") or {}, result.get("after") or {}
        method = spec["method"]
        block = spec.get(method) or {}
        if method == "quantize":
            method = f"quantize {block.get('mode', 'dynamic')}"
        elif method == "prune":
            method = f"prune {block.get('kind', '')} {100 * float(block.get('sparsity', 0)):.0f}%"
        metric = (spec.get("evaluation") or {}).get("metric", "metric")
        rows.append(
            (
                body["metadata"]["name"],
                method,
                f"{size(before.get('bytes'))} -> {size(after.get('bytes'))}"
                + (
                    f" ({result['compressionRatio']:.2f}x)"
                    if result.get("compressionRatio")
                    else ""
                ),
                f"{before.get('latencyMs', 0):.2f} -> {after.get('latencyMs', 0):.2f} ms"
                + (f" ({result['speedup']:.2f}x)" if result.get("speedup") else ""),
                f"{metric} {before.get('metric', 0):.4f} -> {after.get('metric', 0):.4f}",
            )
        )
    return _table(rows)


def rollout(model: str, timeline: Timeline) -> list[str]:
    """The model's versions through time: phases, weights, analyses, notes."""
    prefix = f"ModelVersion/{model}-v"
    lines = [
        f"{clock(line.at):>6}  {line.ref.split('/', 1)[1]:<12} {line.text}"
        for line in timeline.lines
        if line.ref.startswith(prefix) or line.ref == f"quickstart/{model}"
    ]
    totals: dict[str, list[int]] = {}
    for window in timeline.traffic:
        for version, (ok, failed) in window.counts.items():
            pair = totals.setdefault(version, [0, 0])
            pair[0] += ok
            pair[1] += failed
    if totals:
        sent = sum(ok + failed for ok, failed in totals.values())
        each = ", ".join(
            f"{'no answer' if v == 'none' else 'v' + v}: {ok} answered, {failed} failed"
            for v, (ok, failed) in sorted(totals.items())
        )
        lines.append(f"{'':>6}  clients sent {sent} requests ({each})")
    return lines


def _table(rows: Sequence[tuple[str, ...]]) -> list[str]:
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    return ["  ".join(cell.ljust(widths[i]) for i, cell in enumerate(row)).rstrip() for row in rows]


def summary(
    objects: Sequence[Mapping[str, Any]],
    timeline: Timeline,
    *,
    elapsed: float,
    model: str,
    answers: Sequence[str],
    chart: str | None,
    commands: Sequence[str],
) -> str:
    sections = [
        f"torchyard quickstart: the mission took {took(elapsed)}",
        "",
        "Resources (namespace torchyard-demo)",
        *(f"  {line}" for line in resources(objects, timeline)),
        "",
        "Lineage",
        *(f"  {line}" for line in lineage(objects)),
        "",
        "Compression (before -> after)",
        *(f"  {line}" for line in compression(objects)),
        "",
        f"Rollout of the {model} model (m:ss since the start)",
        *(f"  {line}" for line in rollout(model, timeline)),
    ]
    if chart:
        sections += ["", f"The rollout drawn (weights, served shares, errors): {chart}"]
    if answers:
        sections += ["", "The served models answer", *(f"  {line}" for line in answers)]
    sections += ["", "Look further", *(f"  {line}" for line in commands)]
    return "\n".join(sections) + "\n"
