"""Records of text for a TrainingJob task: JSON Lines and CSV read by offset, checked
before training, and dealt out to ranks by step; the early stop they feed."""

from __future__ import annotations

import json
import pickle
from pathlib import Path

import pytest
import torch

from torchyard.api.training import EarlyStopping, TextTask, TrainingDataset
from torchyard.workloads.datasets import DatasetError
from torchyard.workloads.records import (
    FileRecords,
    check_records,
    open_records,
    record_format,
    sorted_labels,
    write_records,
)
from torchyard.workloads.train.batches import StepSampler, evaluation_batches, grouped
from torchyard.workloads.train.evaluation import EvaluationLog
from torchyard.workloads.train.schedule import Schedule, rank_share

ROWS = [
    {"text": "A fine day, all in all.", "label": "positive", "stars": 4, "title": "Fine"},
    {"text": 'She said "no",\nthen left.', "label": "negative", "stars": 1, "title": "Left"},
    {"text": "Tolerable, barely.", "label": "negative", "stars": 2, "title": "Barely"},
    {"text": "Wonderful, truly.", "label": "positive", "stars": 5, "title": "Wow"},
]


def _dataset(tmp_path: Path, format: str, rows=ROWS) -> TrainingDataset:
    path = tmp_path / f"data.{format}"
    if format == "csv":
        import csv

        with path.open("w", newline="", encoding="utf-8") as handle:
            writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
            writer.writeheader()
            writer.writerows(rows)
    else:
        path.write_text("".join(json.dumps(row) + "\n\n" for row in rows))  # blank lines too
    return TrainingDataset(uri=f"file://{path}")


@pytest.mark.parametrize("format", ["jsonl", "csv"])
def test_records_read_one_at_a_time_in_any_order(tmp_path, format):
    records = open_records(_dataset(tmp_path, format))
    assert len(records) == len(ROWS)
    for index in (3, 1, 0, 2, 1):
        assert records[index]["text"] == ROWS[index]["text"]  # a quoted newline in csv too
        assert str(records[index]["stars"]) == str(ROWS[index]["stars"])
    # A DataLoader worker gets a copy without the parent's open file, and opens its own.
    again = pickle.loads(pickle.dumps(records))
    assert again[3] == records[3]


def test_a_rank_holds_offsets_not_records(tmp_path):
    rows = [{"text": "x" * 1000, "label": str(i % 2)} for i in range(500)]
    records = open_records(_dataset(tmp_path, "jsonl", rows))
    assert isinstance(records, FileRecords)
    assert records.offsets.itemsize * len(records.offsets) == 8 * 500  # ~500 KB of text
    assert records[499]["label"] == "1"


def test_max_samples_reads_the_head(tmp_path):
    source = _dataset(tmp_path, "csv").model_copy(update={"max_samples": 2})
    assert [r["title"] for r in open_records(source)] == ["Fine", "Left"]


def test_format_comes_from_the_spec_or_the_extension():
    assert record_format(TrainingDataset(uri="pvc://data/a/train.JSONL")) == "jsonl"
    assert record_format(TrainingDataset(uri="s3://bucket/train.csv")) == "csv"
    assert record_format(TrainingDataset(uri="file:///data/x.pt")) is None
    assert record_format(TrainingDataset(uri="file:///data/x.txt", format="csv")) == "csv"
    assert record_format(TrainingDataset(uri="builtin://reviews")) is None


def test_classes_are_found_in_the_data_and_sorted():
    assert sorted_labels({"10", "2", "1"}) == ["1", "2", "10"]
    assert sorted_labels({"pos", "neg"}) == ["neg", "pos"]


def test_check_reads_every_record_and_returns_the_classes(tmp_path):
    records = open_records(_dataset(tmp_path, "jsonl"))
    assert check_records(records, TextTask(type="classification")) == ["negative", "positive"]
    given = TextTask(type="classification", labels=["positive", "negative"])
    assert check_records(records, given) == ["positive", "negative"]
    # Integer labels are classes too, whatever their JSON type.
    assert check_records(records, TextTask(type="classification", label_field="stars")) == [
        "1",
        "2",
        "4",
        "5",
    ]
    assert check_records(records, TextTask(type="regression", label_field="stars")) == []
    assert check_records(records, TextTask(type="embedding", pair_field="title")) == []


