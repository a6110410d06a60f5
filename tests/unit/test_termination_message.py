"""The workload's termination message: always under the kubelet's 4 KiB, keeping what the
operator acts on (artifact, input, reason) longest."""

from __future__ import annotations

import json

from torchyard.workloads.report import MAX_MESSAGE_BYTES, encode

ARTIFACT = {"uri": "pvc://models/out", "digest": "sha256:" + "a" * 64, "bytes": 1000}


def test_a_small_result_is_kept_whole():
    result = {"artifact": ARTIFACT, "compressionRatio": 3.9}
    assert json.loads(encode(result)) == result


def test_informational_figures_go_before_the_artifact():
    result = {
        "artifact": {**ARTIFACT, "uri": "pvc://models/" + "x" * 1500},
        "input": {"uri": "pvc://models/" + "y" * 1500},
        "measuredOn": {"dataset": "z" * 1000},
        "search": {"chosen": "w" * 600},
    }
    decoded = json.loads(text := encode(result))
    assert len(text.encode()) <= MAX_MESSAGE_BYTES
    assert decoded["artifact"] == result["artifact"] and decoded["input"] == result["input"]
    assert decoded["truncated"] is True and "measuredOn" not in decoded


def test_a_long_non_ascii_message_is_shortened_and_the_reason_kept():
    # 2,000 characters of "é" are 12,000 bytes of JSON: the message shrinks, the reason
    # (what the operator reports) stays, and encoding ends.
    text = encode({"reason": "QualityGateFailed", "message": "é" * 2000})
    decoded = json.loads(text)
    assert len(text.encode()) <= MAX_MESSAGE_BYTES
    assert decoded["reason"] == "QualityGateFailed"
    assert decoded["message"].startswith("éé") and decoded["truncated"] is True
