"""The task protocol and context; they live in :mod:`hub.core.tasks` (this name is kept for plugins)."""

from hub.core.tasks import Params, RunFlow, StepResources, TaskContext, TaskKind, TaskSettings, TaskStore

__all__ = ["Params", "RunFlow", "StepResources", "TaskContext", "TaskKind", "TaskSettings", "TaskStore"]
