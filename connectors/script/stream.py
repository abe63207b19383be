"""Output of a running script or container: split into lines, streamed into the execution's log,
structured outputs picked out, the tails kept for the step's output and error."""

from __future__ import annotations

from collections import deque

from connectors.script.workdir import StructuredOutputs
from hub.core.tasks import TaskContext

MAX_LOG_LINES = 5000  # per stream; past it, lines are counted, not logged


class LineSplitter:
    """Turns chunks of bytes into complete text lines (a last partial line is kept until ``flush``);
    lines longer than ``limit`` are cut into pieces."""

    def __init__(self, limit: int = 64 * 1024) -> None:
        self.buffer = b""
        self.limit = limit

    def feed(self, chunk: bytes) -> list[str]:
        self.buffer += chunk
        lines = []
        while True:
            cut = self.buffer.find(b"\n")
            if cut < 0:
                if len(self.buffer) > self.limit:
                    cut = self.limit
                    lines.append(self.buffer[:cut].decode("utf-8", "replace"))
                    self.buffer = self.buffer[cut:]
                    continue
                return lines
            lines.append(self.buffer[:cut].decode("utf-8", "replace").rstrip("\r"))
            self.buffer = self.buffer[cut + 1:]

    def flush(self) -> list[str]:
        rest, self.buffer = self.buffer, b""
        return [rest.decode("utf-8", "replace")] if rest else []


class OutputSink:
    """Receives the lines of a run's stdout and stderr: each goes to the execution's log (redacted
    by the context), ``::outputs::`` lines of stdout are parsed, the last lines of each are kept."""

    def __init__(self, ctx: TaskContext, prefix: str, tail: int = 20) -> None:
        self.ctx = ctx
        self.prefix = prefix
        self.outputs = StructuredOutputs()
        self.stdout: deque[str] = deque(maxlen=200)
        self.stderr: deque[str] = deque(maxlen=max(tail, 1))
        self.logged = {"stdout": 0, "stderr": 0}
        self.dropped = {"stdout": 0, "stderr": 0}

    def line(self, stream: str, text: str) -> None:
        if stream == "stdout":
            if self.outputs.feed(text):
                return
            self.stdout.append(text)
        else:
            self.stderr.append(text)
        if self.logged[stream] >= MAX_LOG_LINES:
            self.dropped[stream] += 1
            return
        self.logged[stream] += 1
        self.ctx.log(f"{self.prefix} {stream}: {text}", level="info" if stream == "stdout" else "warning")

    def close(self) -> None:
        for stream, count in self.dropped.items():
            if count:
                self.ctx.log(f"{self.prefix}: {count} more {stream} lines not logged (at most {MAX_LOG_LINES} per stream)")

    def stderr_tail(self) -> str:
        return "\n".join(self.ctx.redact(line) for line in self.stderr)
