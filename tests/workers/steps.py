"""Functions the worker tests call from flows (``python`` task), in worker subprocesses.

They leave traces on disk so the test process can count real runs across processes.
"""

from __future__ import annotations

import fcntl
import json
import os
import time
from pathlib import Path
from typing import Any


def record(log: str, name: str, sleep: float = 0.0, ctx: Any = None) -> dict[str, Any]:
    """Append ``{name, pid, attempt, execution}`` to ``log``; the first attempt sleeps ``sleep``."""
    line = {"name": name, "pid": os.getpid(), "attempt": ctx.attempt if ctx else None,
            "execution": ctx.execution_id if ctx else None, "path": ctx.path if ctx else None}
    with open(log, "a") as fh:
        fh.write(json.dumps(line) + "\n")
    if sleep and (ctx is None or ctx.attempt == 1):
        time.sleep(sleep)
    return {"name": name, "pid": os.getpid()}


def lines(log: str | Path) -> list[dict[str, Any]]:
    path = Path(log)
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def occupy(counter: str, seconds: float, ctx: Any = None) -> dict[str, Any]:
    """Count how many of these run at once (across processes) in ``counter``; keep the maximum."""
    _bump(counter, +1)
    try:
        time.sleep(seconds)
    finally:
        _bump(counter, -1)
    return {"pid": os.getpid()}


def _bump(counter: str, delta: int) -> None:
    with open(counter, "a+") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        fh.seek(0)
        text = fh.read().strip()
        state = json.loads(text) if text else {"now": 0, "max": 0}
        state["now"] += delta
        state["max"] = max(state["max"], state["now"])
        fh.seek(0)
        fh.truncate()
        fh.write(json.dumps(state))


def pid() -> int:
    return os.getpid()


def fail_on(value: int, bad: int, unless: str) -> int:
    """Fails for ``value == bad`` until the file ``unless`` exists."""
    if int(value) == int(bad) and not Path(unless).exists():
        raise ValueError(f"item {value} is bad")
    return int(value)


def loaded(modules: list[str]) -> list[str]:
    """Which of ``modules`` this process has imported (a worker's answer about itself)."""
    import sys

    return [name for name in modules if name in sys.modules]
