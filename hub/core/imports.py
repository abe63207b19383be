"""Imports on the hub's terms: an object named by a path, and modules loaded only when used.

:func:`import_object` imports ``package.module:Name`` with errors that say what to fix, wherever a
flow or a file names code: a python step's function (behind the module policy of
:mod:`hub.tasks.python`), a LangChain runnable, an output validator, an eval's function.

:func:`defer_import` and :func:`when_imported` keep modules out of processes that never use them:
every module a worker imports is resident memory of every worker process.
"""

from __future__ import annotations

import importlib
import importlib.abc
import importlib.util
import logging
import sys
import threading
import types
from collections.abc import Callable, Sequence
from typing import Any

log = logging.getLogger(__name__)


def import_object(path: str) -> Any:
    """Import ``package.module:attr``; raises ``ValueError`` saying what to fix."""
    module_name, sep, attr = path.partition(":")
    if not sep:
        module_name, _, attr = path.rpartition(".")
    if not module_name or not attr:
        raise ValueError(f"{path!r} is not an import path; write 'package.module:Name'")
    try:
        target: Any = importlib.import_module(module_name)
    except ImportError as exc:
        raise ValueError(f"cannot import {module_name!r}: {exc}") from None
    for part in attr.split("."):
        try:
            target = getattr(target, part)
        except AttributeError:
            raise ValueError(f"module {module_name!r} has no attribute {attr!r}") from None
    return target


class _Deferred(types.ModuleType):
    """A module whose code runs when one of its names is first asked for (see :func:`defer_import`)."""

    _lock = threading.Lock()

    def __getattr__(self, name: str) -> Any:  # only called for names the module does not have yet
        with _Deferred._lock:
            if isinstance(self, _Deferred):
                self.__class__ = types.ModuleType  # type: ignore[assignment]
                try:
                    self.__spec__.loader.exec_module(self)  # type: ignore[union-attr]
                except BaseException:  # no half-run module left behind: the next import raises again
                    if sys.modules.get(self.__name__) is self:
                        del sys.modules[self.__name__]
                    raise
                with _Finder.lock:
                    hooks = _Finder.hooks.pop(self.__name__, [])
                for hook in hooks:  # (its code ran here, not through the import system's finders)
                    _call(hook, self)
        return getattr(self, name)


def defer_import(name: str) -> None:
    """Import ``name`` lazily: a module object now (so ``import name`` binds it), its code at the
    first use of one of its names. For a module a library imports only to name a type: redis 5.3's
    connection module imports PyJWT for its Entra ID token type, and PyJWT imports cryptography's
    OpenSSL bindings, ~9 MiB of every worker and server that never uses a token.
    (:class:`importlib.util.LazyLoader` does not do here: the next ``import`` of the module reads
    ``__spec__``, which loads it.)"""
    if name in sys.modules:
        return
    spec = importlib.util.find_spec(name)
    if spec is None or spec.loader is None:
        return
    module = importlib.util.module_from_spec(spec)
    module.__class__ = _Deferred
    sys.modules[name] = module


Hook = Callable[[types.ModuleType], object]


def when_imported(name: str, hook: Hook) -> None:
    """Call ``hook(module)`` once the top-level module ``name`` is imported; at once if it already
    is. A hook that fails is logged, and the import goes on. (What wrapt's post-import hooks do,
    without importing wrapt into every process that sets one.)"""
    module = sys.modules.get(name)
    if module is not None and not isinstance(module, _Deferred):
        _call(hook, module)
        return
    with _Finder.lock:
        _Finder.hooks.setdefault(name, []).append(hook)
        if not any(isinstance(finder, _Finder) for finder in sys.meta_path):
            sys.meta_path.insert(0, _Finder())


def _call(hook: Hook, module: types.ModuleType) -> None:
    try:
        hook(module)
    except Exception:  # e.g. an instrumentation that does not fit this version of the module
        log.exception("a hook on the import of %s failed", module.__name__)


class _Finder(importlib.abc.MetaPathFinder):
    """Finds nothing itself: for a module with hooks, it asks the finders after it and has the
    module's loader call the hooks once the module's code has run."""

    lock = threading.Lock()
    hooks: dict[str, list[Hook]] = {}

    def find_spec(self, fullname: str, path: Sequence[str] | None, target: types.ModuleType | None = None) -> Any:
        if fullname not in self.hooks:
            return None
        rest = sys.meta_path[sys.meta_path.index(self) + 1:]
        spec = next((found for finder in rest if (found := _spec_of(finder, fullname, path, target)) is not None), None)
        if spec is not None and spec.loader is not None:
            spec.loader = _Hooked(spec.loader)
        return spec


def _spec_of(finder: Any, fullname: str, path: Sequence[str] | None, target: types.ModuleType | None) -> Any:
    find = getattr(finder, "find_spec", None)
    return find(fullname, path, target) if find is not None else None


class _Hooked(importlib.abc.Loader):
    """A module's own loader, whose ``exec_module`` then calls the module's hooks (once: a spec
    found only to ask whether the module is there runs none)."""

    def __init__(self, loader: Any):
        self.loader = loader

    def create_module(self, spec: Any) -> types.ModuleType | None:
        return self.loader.create_module(spec)  # type: ignore[no-any-return]

    def exec_module(self, module: types.ModuleType) -> None:
        module.__loader__ = self.loader  # the module looks loaded by its own loader
        if module.__spec__ is not None:
            module.__spec__.loader = self.loader
        self.loader.exec_module(module)
        with _Finder.lock:
            hooks = _Finder.hooks.pop(module.__name__, [])
        for hook in hooks:
            _call(hook, module)

    def __getattr__(self, name: str) -> Any:  # get_data, get_filename, is_package, ...
        return getattr(self.loader, name)
