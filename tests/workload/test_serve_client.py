"""The smoke-traffic client against a real server: answers counted by version."""

from __future__ import annotations

import json
import time

from tests.workload.serving import free_port, mlp_artifact, serving, serving_spec
from torchyard.workloads.serve import client


def test_counts_answers_and_failures_by_the_version_that_gave_them(tmp_path):
    spec = serving_spec(mlp_artifact(tmp_path))
    with serving(tmp_path, spec, fault_rate=0.5) as server:
        counts = client.run(server.model_url, None, seconds=1.0, interval=0.0)
    answered, failed = counts.pop("2")
    assert counts == {}
    assert answered > 5 and abs(answered - failed) <= 1


def test_stops_at_the_stop_file_and_writes_its_counts(tmp_path):
    stop, output = tmp_path / "stop", tmp_path / "counts.json"
    stop.touch()
    spec = serving_spec(mlp_artifact(tmp_path))
    with serving(tmp_path, spec) as server:
        assert (
            client.main([server.model_url, "--stop-file", str(stop), "--output", str(output)]) == 0
        )
    assert json.loads(output.read_text()) == {}


def test_nobody_answering_ends_at_the_deadline_with_nothing_counted():
    url = f"http://127.0.0.1:{free_port()}/v2/models/digits"
    assert client.run(url, None, seconds=1.0, interval=0.0) == {}


def test_stops_after_the_number_of_requests_asked(tmp_path):
    spec = serving_spec(mlp_artifact(tmp_path))
    with serving(tmp_path, spec, fault_rate=0.5) as server:
        counts = client.run(server.model_url, None, None, interval=0.0, requests=40)
    assert sum(counts["2"]) == 40


def test_times_say_when_each_version_first_and_last_answered(tmp_path):
    output = tmp_path / "counts.json"
    spec = serving_spec(mlp_artifact(tmp_path))
    with serving(tmp_path, spec) as server:
        began = time.time()
        args = [server.model_url, "--requests", "5", "--times", "--output", str(output)]
        assert client.main(args) == 0
        ended = time.time()
    said = json.loads(output.read_text())
    assert said["counts"] == {"2": [5, 0]}
    first, last = said["seen"]["2"]
    assert began <= first <= last <= ended


def test_requests_no_version_answered_are_kept_with_their_error(tmp_path):
    import threading

    spec = serving_spec(mlp_artifact(tmp_path))
    counts: dict[str, list[int]] = {}
    unanswered: list[dict] = []
    with serving(tmp_path, spec) as server:

        def send() -> None:
            counts.update(client.run(server.model_url, None, 3.0, 0.01, unanswered=unanswered))

        sender = threading.Thread(target=send)
        sender.start()
        time.sleep(1.0)  # answered by version 2 until the server stops
    sender.join()
    assert counts["2"][0] > 0 and counts["none"][1] > 0, counts
    assert 0 < len(unanswered) <= client.MAX_UNANSWERED
    assert "refused" in unanswered[0]["error"].lower(), unanswered[0]
