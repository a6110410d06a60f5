"""Records of text for a TrainingJob with a task: JSON Lines or CSV files, or the builtin
`reviews` set.

A file is indexed once (the byte offset where each record starts: 8 bytes a record) and
then read a record at a time, so that a rank, and each of its DataLoader workers, holds
only the records of the batches it computes, never the whole dataset. The same pass
checks every record, so that a bad one fails the job before any rank waits on another,
with its line number and field, instead of stopping one rank in the middle of a step.
"""

from __future__ import annotations

import csv
import io
import json
import math
import os
from abc import ABC, abstractmethod
from array import array
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any, BinaryIO
from urllib.parse import urlparse

from torchyard.api.training import TextTask, TrainingDataset
from torchyard.storage import StorageError, fetch
from torchyard.workloads.datasets import DatasetError, split_indices

RECORD_FORMATS = {".jsonl": "jsonl", ".json": "jsonl", ".ndjson": "jsonl", ".csv": "csv"}
# A CSV field may hold a long text; the csv module's default limit is 128 KiB.
csv.field_size_limit(16 * 1024 * 1024)


def record_format(source: TrainingDataset) -> str | None:
    """jsonl or csv for a file of records, None for anything else (tensors, builtin)."""
    if source.uri.startswith("builtin://"):
        return None
    if source.format != "auto":
        return source.format
    return RECORD_FORMATS.get(Path(urlparse(source.uri).path).suffix.lower())


class Records(ABC):
    """A sequence of records (dicts), read one at a time."""

    name: str
    """Where the records come from (the dataset's URI)."""

    @abstractmethod
    def __len__(self) -> int: ...

    @abstractmethod
    def __getitem__(self, index: int) -> dict[str, Any]: ...

    @abstractmethod
    def where(self, index: int) -> str:
        """Where record `index` is, for error messages (its line)."""

    def __iter__(self) -> Iterator[dict[str, Any]]:
        for index in range(len(self)):
            yield self[index]


class RowRecords(Records):
    """Records held in memory (the builtin set, which ships with the worker)."""

    def __init__(self, rows: Sequence[dict[str, Any]], name: str) -> None:
        self.rows = rows
        self.name = name

    def __len__(self) -> int:
        return len(self.rows)

    def __getitem__(self, index: int) -> dict[str, Any]:
        return self.rows[index]

    def where(self, index: int) -> str:
        return f"record {index} of {self.name}"


class FileRecords(Records):
    """Records of a local file, at the byte offsets of an index. Picklable (a DataLoader
    worker opens the file itself)."""

    def __init__(self, path: Path, format: str, uri: str, limit: int | None = None) -> None:
        self.path, self.format, self.uri, self.name = path, format, uri, uri
        self.header: list[str] | None = None
        self.offsets = array("q")
        self.lines = array("q")
        self._file: BinaryIO | None = None
        self._opened_by = 0  # the process that opened _file
        with path.open("rb") as handle:
            if format == "csv":
                self._index_csv(handle, limit)
            else:
                self._index_jsonl(handle, limit)

    def __getstate__(self) -> dict[str, Any]:
        return {**self.__dict__, "_file": None}

    def __len__(self) -> int:
        return len(self.offsets)

    def where(self, index: int) -> str:
        return f"line {self.lines[index]} of {self.uri}"

    def __getitem__(self, index: int) -> dict[str, Any]:
        # A forked DataLoader worker must not share the parent's file position.
        if self._file is None or self._opened_by != os.getpid():
            self._file = self.path.open("rb")
            self._opened_by = os.getpid()
        self._file.seek(self.offsets[index])
        if self.format == "jsonl":
            return self._parse_json(self._file.readline(), index)
        assert self.header is not None
        row = next(csv.reader(_decoded(self._file, self.uri)))
        return dict(zip(self.header, row, strict=False))

    def _parse_json(self, line: bytes, index: int) -> dict[str, Any]:
        try:
            record = json.loads(line)
        except (ValueError, RecursionError) as error:
            raise DatasetError(f"{self.where(index)} is not JSON: {error}") from None
        if not isinstance(record, dict):
            raise DatasetError(
                f"{self.where(index)} is a JSON {type(record).__name__}; each line of a "
                'JSON Lines dataset is an object, e.g. {"text": "...", "label": "..."}'
            )
        return record

    def _index_jsonl(self, handle: BinaryIO, limit: int | None) -> None:
        number = 0
        while limit is None or len(self.offsets) < limit:
            offset = handle.tell()
            line = handle.readline()
            if not line:
                break
            number += 1
            if line.strip():
                self.offsets.append(offset)
                self.lines.append(number)

    def _index_csv(self, handle: BinaryIO, limit: int | None) -> None:
        # csv.reader pulls lines only as it needs them (a quoted field may span several),
        # so the file position before each row is where that row starts.
        lines = _decoded(handle, self.uri)
        reader = csv.reader(lines)
        try:
            self.header = next(reader)
        except StopIteration:
            raise DatasetError(
                f"{self.uri} is empty: a CSV dataset starts with a header row that names "
                "its columns"
            ) from None
        except csv.Error as error:
            raise DatasetError(f"{self.uri}, its header row: {error}") from None
        while limit is None or len(self.offsets) < limit:
            offset, first_line = handle.tell(), reader.line_num + 1
            try:
                row = next(reader)
            except StopIteration:
                break
            except csv.Error as error:
                raise DatasetError(f"{self.uri}, line {first_line}: {error}") from None
            if row:
                self.offsets.append(offset)
                self.lines.append(first_line)


