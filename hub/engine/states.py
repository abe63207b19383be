"""Execution and step states, in one place."""

from __future__ import annotations

from enum import StrEnum


class State(StrEnum):
    CREATED = "CREATED"
    QUEUED = "QUEUED"
    RUNNING = "RUNNING"
    PAUSED = "PAUSED"
    SUCCESS = "SUCCESS"
    WARNING = "WARNING"
    FAILED = "FAILED"
    CANCELLED = "CANCELLED"
    KILLING = "KILLING"
    KILLED = "KILLED"
    SKIPPED = "SKIPPED"  # steps only


TERMINAL = frozenset({State.SUCCESS, State.WARNING, State.FAILED, State.CANCELLED, State.KILLED})
UNFINISHED = frozenset({State.CREATED, State.QUEUED, State.RUNNING})
# a step whose newest row is in one of these states is committed: a resume does not run it again
COMMITTED = frozenset({State.SUCCESS, State.WARNING, State.SKIPPED})
