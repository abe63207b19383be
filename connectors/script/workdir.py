"""What the ``script`` and ``container`` tasks share: the working directory a run gets (input
files written in, output files collected as stored blobs) and the structured outputs a run
returns (``::outputs:: {json}`` lines on stdout, an ``outputs.json`` file)."""

from __future__ import annotations

import json
import mimetypes
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path, PurePosixPath
from typing import Annotated, Any

from pydantic import BeforeValidator

from hub.core.errors import TaskError
from hub.core.tasks import TaskContext


def _env_text(value: Any) -> Any:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return str(value)
    return value


EnvValue = Annotated[str, BeforeValidator(_env_text)]
"""An environment variable's value: a rendered number or boolean becomes its text."""

OUTPUTS_MARKER = "::outputs::"
OUTPUTS_FILE = "outputs.json"
MAX_OUTPUT_FILE_BYTES = 64 * 1024 * 1024
MAX_OUTPUT_FILES = 200


@contextmanager
def temporary_workdir(prefix: str) -> Iterator[Path]:
    """A fresh private directory, removed (with whatever the run left in it) when the block ends."""
    path = Path(tempfile.mkdtemp(prefix=prefix))
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


def safe_relative(name: str, what: str) -> PurePosixPath:
    """``name`` as a relative path that stays inside the working directory, else a clear error."""
    path = PurePosixPath(name)
    if not name or path.is_absolute() or ".." in path.parts:
        raise TaskError(f"{what} {name!r}: give a relative path inside the working directory (no '/' at the start, no '..')",
                        retryable=False)
    return path


def write_input_files(workdir: Path, files: dict[str, Any]) -> list[str]:
    """Write each ``name -> content`` (strings as UTF-8 text, other values as JSON) into ``workdir``."""
    written = []
    for name, content in files.items():
        target = workdir / safe_relative(name, "input file")
        target.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(content, bytes):
            target.write_bytes(content)
        elif isinstance(content, str):
            target.write_text(content, encoding="utf-8")
        else:
            target.write_text(json.dumps(content, default=str), encoding="utf-8")
        written.append(name)
    return written


def collect_output_files(ctx: TaskContext, workdir: Path, globs: list[str]) -> list[dict[str, Any]]:
    """Store every file matching ``globs`` as a blob of the execution; one entry per file:
    ``{"name", "size", "content_type", "blob"}`` (``blob``: ``blob:<id>``, read with ``store.get_blob(id)``)."""
    if not globs:
        return []
    if ctx.store is None:
        raise TaskError("output_files need the hub's store (run the flow through the engine)", retryable=False)
    found: dict[str, Path] = {}
    for pattern in globs:
        safe_relative(pattern, "output_files pattern")
        for path in sorted(workdir.glob(pattern)):
            if path.is_file() and not path.is_symlink():
                found.setdefault(path.relative_to(workdir).as_posix(), path)
    if len(found) > MAX_OUTPUT_FILES:
        raise TaskError(f"output_files matched {len(found)} files; at most {MAX_OUTPUT_FILES} are collected "
                        "(narrow the globs or archive the files into one)", retryable=False)
    entries = []
    for name, path in found.items():
        size = path.stat().st_size
        if size > MAX_OUTPUT_FILE_BYTES:
            raise TaskError(f"output file {name} is {size} bytes; at most {MAX_OUTPUT_FILE_BYTES} are stored", retryable=False)
        content_type = mimetypes.guess_type(name)[0] or "application/octet-stream"
        blob = ctx.store.put_blob(path.read_bytes(), execution_id=ctx.execution_id, content_type=content_type)
        entries.append({"name": name, "size": size, "content_type": content_type, "blob": f"blob:{blob}"})
    return entries


class StructuredOutputs:
    """Collects the ``::outputs:: {json}`` lines a run prints (each object merged into the last)."""

    def __init__(self) -> None:
        self.values: dict[str, Any] = {}
        self.problems: list[str] = []

    def feed(self, line: str) -> bool:
        """Take ``line`` if it is an outputs line; True when it was one."""
        stripped = line.strip()
        if not stripped.startswith(OUTPUTS_MARKER):
            return False
        payload = stripped[len(OUTPUTS_MARKER):].strip()
        try:
            value = json.loads(payload)
        except ValueError as exc:
            self.problems.append(f"{OUTPUTS_MARKER} line is not JSON ({exc}): {payload[:200]}")
            return True
        if not isinstance(value, dict):
            self.problems.append(f"{OUTPUTS_MARKER} must be followed by a JSON object, got {payload[:200]}")
        else:
            self.values.update(value)
        return True

    def finish(self, workdir: Path) -> dict[str, Any]:
        """The merged outputs: the lines', then ``outputs.json``'s when the run wrote one."""
        path = workdir / OUTPUTS_FILE
        if path.is_file():
            try:
                value = json.loads(path.read_text(encoding="utf-8"))
            except ValueError as exc:
                self.problems.append(f"{OUTPUTS_FILE} is not JSON: {exc}")
            else:
                if isinstance(value, dict):
                    self.values.update(value)
                else:
                    self.problems.append(f"{OUTPUTS_FILE} must hold a JSON object, got {type(value).__name__}")
        if self.problems:
            raise TaskError("the structured outputs could not be read: " + "; ".join(self.problems), retryable=False)
        return self.values