def _decoded(handle: BinaryIO, uri: str) -> Iterator[str]:
    # A byte order mark (spreadsheet exports) is not part of the first column's name.
    encoding = "utf-8-sig" if handle.tell() == 0 else "utf-8"
    while line := handle.readline():
        try:
            yield line.decode(encoding)
        except UnicodeDecodeError as error:
            raise DatasetError(f"{uri} is not UTF-8 text: {error}") from None
        encoding = "utf-8"


def open_records(source: TrainingDataset) -> Records:
    """The records `source` names (a file of records, or builtin://reviews)."""
    parsed = urlparse(source.uri)
    if parsed.scheme == "builtin":
        if parsed.netloc != "reviews":
            raise DatasetError(
                f"dataset {source.uri} has no records of text; a task reads builtin://reviews "
                "or a .jsonl or .csv file"
            )
        return _reviews(source)
    format = record_format(source)
    if format is None:
        raise DatasetError(
            f"dataset {source.uri} is not a file of records; a task reads a .jsonl or .csv "
            "file (or set dataset.format)"
        )
    try:
        path = fetch(source.uri)
    except StorageError as error:
        raise DatasetError(str(error)) from None
    if path.is_dir():
        raise DatasetError(f"dataset {source.uri} is a directory; name one .jsonl or .csv file")
    return FileRecords(path, format, source.uri, source.max_samples)


def _reviews(source: TrainingDataset) -> Records:
    from torchyard.workloads.reviews import REVIEWS

    rows = []
    for index in split_indices(len(REVIEWS), source.split):
        rating, title, text = REVIEWS[int(index)]
        label = "positive" if rating >= 4 else "negative"
        rows.append({"text": text, "title": title, "rating": rating, "label": label})
    return RowRecords(rows[: source.max_samples], source.uri)


# -- what a task reads from a record -------------------------------------------------------


def text_of(records: Records, index: int, record: dict[str, Any], field: str) -> str:
    value = record.get(field)
    if not isinstance(value, str) or not value.strip():
        found = "no such field" if field not in record else f"{type(value).__name__} {value!r:.40}"
        fields = ", ".join(sorted(record)[:10])
        raise DatasetError(
            f"{records.where(index)}: field {field!r} must be a non-empty text ({found}); "
            f"its fields: {fields}. Set task.textField / task.pairField to the right one"
        )
    return value


def number_of(records: Records, index: int, record: dict[str, Any], field: str) -> float:
    value = record.get(field)
    try:
        number = float(value) if not isinstance(value, bool) else math.nan
    except (TypeError, ValueError):
        number = math.nan
    if not math.isfinite(number):
        raise DatasetError(
            f"{records.where(index)}: field {field!r} must be a finite number for task type "
            f"regression, not {value!r:.40}. Set task.labelField to the right one"
        )
    return number


def label_of(records: Records, index: int, record: dict[str, Any], field: str) -> str:
    """A class label as text (JSON numbers and strings alike: 1 and "1" are one class)."""
    value = record.get(field)
    if isinstance(value, bool) or not isinstance(value, str | int) or value == "":
        raise DatasetError(
            f"{records.where(index)}: field {field!r} must be a class label (a string or "
            f"an integer), not {value!r:.40}. Set task.labelField to the right one"
        )
    return str(value)


def check_records(records: Records, task: TextTask) -> list[str]:
    """Read every record once and check what the task needs of it; the classes (for
    classification: task.labels, else those found, sorted), else []."""
    if len(records) == 0:
        raise DatasetError(f"{records.name} holds no records")
    found: set[str] = set()
    for index, record in enumerate(records):
        text_of(records, index, record, task.text_field)
        if task.type == "embedding":
            assert task.pair_field is not None
            text_of(records, index, record, task.pair_field)
        elif task.type == "regression":
            number_of(records, index, record, task.label_field)
        else:
            label = label_of(records, index, record, task.label_field)
            if task.labels and label not in task.labels:
                raise DatasetError(
                    f"{records.where(index)}: label {label!r} is not one of task.labels "
                    f"({', '.join(task.labels[:10])}); add it or fix the record"
                )
            found.add(label)
    if task.type != "classification":
        return []
    if task.labels:
        return list(task.labels)
    if len(found) < 2:
        raise DatasetError(
            f"{records.name}: task type classification needs at "
            f"least two classes; field {task.label_field!r} holds only {sorted(found)}"
        )
    return sorted_labels(found)


def sorted_labels(labels: set[str]) -> list[str]:
    """Integers in numeric order ("2" before "10"), anything else alphabetically."""
    try:
        return sorted(labels, key=lambda label: (int(label), label))
    except ValueError:
        return sorted(labels)


def write_records(path: Path, records: Records, format: str) -> None:
    """Write records as a .jsonl or .csv file (the builtin set as files, for examples)."""
    rows = list(records)
    with path.open("w", encoding="utf-8", newline="") as handle:
        if format == "jsonl":
            for row in rows:
                handle.write(json.dumps(row, ensure_ascii=False) + "\n")
            return
        buffer = io.StringIO()
        writer = csv.DictWriter(buffer, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
        handle.write(buffer.getvalue())
