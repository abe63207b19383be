"""The task protocol and context; they live in :mod:`hub.core.tasks` (this name is kept for plugins)."""

from hub.core.tasks import Params, TaskContext, TaskKind, TaskSettings, TaskStore

__all__ = ["Params", "TaskContext", "TaskKind", "TaskSettings", "TaskStore"]
