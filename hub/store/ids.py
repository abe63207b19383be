"""Execution ids and the names of the processes that own executions."""

from __future__ import annotations

import os
import socket
import time
import uuid


def new_id() -> str:
    """Execution ids: time-ordered (UUIDv7), 32 hex characters."""
    return uuid.uuid7().hex if hasattr(uuid, "uuid7") else _uuid7()


def _uuid7() -> str:
    ms = int(time.time() * 1000)
    rand = int.from_bytes(os.urandom(10), "big")
    value = (ms << 80) | (0x7 << 76) | ((rand >> 64) & 0xFFF) << 64 | (0b10 << 62) | (rand & ((1 << 62) - 1))
    return f"{value:032x}"


def process_owner() -> str:
    """Who runs an execution: ``host:pid:random`` (the random part tells restarts apart)."""
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"


def owner_is_alive(owner: str | None) -> bool | None:
    """True/False when the owner ran on this host (its pid checked), None when it cannot be told."""
    if not owner:
        return False
    parts = owner.split(":")
    if len(parts) < 2 or parts[0] != socket.gethostname():
        return None
    try:
        pid = int(parts[1])
    except ValueError:
        return None
    if pid == os.getpid():
        return owner == _THIS_OWNER
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


_THIS_OWNER = process_owner()


def this_owner() -> str:
    return _THIS_OWNER
