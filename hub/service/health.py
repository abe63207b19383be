"""A worker's health signal: it serves no HTTP, so it keeps a file fresh while its polls of the
queue get answers, and ``hub health`` reads the file's age. Standard library only: the health
check starts a process every few seconds and imports this, not the engine."""

from __future__ import annotations

import contextlib
import logging
import time
from pathlib import Path

log = logging.getLogger(__name__)

ALIVE_FILE = "worker.alive"  # under HUB_HOME: touched while the worker's polls of the queue succeed
ALIVE_EVERY = 1.0  # seconds between touches at most
ALIVE_MAX_AGE = 30.0  # ``hub health``: a worker whose file is older is not healthy


class AliveFile:
    """A file touched after the worker's polls of the queue that Redis answered (at most once every
    :data:`ALIVE_EVERY` seconds), so its age is about the time since the last one. Removed when the
    worker stops. A file that cannot be written is logged once and never stops the worker."""

    def __init__(self, path: Path):
        self.path = path
        self._last = float("-inf")
        self._warned = False

    def beat(self) -> None:
        now = time.monotonic()
        if now - self._last < ALIVE_EVERY:
            return
        self._last = now
        try:
            self.path.touch()
        except OSError as exc:
            if not self._warned:
                log.warning("cannot write the health file %s: %s", self.path, exc)
                self._warned = True

    def remove(self) -> None:
        with contextlib.suppress(OSError):
            self.path.unlink()


def alive_age(path: Path) -> float | None:
    """Seconds since the worker that writes ``path`` last polled its queue; None without the file."""
    try:
        return max(0.0, time.time() - path.stat().st_mtime)
    except FileNotFoundError:
        return None
