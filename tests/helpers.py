"""Functions the engine tests call from flows through the ``python`` task."""

from __future__ import annotations

import asyncio
import contextvars
import os
import threading
import time
from pathlib import Path
from typing import Any

STATE: dict[str, Any] = {"calls": {}, "active": 0, "max_active": 0}
GATE = threading.Event()  # opened by ``open_gate`` (an async step), waited on by ``wait_gate`` (a sync one)
CURRENT: contextvars.ContextVar[str] = contextvars.ContextVar("current", default="unset")


def reset() -> None:
    STATE.update({"calls": {}, "active": 0, "max_active": 0})


def flaky(name: str, failures: int, ctx: Any = None) -> dict[str, Any]:
    """Fails ``failures`` times, then succeeds."""
    count = STATE["calls"].get(name, 0) + 1
    STATE["calls"][name] = count
    if count <= failures:
        raise ConnectionError(f"{name} failed (call {count})")
    return {"calls": count}


def always_fails(message: str = "boom") -> None:
    raise ValueError(message)


async def slow(seconds: float) -> str:
    await asyncio.sleep(seconds)
    return "done"


async def track(name: str, seconds: float = 0.01) -> str:
    STATE["active"] += 1
    STATE["max_active"] = max(STATE["max_active"], STATE["active"])
    try:
        await asyncio.sleep(seconds)
    finally:
        STATE["active"] -= 1
    return name


def record(marker_dir: str, name: str, sleep: float = 0.0, ctx: Any = None) -> dict[str, Any]:
    """Appends a line per call to <marker_dir>/<name> (counts real runs across processes).

    With ``sleep``, the first call ever (no ``<name>.slept`` file yet) sleeps that long, so a
    test can kill the process while this step is in flight; later calls return at once.
    """
    path = Path(marker_dir) / name
    with path.open("a") as fh:
        fh.write(f"{os.getpid()} {ctx.idempotency_key if ctx else ''}\n")
    flag = Path(marker_dir) / f"{name}.slept"
    if sleep and not flag.exists():
        flag.touch()
        time.sleep(sleep)
    return {"name": name, "pid": os.getpid()}


def fail_once_then_ok(flag_file: str) -> str:
    """Fails while ``flag_file`` exists."""
    if Path(flag_file).exists():
        raise RuntimeError("flag file present: failing")
    return "ok"


def echo(**kwargs: Any) -> dict[str, Any]:
    return kwargs


def keep(**kwargs: Any) -> dict[str, Any]:
    """Returns its arguments and keeps them in ``STATE["kept"]`` (what the task really received)."""
    STATE["kept"] = kwargs
    return kwargs


def big(size: int) -> str:
    return "x" * size


def unstorable(kind: str) -> dict[str, str]:
    """Text a database refuses: a lone surrogate (``surrogate``) or a NUL character (``nul``)."""
    return {"text": "\ud800" if kind == "surrogate" else "a\x00b"}


def wait_gate(seconds: float) -> bool:
    """Blocks its thread until an async step opens the gate (True) or ``seconds`` pass (False)."""
    return GATE.wait(seconds)


async def open_gate(after: float = 0.0) -> str:
    await asyncio.sleep(after)
    GATE.set()
    return "open"


def current() -> str:
    """The value of ``CURRENT`` the function sees (a middleware sets it around the step)."""
    return CURRENT.get()
