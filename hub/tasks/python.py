"""The ``python`` kind: call ``module:function`` with the rendered parameters.

Which modules may be called is an allow-list (``HUB_PYTHON_MODULES``), checked when a flow is
validated and again when the step runs: whoever may deploy a flow may run these functions, and
no other (``os:system`` is refused). See docs/flow-language.md, "Trust model".
"""

from __future__ import annotations

import importlib.util
import inspect
import os
import sys
import traceback
from collections.abc import Callable
from functools import lru_cache
from pathlib import Path
from typing import Any

from pydantic import Field

from hub.core.host import FUNCTIONS, provide
from hub.core.tasks import TaskSettings
from hub.core.threads import run_in_thread
from hub.errors import TaskError
from hub.flow.expressions import is_template
from hub.tasks.base import Params, TaskContext

HUB_PACKAGES = frozenset({"hub", "connectors"})  # the platform's code: never called from a flow by default
ANY = "*"


class PythonParams(Params):
    function: str = Field(description="Import path, 'package.module:function'.")
    args: list[Any] = Field(default_factory=list, description="Positional arguments.")
    kwargs: dict[str, Any] = Field(default_factory=dict, description="Keyword arguments.")


class ModulePolicy:
    """The modules ``python`` tasks may call.

    ``allowed`` (``HUB_PYTHON_MODULES``, comma-separated): each name allows that module and its
    submodules; ``*`` allows any. Unset: the project's own modules, i.e. those whose top-level
    package Python finds under ``project`` (the current directory) and not inside a virtual
    environment or site-packages there; the hub's own packages (``hub``, ``connectors``) are not.
    """

    def __init__(self, allowed: str | None = None, project: Path | None = None):
        names = [n.strip() for n in (allowed or "").split(",") if n.strip()]
        self.names: list[str] | None = names or None
        self.project = (project or Path.cwd()).resolve()

    def refusal(self, module: str) -> str | None:
        """Why ``module`` may not be called, with the fix; None when it may."""
        if self.names is not None:
            if ANY in self.names or any(module == n or module.startswith(n + ".") for n in self.names):
                return None
            return (f"module {module!r} is not in HUB_PYTHON_MODULES ({', '.join(self.names)}); "
                    f"add it there to let flows call it")
        top = module.split(".")[0]
        where = None if top in HUB_PACKAGES else _location(top)
        if where is not None and _in_project(where, self.project):
            return None
        found = "the hub's own code" if top in HUB_PACKAGES else (
            f"found in {where}" if where is not None else "not found")
        return (f"module {module!r} is not one of the project's own modules ({found}; by default "
                f"`python` tasks may call modules under {self.project} only); to allow it, set "
                f"HUB_PYTHON_MODULES={top} (comma-separated)")

    def check_object(self, path: str, target: Any) -> str | None:
        """The function itself must come from an allowed module (``shop.stock:os.system`` is refused)."""
        defined_in = getattr(target, "__module__", None)
        if not isinstance(defined_in, str):
            return None if inspect.isfunction(target) or inspect.isclass(target) else \
                f"{path!r} is not a function defined in an allowed module"
        reason = self.refusal(defined_in)
        return None if reason is None else f"{path!r} is defined in another module: {reason}"


def _location(top: str) -> Path | None:
    """Where Python finds the top-level module ``top``, without running it."""
    try:
        spec = importlib.util.find_spec(top)
    except (ImportError, ValueError):
        return None
    if spec is None:
        return None
    if spec.origin and spec.origin not in ("built-in", "frozen"):
        return Path(spec.origin).resolve()
    locations = list(spec.submodule_search_locations or [])
    return Path(locations[0]).resolve() if locations else None


def _in_project(path: Path, project: Path) -> bool:
    if not path.is_relative_to(project):
        return False
    environments = {Path(p).resolve() for p in (sys.prefix, sys.base_prefix, sys.exec_prefix)}
    if any(path.is_relative_to(env) for env in environments):
        return False
    return not ({"site-packages", "dist-packages"} & set(path.relative_to(project).parts))


def module_of(path: str) -> str:
    return path.partition(":")[0] if ":" in path else path.rpartition(".")[0]


def resolve(path: str, policy: ModulePolicy | None = None) -> Callable[..., Any]:
    """Import ``module:attr`` (``module.attr`` also accepted) when ``policy`` allows it; errors say
    what to fix."""
    from hub.core.imports import import_object

    if policy is not None and (reason := policy.refusal(module_of(path))) is not None:
        raise TaskError(reason, retryable=False)
    try:
        target = import_object(path)
    except ValueError as exc:
        raise TaskError(str(exc), retryable=False) from None
    if not callable(target):
        raise TaskError(f"{path!r} is not callable", retryable=False)
    if policy is not None and (reason := policy.check_object(path, target)) is not None:
        raise TaskError(reason, retryable=False)
    return target  # type: ignore[no-any-return]


@lru_cache(maxsize=1024)
def _callable(path: str, allowed: str | None, project: str) -> tuple[Callable[..., Any], bool]:
    """The function at ``path`` (allowed, imported) and whether it takes ``ctx``, once per process
    and setting: looking modules up on every step cost more than the step. A refusal is not
    cached (it raises), so fixing the setting or the module takes effect."""
    fn = resolve(path, ModulePolicy(allowed, Path(project)))
    try:
        wants_ctx = "ctx" in inspect.signature(fn).parameters
    except (TypeError, ValueError):
        wants_ctx = False
    return fn, wants_ctx


class Python:
    """Call your own function, sync or async; its return value is the step's output.

    A parameter named ``ctx`` receives the :class:`~hub.tasks.base.TaskContext` (for the
    idempotency key and the log). A sync function runs in a worker thread. Only modules the
    :class:`ModulePolicy` allows may be called.
    """

    type = "python"
    Params = PythonParams

    @staticmethod
    def check(params: dict[str, Any]) -> list[tuple[tuple[Any, ...], str]]:
        """Flow-load check: the function's module is allowed (a template is checked when it runs)."""
        function = params.get("function")
        if not isinstance(function, str) or is_template(function) or not module_of(function):
            return []
        from hub.settings import HubSettings

        reason = ModulePolicy(HubSettings().python_modules).refusal(module_of(function))
        return [] if reason is None else [(("function",), reason)]

    async def run(self, ctx: TaskContext, params: PythonParams) -> Any:
        fn, wants_ctx = _callable(params.function, ctx.settings.python_modules, os.getcwd())
        kwargs = dict(params.kwargs)
        if wants_ctx:
            kwargs["ctx"] = ctx
        try:
            if inspect.iscoroutinefunction(fn):
                return await fn(*params.args, **kwargs)
            result = await run_in_thread(fn, *params.args, **kwargs)
            if inspect.isawaitable(result):
                result = await result
            return result
        except TaskError:
            raise
        except Exception as exc:
            tb = "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))
            error = TaskError(f"{type(exc).__name__}: {exc}", retryable=True, data={"traceback": tb})
            raise error from exc



def plugin_function(path: str, settings: TaskSettings) -> Callable[..., Any]:
    """A user function for a plugin's own steps (an ETL ``python`` rule), under the same module
    policy as the ``python`` task (:class:`hub.core.host.Functions`)."""
    return _callable(path, settings.python_modules, os.getcwd())[0]


provide(FUNCTIONS, plugin_function)
