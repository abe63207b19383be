"""Task kinds and trigger types by their type names, filled by plugins.

A :class:`Registry` has no built-ins of its own: it reads the task kinds and trigger types that
plugins declared (:mod:`hub.core.plugins`) and imports each class the first time its name is
used. Tests may :meth:`Registry.add` a class directly.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from typing import Any

from hub.core.plugins import PluginError, Plugins, default_plugins
from hub.core.tasks import ServiceKey

log = logging.getLogger(__name__)


TASK_REGISTRY: ServiceKey[Registry] = ServiceKey("registry")
"""The task kinds a step may run others through (an agent's tools); the process's when not set."""


class Registry:
    """Classes by type name for one kind of contribution (``task_kind`` or ``trigger_type``)."""

    def __init__(self, plugins: Plugins | None = None, kind: str = "task_kind"):
        self._plugins = plugins
        self._kind = kind
        self._classes: dict[str, Any] = {}
        self._instances: dict[str, Any] = {}

    @property
    def plugins(self) -> Plugins | None:
        return self._plugins

    def add(self, cls: type[Any]) -> None:
        """Register a class under its ``type`` name (it needs a ``Params`` or ``Config`` model)."""
        name = getattr(cls, "type", None)
        if not isinstance(name, str) or not name:
            raise TypeError(f"{cls!r} has no 'type' name")
        if not hasattr(cls, "Params") and not hasattr(cls, "Config"):
            raise TypeError(f"{self._kind.replace('_', ' ')} {name!r} has no Params model")
        existing = self._classes.get(name)
        if existing is not None and existing is not cls:
            raise ValueError(f"type {name!r} is registered twice ({existing!r} and {cls!r})")
        self._classes[name] = cls

    def get(self, name: str) -> Any | None:
        """The class for ``name``, importing it on first use; None when no plugin declares it.
        Raises :class:`PluginError` when its plugin declares it but it cannot be imported."""
        cls = self._classes.get(name)
        if cls is not None or self._plugins is None:
            return cls
        contribution = self._plugins.find(self._kind, name)
        if contribution is None:
            return None
        cls = contribution.ref.load()
        if getattr(cls, "type", name) != name:
            raise PluginError(f"plugin {contribution.ref.plugin!r} declares {name!r} but {contribution.ref.path} "
                              f"has type {getattr(cls, 'type', None)!r}")
        self.add(cls)
        return cls

    def plugin_of(self, name: str) -> str | None:
        """The plugin that declares ``name`` (None for a class added directly)."""
        if self._plugins is None:
            return None
        contribution = self._plugins.find(self._kind, name)
        return contribution.ref.plugin if contribution else None

    def instance(self, name: str) -> Any:
        """One shared instance of the class for ``name`` (task kinds keep no per-run state)."""
        found = self._instances.get(name)
        if found is None:
            cls = self.get(name)
            if cls is None:
                raise KeyError(name)
            found = self._instances[name] = cls()
        return found

    def types(self) -> list[str]:
        """Every type name, known without importing any class."""
        names = set(self._classes)
        if self._plugins is not None:
            names.update(self._plugins.names(self._kind))
        return sorted(names)

    def __contains__(self, name: object) -> bool:
        if not isinstance(name, str):
            return False
        if name in self._classes:
            return True
        return self._plugins is not None and self._plugins.find(self._kind, name) is not None

    def items(self) -> Iterable[tuple[str, Any]]:
        """``(name, class)`` for every type, importing each class (skipping those that fail)."""
        out = []
        for name in self.types():
            try:
                cls = self.get(name)
            except PluginError as exc:
                log.error("%s", exc)
                continue
            if cls is not None:
                out.append((name, cls))
        return out


def task_registry(plugins: Plugins | None = None) -> Registry:
    """The task kinds of ``plugins`` (default: the process's plugins)."""
    return Registry(plugins or default_plugins(), "task_kind")


def trigger_registry(plugins: Plugins | None = None) -> Registry:
    """The trigger types of ``plugins`` (default: the process's plugins)."""
    return Registry(plugins or default_plugins(), "trigger_type")