@pytest.mark.parametrize(
    ("rows", "task", "message"),
    [
        (
            [{"body": "no text field", "label": "a"}],
            TextTask(type="classification"),
            r"line 1 of .*: field 'text' must be a non-empty text \(no such field\); its "
            r"fields: body, label",
        ),
        (
            [{"text": "fine", "label": "a"}, {"text": "fine", "label": "zzz"}],
            TextTask(type="classification", labels=["a", "b"]),
            r"line 3 of .*: label 'zzz' is not one of task.labels",
        ),
        (
            [{"text": "one class", "label": "a"}, {"text": "only", "label": "a"}],
            TextTask(type="classification"),
            r"needs at least two classes; field 'label' holds only \['a'\]",
        ),
        (
            [{"text": "fine", "label": "five"}],
            TextTask(type="regression"),
            r"field 'label' must be a finite number for task type regression, not 'five'",
        ),
        (
            [{"text": "fine", "label": None}],
            TextTask(type="classification"),
            r"field 'label' must be a class label",
        ),
        (
            [{"text": "no partner"}],
            TextTask(type="embedding", pair_field="title"),
            r"field 'title' must be a non-empty text",
        ),
    ],
)
def test_a_bad_record_is_named_by_line_and_field(tmp_path, rows, task, message):
    with pytest.raises(DatasetError, match=message):
        check_records(open_records(_dataset(tmp_path, "jsonl", rows)), task)


def test_a_line_that_is_not_an_object_is_named(tmp_path):
    path = tmp_path / "bad.jsonl"
    path.write_text('{"text": "ok", "label": 1}\n[1, 2]\n')
    with pytest.raises(DatasetError, match=r"line 2 of .* is a JSON list"):
        check_records(
            open_records(TrainingDataset(uri=f"file://{path}")), TextTask(type="regression")
        )


def test_an_empty_csv_and_a_tensor_file_are_refused(tmp_path):
    (tmp_path / "empty.csv").write_text("")
    with pytest.raises(DatasetError, match="starts with a header row"):
        open_records(TrainingDataset(uri=f"file://{tmp_path}/empty.csv"))
    with pytest.raises(DatasetError, match="not a file of records"):
        open_records(TrainingDataset(uri=f"file://{tmp_path}/data.pt"))
    with pytest.raises(DatasetError, match="has no records of text"):
        open_records(TrainingDataset(uri="builtin://digits"))


def test_the_builtin_reviews_split_and_write_as_files(tmp_path):
    train = open_records(TrainingDataset(uri="builtin://reviews"))
    test = open_records(TrainingDataset(uri="builtin://reviews", split="test"))
    assert (len(train), len(test)) == (512, 128)
    assert {r["text"] for r in train}.isdisjoint({r["text"] for r in test})
    assert {r["label"] for r in test} == {"negative", "positive"}
    for format in ("jsonl", "csv"):
        write_records(tmp_path / f"test.{format}", test, format)
        again = open_records(TrainingDataset(uri=f"file://{tmp_path}/test.{format}"))
        assert [r["text"] for r in again] == [r["text"] for r in test]


def test_each_step_is_dealt_out_to_the_ranks_in_pieces():
    schedule = Schedule(samples=100, global_batch=16, epochs=2, seed=3)
    world, pieces = 3, 2
    streams = [
        list(StepSampler(schedule, lambda b, r=r: rank_share(b, r, world), 0, pieces))
        for r in range(world)
    ]
    assert all(len(stream) == schedule.total_steps * pieces for stream in streams)
    for step in range(schedule.total_steps):
        taken = [i for stream in streams for part in stream[2 * step : 2 * step + 2] for i in part]
        assert sorted(taken) == sorted(schedule.batch(step).tolist())
    # A resumed rank starts at its step of the same order.
    resumed = list(StepSampler(schedule, lambda b: rank_share(b, 1, world), 7, pieces))
    assert resumed == streams[1][7 * pieces :]
    steps = list(grouped(iter(streams[0]), pieces))
    assert len(steps) == schedule.total_steps and all(len(step) == 2 for step in steps)


def test_evaluation_batches_do_not_depend_on_the_world_size():
    alone = evaluation_batches(10, 3, 0, 1)
    shared = [b for rank in range(4) for b in evaluation_batches(10, 3, rank, 4)]
    assert sorted(map(tuple, shared)) == sorted(map(tuple, alone))
    assert alone == [[0, 1, 2], [3, 4, 5], [6, 7, 8], [9]]
    assert evaluation_batches(2, 3, 1, 2) == []  # a rank may have none


