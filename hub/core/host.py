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

The hub's features meet each other the same way, never importing one another: a feature's
command reads the process's settings through ``COMMANDS`` (the CLI provides it), the prompt
registry asks the evals about a label move through ``EVAL_GATE``, the Prometheus exporter reads
the model calls' totals through ``MODEL_USAGE`` (the LLM feature provides both of the latter's
homes), and model-call spans go through :data:`hub.core.tracing.TRACING`.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping
from contextlib import AbstractContextManager
from pathlib import Path
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


class EvalGate(Protocol):
    """The evals feature's say on moving a prompt label (``hub prompts promote``): the prompt
    registry sits below evals and asks through this, never importing them."""

    def verify(self, engine: Any, name: str, version: int, run_id: str) -> str:
        """``run_id`` when that stored eval run passed for ``version`` of prompt ``name``; else a HubError."""
        ...

    def run_and_promote(self, name: str, version: str, label: str, file: Path, prompts_dir: Path | None,
                        actor: str | None) -> dict[str, Any]:
        """Run the eval of ``file`` (the candidate against what ``label`` names now) and move the
        label when it passes: ``{version, run_id, compared_with}``; else a HubError."""
        ...


class ModelUsage(Protocol):
    """The model calls recorded in the store after the call id ``after``, summed per model:
    ``(model, newest call id, input tokens, output tokens, cost)`` (the Prometheus exporter's read)."""

    def __call__(self, store: Any, after: int) -> list[tuple[str | None, int, int, int, float]]: ...


class Commands(Protocol):
    """What the ``hub`` command lends a feature's own commands (``hub prompts``, ``hub eval``)."""

    def settings(self) -> Any:
        """The process's settings, read from the environment and checked once per process."""
        ...

    def user_errors(self, fn: Callable[..., Any]) -> Callable[..., Any]:
        """``fn`` with the hub's error handling: user errors print a message and exit non-zero."""
        ...


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
COMMANDS: Interface[Commands] = Interface("commands", "hub.cli")
SCOPES: Interface[ScopeCheck] = Interface("scopes", "hub.api.auth")
EVAL_GATE: Interface[EvalGate] = Interface("eval gate", "hub.evals.promotion")
MODEL_USAGE: Interface[ModelUsage] = Interface("model usage", "hub.llm.records")

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
