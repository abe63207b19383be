"""Slow first imports (aiohttp, jsonschema) done once, on a thread, when a caller is about to need
them: off the event loop, so that they stall no call already in flight, and never in a process
that turns out not to need them (an eval answered from its cache imports no HTTP client).

Every caller waits on the same import: ``sys.modules`` holds a module from the moment its import
starts, so "is it there?" cannot tell a second caller that the first one's import is finished.
"""

from __future__ import annotations

import asyncio
import importlib
import sys
import threading
from concurrent.futures import Future

_begun: dict[str, Future[None]] = {}
_lock = threading.Lock()


def start(name: str) -> Future[None]:
    """Import ``name`` on a daemon thread unless it is imported or being imported by this module
    already; the future is done when the module is usable (or holds the ImportError)."""
    with _lock:
        found = _begun.get(name)
        if found is not None:
            return found
        future: Future[None] = Future()
        _begun[name] = future
        module = sys.modules.get(name)
        spec = getattr(module, "__spec__", None)
        if module is not None and not getattr(spec, "_initializing", False):
            future.set_result(None)
            return future
    threading.Thread(target=_load, args=(name, future), name=f"hub-import-{name}", daemon=True).start()
    return future


def _load(name: str, future: Future[None]) -> None:
    try:
        importlib.import_module(name)
    except BaseException as exc:  # an ImportError is the waiter's to raise
        future.set_exception(exc)
    else:
        future.set_result(None)


async def imported(name: str) -> None:
    """Wait, without blocking the event loop, until ``name`` is imported (starting its import)."""
    future = start(name)
    if future.done():
        future.result()
        return
    await asyncio.wrap_future(future)
