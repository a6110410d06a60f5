"""What the quickstart prints and draws, from observations of the objects (pure)."""

from __future__ import annotations

import xml.etree.ElementTree as ET

from torchyard.local.quickstart import chart, report
from torchyard.local.quickstart.observe import view
from torchyard.local.quickstart.timeline import Timeline, error_rate, served_share

DIGEST = "sha256:" + "a" * 64


def _version(name, phase, weight, analysis=None, progressing=None, ready="Ready msg"):
    conditions = [{"type": "Ready", "message": ready, "lastTransitionTime": "2026-01-01T00:00:00Z"}]
    if progressing:
        conditions.append(
            {"type": "Progressing", "reason": progressing[0], "message": progressing[1]}
        )
    status = {"phase": phase, "weight": weight, "conditions": conditions, "readyReplicas": 1}
    if analysis:
        status["analysis"] = analysis
    return {
        "kind": "ModelVersion",
        "metadata": {"name": name, "labels": {"torchyard.io/registered-by": "trainingjob.t"}},
        "spec": {"artifact": {"uri": "pvc://models/m", "digest": DIGEST}},
        "status": status,
    }


def test_the_live_log_says_each_phase_weight_and_analysis_once():
    timeline = Timeline()
    first = timeline.observe(
        0, [view(_version("digits-v2", "Progressing", 50, progressing=("X", "step 1 of 2")))]
    )
    again = timeline.observe(
        1, [view(_version("digits-v2", "Progressing", 50, progressing=("X", "step 1 of 2")))]
    )
    analysed = {"time": "2026-01-01T00:00:10Z", "verdict": "Pass", "requests": 80, "errorRate": 0}
    later = timeline.observe(
        10,
        [
            view(
                _version(
                    "digits-v2", "Progressing", 100, analysed, progressing=("X", "step 2 of 2")
                )
            )
        ],
    )
    assert [line.text for line in first] == ["Progressing: step 1 of 2"]
    assert again == []
    texts = [line.text for line in later]
    assert "weight 50% -> 100%" in texts
    assert "analysis Pass: 80 requests, 0.0 % errors" in texts
    assert timeline.weights["digits-v2"] == [(0, 50), (10, 100)]


def test_a_first_weight_of_0_is_no_change_to_tell():
    timeline = Timeline()
    unweighed = _version("digits-v3", "Progressing", None, progressing=("X", "step 1 of 2"))
    timeline.observe(0, [view(unweighed)])
    zero = _version("digits-v3", "Progressing", 0, progressing=("X", "step 1 of 2"))
    assert timeline.observe(1, [view(zero)]) == []  # was "weight 0% -> 0%"
    half = _version("digits-v3", "Progressing", 50, progressing=("X", "step 1 of 2"))
    assert [line.text for line in timeline.observe(2, [view(half)])] == ["weight 0% -> 50%"]


def test_durations_run_from_first_sight_to_a_settled_phase():
    timeline = Timeline()
    timeline.observe(5, [view(_version("digits-v1", "Progressing", 100))])
    timeline.observe(17, [view(_version("digits-v1", "Serving", 100))])
    assert timeline.duration("ModelVersion/digits-v1") == 12
    assert report.took(timeline.duration("ModelVersion/digits-v1")) == "12s"


def test_client_reports_become_shares_and_error_rates():
    timeline = Timeline()
    window = timeline.add_traffic(3, '{"time": 1, "counts": {"1": [30, 0], "3": [0, 10]}}')
    assert window is not None
    assert served_share(window) == {"1": 100.0, "3": 0.0}
    assert error_rate(window) == 25.0
    assert timeline.add_traffic(4, "sending requests to http://x") is None


def test_the_summary_names_lineage_compression_and_rollback_reason():
    timeline = Timeline()
    job = {
        "kind": "CompressionJob",
        "metadata": {"name": "digits-pruned"},
        "spec": {
            "method": "prune",
            "prune": {"kind": "structured", "sparsity": 0.5},
            "evaluation": {"metric": "accuracy"},
        },
        "status": {
            "phase": "Succeeded",
            "message": "compressed",
            "input": {"uri": "pvc://models/v1", "digest": DIGEST, "producedBy": "TrainingJob/t"},
            "result": {
                "artifact": {"uri": "pvc://models/v2", "digest": DIGEST},
                "before": {"bytes": 200_000, "latencyMs": 0.2, "metric": 0.97},
                "after": {"bytes": 70_000, "latencyMs": 0.1, "metric": 0.96},
                "compressionRatio": 2.86,
                "speedup": 2.0,
            },
        },
    }
    rolled_back = _version(
        "digits-v3", "RolledBack", 0, progressing=("AnalysisFailed", "error rate 100%")
    )
    text = report.summary(
        [job, rolled_back],
        timeline,
        elapsed=190,
        model="digits",
        answers=["digits version 1: 2"],
        chart="/x/rollout.html",
        commands=["kubectl get torchyard -n torchyard-demo"],
    )
    assert "the mission took 3m10s" in text
    assert "read pvc://models/v1 sha256:aaaaaaaaaaaa, written by TrainingJob/t" in text
    assert "200.0 KB -> 70.0 KB (2.86x)" in text
    assert "accuracy 0.9700 -> 0.9600" in text
    assert "AnalysisFailed: error rate 100%" in text
    assert "registered by TrainingJob/t" in text
    assert "/x/rollout.html" in text


def test_the_chart_is_one_self_contained_svg_with_a_line_per_version():
    timeline = Timeline()
    timeline.observe(0, [view(_version("digits-v1", "Serving", 100))])
    timeline.observe(
        20,
        [
            view(_version("digits-v1", "Serving", 50)),
            view(_version("digits-v2", "Progressing", 50)),
        ],
    )
    timeline.add_traffic(25, '{"time": 1, "counts": {"1": [10, 0], "2": [9, 1]}}')
    page = chart.render("digits", timeline, [(20, "v2 applied")], "rollout")
    assert "<script" not in page and "http" not in page.replace("http://www.w3.org", "")
    svg = ET.fromstring(page[page.index("<svg") : page.index("</svg>") + 6])
    lines = svg.findall("{http://www.w3.org/2000/svg}polyline")
    assert len(lines) == 3  # v1, v2, and the error rate
    assert len(svg.findall("{http://www.w3.org/2000/svg}circle")) == 2  # served shares