def test_early_stop_after_patience_epochs_without_improvement():
    log = EvaluationLog("accuracy", higher_is_better=True)
    rule = EarlyStopping(patience=2, min_delta=0.01)
    for epoch, value in enumerate([0.70, 0.80, 0.805, 0.79], start=1):
        log.add(epoch, epoch * 10, {"accuracy": value})
        assert log.should_stop(rule) == (epoch == 4)  # 0.805 is within minDelta
    assert log.best_epoch() == 3  # best as measured, whatever minDelta
    assert log.report(stopped_early=True)["stoppedEarly"] is True
    assert not log.should_stop(None)


def test_lower_is_better_for_mean_squared_error():
    log = EvaluationLog("mse", higher_is_better=False)
    for epoch, value in enumerate([2.0, 1.0, 1.5], start=1):
        log.add(epoch, epoch, {"mse": value})
    assert log.best_epoch() == 2
    assert log.should_stop(EarlyStopping(patience=1))
    assert not log.should_stop(EarlyStopping(patience=2))


def test_tokenized_batches_carry_the_targets(tmp_path):
    from torchyard.storage import fetch
    from torchyard.workloads.textmodels import load_tokenizer
    from torchyard.workloads.train.batches import RecordDataset, TextCollate

    records = open_records(_dataset(tmp_path, "jsonl"))
    tokenizer = load_tokenizer(fetch("builtin://all-minilm-l6-v2"))
    items = [RecordDataset(records)[i] for i in (0, 1)]
    task = TextTask(type="classification", max_length=8)
    batch = TextCollate(tokenizer, task, ["negative", "positive"], records)(items)
    assert batch["input_ids"].shape == (2, 8)  # the newline text is truncated at maxLength
    assert batch["labels"].tolist() == [1, 0]
    pairs = TextCollate(tokenizer, TextTask(type="embedding", pair_field="title"), [], records)
    assert pairs(items)["input_ids"].shape[0] == 4  # texts, then their titles
    numbers = TextCollate(tokenizer, TextTask(type="regression", label_field="stars"), [], records)
    assert numbers(items)["labels"].dtype == torch.float32


def test_forked_loader_workers_each_read_their_own_records(tmp_path):
    """The parent reads a record first (its check does), then forked workers read in
    parallel: each must seek its own file, never the parent's shared one."""
    from torch.utils.data import DataLoader

    from torchyard.workloads.train.batches import RecordDataset

    rows = [{"text": f"record {i} " + "x" * (i % 97), "label": str(i)} for i in range(4000)]
    records = open_records(_dataset(tmp_path, "jsonl", rows))
    assert records[0]["label"] == "0"  # the parent's file is open now
    batches = [list(range(start, start + 50)) for start in range(0, 4000, 50)]
    loader = DataLoader(
        RecordDataset(records), batch_sampler=batches, collate_fn=list, num_workers=2
    )
    seen = [(index, record["label"]) for batch in loader for index, record in batch]
    assert seen == [(i, str(i)) for i in range(4000)]


def test_a_spreadsheets_byte_order_mark_is_not_part_of_the_header(tmp_path):
    path = tmp_path / "excel.csv"
    path.write_bytes('\ufefftext,label\r\n"one, two",a\r\nthree,b\r\n'.encode())
    records = open_records(TrainingDataset(uri=f"file://{path}"))
    assert [r["text"] for r in records] == ["one, two", "three"]
    assert check_records(records, TextTask(type="classification")) == ["a", "b"]


def test_a_class_named_twice_is_refused():
    with pytest.raises(ValueError, match="labels: each class is named once"):
        TextTask(type="classification", labels=["a", "a", "b"])
    assert sorted_labels({"--1", "2"}) == ["--1", "2"]  # not integers: alphabetical


def test_a_pods_evaluation_that_would_overflow_the_api_is_left_out():
    from torchyard.api.training import TrainingJobStatus
    from torchyard.validation import stored_form

    huge = {"metric": "accuracy", "history": [{"epoch": 2**64, "step": 1, "metrics": {}}]}
    assert stored_form(TrainingJobStatus, "evaluation", huge) is None
    long_key = {
        "metric": "accuracy",
        "history": [{"epoch": 1, "step": 1, "metrics": {"k" * 65: 1.0}}],
    }
    assert stored_form(TrainingJobStatus, "evaluation", long_key) is None
