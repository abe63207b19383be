"""What the running hub lends to plugins, through interfaces the core defines.

A plugin (a connector package) imports only :mod:`hub.core` and :mod:`hub.net`. When it needs more
than its task context — the flow language's expressions for its own per-row rules, the store for a
CLI command of its own, the API's scope check for its routes, the hub's policy for importing user
functions — it asks for the interface here, and the layer that implements it (the flow language,
the CLI, the API) has provided it::

    from hub.core.host import EXPRESSIONS, lookup

    condition = lookup(EXPRESSIONS).compile_condition("row.total > 10")

Providers are installed by the hub's own layers when they are imported or start
(``provide(EXPRESSIONS, ...)`` in :mod:`hub.flow.plugin_api`, ``provide(STORE, ...)`` by the
CLI, ``provide(SCOPES, ...)`` by the API), so a plugin never imports them.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping
from contextlib import AbstractContextManager
from typing import TYPE_CHECKING, Any, Generic, Protocol, TypeVar

from hub.core.errors import HubError

if TYPE_CHECKING:
    from hub.core.tasks import TaskSettings, TaskStore

T = TypeVar("T")


class Expressions(Protocol):
    """The flow language's expressions (``{{ ... }}``), for a plugin's own rules."""

    filters: Mapping[str, Callable[..., Any]]

    def compile_condition(self, source: str) -> Callable[[dict[str, Any]], Any]:
        """A compiled expression (``row.total > 10``); call it with the variables."""
        ...

    def render(self, value: Any, scope: dict[str, Any], where: str | None = None) -> Any:
        """``value`` with every template in it rendered against ``scope``."""
        ...

    def truthy(self, value: Any) -> bool: ...

    def scope(self, name: str, data: Mapping[str, Any], noun: str = "key") -> Any:
        """``data`` as a variable whose missing keys are clear errors (``row.nope``)."""
        ...


class Functions(Protocol):
    """Import a user function named ``module:attr``, as the ``python`` task does: only from the
    modules the hub's settings allow (``HUB_PYTHON_MODULES``)."""

    def __call__(self, path: str, settings: TaskSettings) -> Callable[..., Any]: ...


class StoreOpener(Protocol):
    """The hub's store for a command that runs outside an execution (``hub email list``)."""

    def __call__(self) -> AbstractContextManager[TaskStore]: ...


class ScopeCheck(Protocol):
    """A FastAPI dependency that admits an API key holding ``scope`` (``read``, ``run``, ``admin``)."""

    def __call__(self, scope: str) -> Any: ...


class Interface(Generic[T]):
    """The name of an interface the hub lends, with the module that implements it (imported on
    first lookup, so that a plugin works in any process of the hub without that layer having been
    imported first)."""

    def __init__(self, name: str, home: str):
        self.name, self.home = name, home

    def __repr__(self) -> str:
        return f"Interface({self.name!r})"


EXPRESSIONS: Interface[Expressions] = Interface("expressions", "hub.flow.plugin_api")
FUNCTIONS: Interface[Functions] = Interface("functions", "hub.tasks.python")
STORE: Interface[StoreOpener] = Interface("store", "hub.cli")
SCOPES: Interface[ScopeCheck] = Interface("scopes", "hub.api.auth")

_providers: dict[Interface[Any], Any] = {}


def provide(interface: Interface[T], implementation: T) -> None:
    """Install the implementation of ``interface`` (done by the hub's own layers)."""
    _providers[interface] = implementation


def lookup(interface: Interface[T]) -> T:
    """The implementation of ``interface``; a clear error when this process has none."""
    if interface not in _providers:
        importlib.import_module(interface.home)
    try:
        return _providers[interface]  # type: ignore[no-any-return]
    except KeyError:
        raise HubError(f"this process provides no {interface.name} (see hub.core.host)") from None
