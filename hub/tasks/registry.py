"""The task registry of a process: the task kinds its plugins declare.

The class lives in :mod:`hub.core.registry`; kinds come from plugins (:mod:`hub.core.plugins`):
the hub's built-in ones and every ``hub.plugins`` entry point, through the same door.
"""

from __future__ import annotations

from functools import lru_cache

from hub.core.plugins import BUILTIN_PLUGINS, Plugins
from hub.core.registry import Registry, task_registry

__all__ = ["Registry", "builtin_registry", "default_registry"]


def builtin_registry() -> Registry:
    """A fresh registry of the hub's built-in task kinds only (no entry points): for tests."""
    return Registry(Plugins(BUILTIN_PLUGINS, entry_point_groups=()), "task_kind")


@lru_cache(maxsize=1)
def default_registry() -> Registry:
    """Every task kind of the process's plugins, built once per process."""
    return task_registry()
