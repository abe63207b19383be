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
from collections.abc import Callable, Iterable
from functools import lru_cache
from importlib.metadata import entry_points
from typing import Any

from hub.tasks.base import TaskKind

log = logging.getLogger(__name__)

ENTRY_POINT_GROUP = "hub.tasks"


class Registry:
    """Task kinds by type name.

    Loaders added with :meth:`add_loader` (entry points, heavier built-ins such as ``llm``) run
    the first time a name is not found or the whole set is listed, so a flow that uses only
    core kinds never imports the connectors' client libraries.
    """

    def __init__(self) -> None:
        self._kinds: dict[str, Any] = {}
        self._loaders: list[Callable[[Registry], None]] = []

    def add_loader(self, loader: Callable[[Registry], None]) -> None:
        self._loaders.append(loader)

    def _load_pending(self) -> None:
        while self._loaders:
            loader = self._loaders.pop(0)
            try:
                loader(self)
            except Exception:  # a broken plugin must not take the hub down; say which one
                log.exception("could not load task kinds from %r", loader)

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
        kind = self._kinds.get(name)
        if kind is None and self._loaders:
            self._load_pending()
            kind = self._kinds.get(name)
        return kind

    def instance(self, name: str) -> TaskKind:
        kind = self.get(name)
        if kind is None:
            raise KeyError(name)
        cache = self.__dict__.setdefault("_instances", {})
        if name not in cache:
            cache[name] = kind()
        return cache[name]  # type: ignore[no-any-return]

    def types(self) -> list[str]:
        self._load_pending()
        return sorted(self._kinds)

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and self.get(name) is not None

    def items(self) -> Iterable[tuple[str, Any]]:
        self._load_pending()
        return sorted(self._kinds.items())


def load_entry_points(registry: Registry, group: str = ENTRY_POINT_GROUP) -> None:
    """Queue every ``hub.tasks`` entry point as a loader (imported when first needed)."""
    for ep in entry_points(group=group):
        registry.add_loader(_EntryPointLoader(ep))


class _EntryPointLoader:
    def __init__(self, ep: Any):
        self.ep = ep

    def __call__(self, registry: Registry) -> None:
        try:
            register = self.ep.load()
            register(registry)
        except Exception:  # a broken plugin must not take the hub down; say which one
            log.exception("could not load task plugin %s = %s", self.ep.name, self.ep.value)

    def __repr__(self) -> str:
        return f"entry point {self.ep.name} = {self.ep.value}"


def _load_llm(registry: Registry) -> None:
    from hub.tasks import llm

    llm.register(registry)


def _load_approval(registry: Registry) -> None:
    from hub.tasks import approval

    approval.register(registry)


def builtin_registry() -> Registry:
    from hub.tasks import control, core, http, python

    registry = Registry()
    for module in (control, core, http, python):
        module.register(registry)
    registry.add_loader(_load_llm)
    registry.add_loader(_load_approval)
    return registry


@lru_cache(maxsize=1)
def default_registry() -> Registry:
    """Built-in kinds plus every ``hub.tasks`` entry point, built once per process."""
    registry = builtin_registry()
    load_entry_points(registry)
    return registry
