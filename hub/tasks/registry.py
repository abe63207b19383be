"""The registry of task kinds.

Built-ins and third parties go through the same door: a module exposes ``register(registry)``
and calls ``registry.add(Kind)``. Third-party packages (and the project's own ``connectors``)
publish that function in the ``hub.tasks`` entry-point group::

    [project.entry-points."hub.tasks"]
    acme = "acme_hub.tasks:register"

Nothing registers itself at import time; :func:`default_registry` builds the set once.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from functools import lru_cache
from importlib.metadata import entry_points
from typing import Any

from hub.tasks.base import TaskKind

log = logging.getLogger(__name__)

ENTRY_POINT_GROUP = "hub.tasks"


class Registry:
    def __init__(self) -> None:
        self._kinds: dict[str, Any] = {}

    def add(self, kind: type[Any]) -> None:
        """Register a task kind class (see :class:`hub.tasks.base.TaskKind`)."""
        name = getattr(kind, "type", None)
        if not isinstance(name, str) or not name:
            raise TypeError(f"{kind!r} has no 'type' name")
        if not hasattr(kind, "Params"):
            raise TypeError(f"task kind {name!r} has no Params model")
        existing = self._kinds.get(name)
        if existing is not None and existing is not kind:
            raise ValueError(f"task type {name!r} is registered twice ({existing!r} and {kind!r})")
        self._kinds[name] = kind

    def get(self, name: str) -> Any | None:
        return self._kinds.get(name)

    def instance(self, name: str) -> TaskKind:
        kind = self._kinds[name]
        cache = self.__dict__.setdefault("_instances", {})
        if name not in cache:
            cache[name] = kind()
        return cache[name]  # type: ignore[no-any-return]

    def types(self) -> list[str]:
        return sorted(self._kinds)

    def __contains__(self, name: object) -> bool:
        return name in self._kinds

    def items(self) -> Iterable[tuple[str, Any]]:
        return sorted(self._kinds.items())


def load_entry_points(registry: Registry, group: str = ENTRY_POINT_GROUP) -> None:
    for ep in entry_points(group=group):
        try:
            register = ep.load()
            register(registry)
        except Exception:  # a broken plugin must not take the hub down; say which one
            log.exception("could not load task plugin %s = %s", ep.name, ep.value)


def builtin_registry() -> Registry:
    from hub.tasks import control, core, http, llm, python

    registry = Registry()
    for module in (control, core, http, llm, python):
        module.register(registry)
    return registry


@lru_cache(maxsize=1)
def default_registry() -> Registry:
    """Built-in kinds plus every ``hub.tasks`` entry point, built once per process."""
    registry = builtin_registry()
    load_entry_points(registry)
    return registry
