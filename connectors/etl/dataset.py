"""Datasets: rows that pass between ETL steps by reference, as JSON Lines files.

A step never puts a whole table in the execution record. It writes its rows, batch by batch, to
``<home>/artifacts/<execution id>/<name>.jsonl`` and returns a small reference::

    {"ref": "artifact:<execution id>/<name>.jsonl", "rows": 100000, "columns": ["id", ...], "format": "jsonl"}

The next step takes that dict (``dataset: "{{ outputs.extract.dataset }}"``) or just its ``ref``
string, and reads it back in batches.
"""

from __future__ import annotations

import base64
import datetime as dt
import decimal
import json
import uuid
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import IO, Any

from hub.core.errors import TaskError
from hub.core.tasks import TaskContext

REF_PREFIX = "artifact:"
Row = dict[str, Any]


def _default(value: Any) -> Any:
    if isinstance(value, dt.datetime | dt.date | dt.time):
        return value.isoformat()
    if isinstance(value, decimal.Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    if isinstance(value, uuid.UUID):
        return str(value)
    if isinstance(value, bytes | bytearray | memoryview):
        return base64.b64encode(bytes(value)).decode()
    if isinstance(value, set | frozenset | tuple):
        return list(value)
    return str(value)


def dumps(row: Any) -> str:
    """One JSON line; dates become ISO strings, decimals numbers, bytes base64."""
    return json.dumps(row, default=_default, ensure_ascii=False, separators=(",", ":"))


def to_json_value(value: Any) -> Any:
    """The value a row field has once it went through a dataset file."""
    if value is None or isinstance(value, str | int | float | bool):
        return value
    return json.loads(dumps(value))


def artifacts_dir(ctx: TaskContext) -> Path:
    return Path(ctx.settings.home) / "artifacts"


class DatasetWriter:
    """Appends rows to a new dataset file, tracking the row count and the columns seen."""

    def __init__(self, ctx: TaskContext, name: str):
        safe_exec = "".join(c for c in ctx.execution_id if c.isalnum() or c in "-_") or "adhoc"
        safe_name = "".join(c if c.isalnum() or c in "-_." else "_" for c in name)
        self.relpath = f"{safe_exec}/{safe_name}-{uuid.uuid4().hex[:8]}.jsonl"
        self.path = artifacts_dir(ctx) / self.relpath
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.rows = 0
        self._columns: dict[str, None] = {}
        self._file: IO[str] | None = self.path.open("w", encoding="utf-8")

    def write(self, rows: Iterable[Row]) -> None:
        assert self._file is not None, "writer is closed"
        lines = []
        for row in rows:
            for key in row:
                if key not in self._columns:
                    self._columns[key] = None
            lines.append(dumps(row))
        if lines:
            self._file.write("\n".join(lines) + "\n")
            self.rows += len(lines)

    @property
    def columns(self) -> list[str]:
        return list(self._columns)

    def close(self) -> dict[str, Any]:
        if self._file is not None:
            self._file.close()
            self._file = None
        return self.ref()

    def ref(self) -> dict[str, Any]:
        return {"ref": REF_PREFIX + self.relpath, "rows": self.rows, "columns": self.columns, "format": "jsonl"}

    def discard(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None
        self.path.unlink(missing_ok=True)

    def __enter__(self) -> DatasetWriter:
        return self

    def __exit__(self, exc_type: Any, *_: Any) -> None:
        if exc_type is not None:
            self.discard()
        else:
            self.close()


def resolve_ref(ctx: TaskContext, dataset: Any) -> Path:
    """The file behind a dataset reference (the output dict or its ``ref`` string)."""
    ref = dataset.get("ref") if isinstance(dataset, dict) else dataset
    if not isinstance(ref, str) or not ref.startswith(REF_PREFIX):
        raise TaskError(
            f"dataset must be an ETL step's dataset output (e.g. \"{{{{ outputs.extract.dataset }}}}\"), got {ref!r}",
            retryable=False,
        )
    root = artifacts_dir(ctx).resolve()
    path = (root / ref[len(REF_PREFIX) :]).resolve()
    if not path.is_relative_to(root):
        raise TaskError(f"dataset reference {ref!r} points outside the artifacts folder", retryable=False)
    if not path.is_file():
        raise TaskError(f"dataset {ref!r} no longer exists (artifacts folder {root})", retryable=False)
    return path


def read_batches(path: Path, batch_size: int) -> Iterator[list[Row]]:
    with path.open(encoding="utf-8") as fh:
        batch: list[Row] = []
        for line in fh:
            if not line.strip():
                continue
            batch.append(json.loads(line))
            if len(batch) >= batch_size:
                yield batch
                batch = []
        if batch:
            yield batch


def input_batches(ctx: TaskContext, dataset: Any, rows: list[Row] | None, batch_size: int) -> Iterator[list[Row]]:
    """Batches from a dataset reference, or from rows given inline (small data)."""
    if dataset is not None and rows is not None:
        raise TaskError("give either dataset or rows, not both", retryable=False)
    if rows is not None:
        for start in range(0, len(rows), batch_size):
            yield [dict(r) for r in rows[start : start + batch_size]]
        return
    if dataset is None:
        raise TaskError("no input: give dataset (an ETL step's dataset output) or rows", retryable=False)
    yield from read_batches(resolve_ref(ctx, dataset), batch_size)
