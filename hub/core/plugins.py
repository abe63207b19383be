"""The plugin interface: one door for every capability of the hub.

A plugin is a function ``register(hub)`` that declares what it contributes. Declarations name
their objects as ``"module:attribute"`` strings, imported the first time they are used, so
registering is free: a flow that uses only core tasks imports no connector or LLM code::

    def register(hub: PluginAPI) -> None:
        hub.task_kind("acme.echo", "acme_hub.tasks:Echo")
        hub.trigger_type("acme.tick", "acme_hub.triggers:Tick")
        hub.router("acme_hub.api:router")                 # mounted under /v1
        hub.command("acme", "acme_hub.cli:acme")          # `hub acme ...`
        hub.tables("acme_hub.tables")                     # its tables (SQLModel models or Core Tables)
        hub.migrations("acme_hub:migrations")             # their Alembic migrations (a folder)
        hub.sweeper("acme_hub.sweep:sweep")               # async def sweep(engine) -> None
        hub.service("acme", "acme_hub.service:install")   # install(engine) -> engine.services["acme"]
        hub.lifespan("acme_hub.service:start")            # async def start(engine) -> stop | None
        hub.middleware("acme_hub.audit:Audit")            # Audit(engine) -> engine middleware
        hub.notifier("acme", "acme_hub.notify:Notifier")  # how a human is reached
        hub.settings("acme", "acme_hub.settings:AcmeSettings")

Third parties publish that function in the ``hub.plugins`` entry-point group; the hub's own
features are listed in :data:`BUILTIN_PLUGINS` and go through the very same :class:`PluginAPI`
(simonw/llm's default plugins are the model). Entry points are read only when something is
asked for that the built-ins do not have, or when everything is listed. A plugin that fails to
load is recorded with its error (``hub plugins`` shows it) and the others keep working.
"""

from __future__ import annotations

import importlib
import logging
import re
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from functools import lru_cache
from importlib.metadata import EntryPoint, entry_points
from typing import Any

log = logging.getLogger(__name__)

ENTRY_POINT_GROUP = "hub.plugins"
LEGACY_TASKS_GROUP = "hub.tasks"
"""The group of the first plugin mechanism (task kinds only): ``register(registry)``. Still read."""

BUILTIN_PLUGINS: tuple[tuple[str, str], ...] = (
    ("core", "hub.tasks.plugin:register"),  # control flow and core tasks
    ("llm", "hub.llm.plugin:register"),  # llm.chat, langchain.invoke, prompts
    ("agent", "hub.agent.plugin:register"),  # llm.agent
    ("mcp", "hub.mcp.plugin:register"),  # mcp.tools, mcp.call; `hub mcp`, /mcp: the flows as MCP tools
    ("approvals", "hub.approvals.plugin:register"),  # the approval gate
    ("triggers", "hub.triggers.plugin:register"),  # schedule, webhook, redis_stream, file, flow triggers
    ("telemetry", "hub.telemetry.plugin:register"),  # spans kept for the trace viewer, `hub trace`
    ("evals", "hub.evals.plugin:register"),  # `hub eval`, eval runs
    ("console", "hub.console.plugin:register"),  # the web console at /, the API docs offline
)

KINDS = ("task_kind", "trigger_type", "router", "command", "tables", "migrations", "sweeper", "service",
         "lifespan", "middleware", "notifier", "settings")


class PluginError(Exception):
    """A plugin or one of its contributions could not be loaded."""


class Ref:
    """An object named ``"module:attribute"`` (imported on first :meth:`load`), or the object."""

    __slots__ = ("target", "plugin", "_value", "_loaded")

    def __init__(self, target: Any, plugin: str):
        if isinstance(target, str) and ":" not in target:
            raise ValueError(f"{target!r} is not 'module:attribute'")
        self.target = target
        self.plugin = plugin
        self._loaded = not isinstance(target, str)
        self._value = None if isinstance(target, str) else target

    @property
    def path(self) -> str:
        """Where the object lives, as ``module:attribute``."""
        if isinstance(self.target, str):
            return self.target
        return f"{getattr(self.target, '__module__', '?')}:{getattr(self.target, '__qualname__', repr(self.target))}"

    def load(self) -> Any:
        if not self._loaded:
            module_name, _, attr = self.target.partition(":")
            try:
                value: Any = importlib.import_module(module_name)
                for part in attr.split("."):
                    value = getattr(value, part)
            except Exception as exc:
                raise PluginError(f"plugin {self.plugin!r}: cannot load {self.target}: {type(exc).__name__}: {exc}") from exc
            self._value, self._loaded = value, True
        return self._value

    def __repr__(self) -> str:
        return f"Ref({self.path!r}, plugin={self.plugin!r})"


@dataclass(frozen=True)
class Contribution:
    """One thing a plugin adds: its kind (see :data:`KINDS`), its name and where it lives."""

    kind: str
    name: str
    ref: Ref
    options: dict[str, Any] = field(default_factory=dict)


@dataclass
class PluginInfo:
    """A loaded (or failed) plugin: its name, where it came from and what it contributes."""

    name: str
    source: str
    contributions: list[Contribution] = field(default_factory=list)
    error: str | None = None


class PluginAPI:
    """What a plugin's ``register(hub)`` is given: one method per kind of contribution."""

    def __init__(self, plugins: Plugins, info: PluginInfo):
        self._plugins = plugins
        self._info = info

    @property
    def name(self) -> str:
        return self._info.name

    def _add(self, kind: str, name: str, target: Any, **options: Any) -> None:
        self._plugins._add(self._info, Contribution(kind, name, Ref(target, self._info.name), options))

    def task_kind(self, type_name: str, target: Any) -> None:
        """A task kind (:class:`hub.tasks.base.TaskKind`) under the flow type name ``type_name``."""
        self._add("task_kind", type_name, target)

    def trigger_type(self, type_name: str, target: Any) -> None:
        """A trigger type: a class with ``type``, ``Config`` (the YAML fields) and, for a trigger
        that consumes events, ``async def run(self, ctx)`` (see :mod:`hub.triggers.context`)."""
        self._add("trigger_type", type_name, target)

    def router(self, target: Any, prefix: str = "/v1") -> None:
        """A FastAPI ``APIRouter`` mounted at ``prefix`` by ``hub serve``."""
        self._add("router", _name_of(target), target, prefix=prefix)

    def command(self, name: str, target: Any) -> None:
        """A click command or group, run as ``hub <name>``."""
        self._add("command", name, target)

    def tables(self, module: str) -> None:
        """A module that declares tables (SQLModel models, or SQLAlchemy Core ``Table`` objects as
        the hub's own are): what a fresh database is created from; they may reference the hub's tables.
        The plugin's :meth:`migrations` create and change them in an existing database."""
        self._add("tables", module, f"{module}:__name__")

    def migrations(self, location: str, name: str | None = None) -> None:
        """A folder of Alembic revision scripts, ``"package:folder"`` (or a package's own folder,
        ``"package.migrations"``): one version history, kept in its own version table
        ``alembic_version_<name>`` (``name`` defaults to the plugin's). Several plugins may
        declare the same history under the same name (the four event buses share one)."""
        branch = name or self._info.name
        if not _BRANCH_NAME.fullmatch(branch) or branch == "core":
            raise PluginError(f"migrations name {branch!r}: use lower-case letters, digits and _ ('core' is the store's)")
        existing = self._plugins._by_kind["migrations"].get(branch)
        if existing is not None and existing.options.get("location") != location:
            raise PluginError(f"migrations {branch!r} are already declared by plugin {existing.ref.plugin!r} "
                              f"at {existing.options.get('location')}; name yours (hub.migrations(..., name=...))")
        self._add("migrations", branch, f"{_package_of(location)}:__name__", location=location)

    def sweeper(self, target: Any) -> None:
        """``async def sweep(engine)``: called periodically by servers and workers."""
        self._add("sweeper", _name_of(target), target)

    def service(self, name: str, target: Any) -> None:
        """``install(engine) -> object``: built once per process, kept as ``engine.services[name]``
        (None: nothing to keep in this process, e.g. a client its first user builds)."""
        self._add("service", name, target)

    def lifespan(self, target: Any) -> None:
        """``async def start(engine) -> stop | None``: started and stopped with ``hub serve``."""
        self._add("lifespan", _name_of(target), target)

    def middleware(self, target: Any) -> None:
        """``factory(engine) -> Middleware`` wrapping every step and execution (:mod:`hub.engine.run`)."""
        self._add("middleware", _name_of(target), target)

    def notifier(self, channel: str, target: Any) -> None:
        """How a human is reached on ``channel`` (an approval request, a reminder)."""
        self._add("notifier", channel, target)

    def settings(self, section: str, target: Any) -> None:
        """A settings class (pydantic-settings) read once at start-up as section ``section``."""
        self._add("settings", section, target)


_BRANCH_NAME = re.compile(r"[a-z][a-z0-9_]{0,40}")


def _package_of(location: str) -> str:
    return location.partition(":")[0]


def _name_of(target: Any) -> str:
    return target if isinstance(target, str) else Ref(target, "").path


class Plugins:
    """Every loaded plugin and what it contributes, by kind and name.

    Built-ins load when this is built; entry points (``hub.plugins`` and the legacy
    ``hub.tasks``) load on the first :meth:`find` miss or listing (:meth:`all`, :meth:`infos`).
    """

    def __init__(self, builtins: tuple[tuple[str, str], ...] = BUILTIN_PLUGINS, *,
                 entry_point_groups: tuple[str, ...] = (ENTRY_POINT_GROUP, LEGACY_TASKS_GROUP)):
        self._infos: list[PluginInfo] = []
        self._by_kind: dict[str, dict[str, Contribution]] = {kind: {} for kind in KINDS}
        self._groups = entry_point_groups
        self._external_loaded = not entry_point_groups
        self._lock = threading.RLock()
        for name, target in builtins:
            self.load(target, name=name, source=f"built-in ({target})")

    # -- loading -------------------------------------------------------------------------------------

    def load(self, register: Any, *, name: str | None = None, source: str = "built-in") -> PluginInfo:
        """Run one plugin's ``register(hub)`` (a callable or ``"module:function"``); never raises."""
        if name is None:
            name = register.split(":")[0] if isinstance(register, str) else _name_of(register)
        info = PluginInfo(name=name, source=source)
        with self._lock:
            self._infos.append(info)
            try:
                function = Ref(register, name).load()
                function(PluginAPI(self, info))
            except Exception as exc:
                info.error = str(exc) if isinstance(exc, PluginError) else f"{type(exc).__name__}: {exc}"
                log.error("plugin %s (%s) failed to load: %s", name, source, info.error)
                for contribution in info.contributions:  # a half-registered plugin contributes nothing
                    if self._by_kind[contribution.kind].get(contribution.name) is contribution:
                        del self._by_kind[contribution.kind][contribution.name]
        return info

    def load_external(self) -> None:
        """Load every entry-point plugin once (idempotent, thread-safe)."""
        if self._external_loaded:
            return
        with self._lock:
            if self._external_loaded:
                return
            self._external_loaded = True
            installed = entry_points()  # one pass over the installed distributions for every group
            for group in self._groups:
                for ep in sorted(installed.select(group=group), key=lambda e: e.name):
                    self._load_entry_point(ep, legacy=group == LEGACY_TASKS_GROUP)

    def _load_entry_point(self, ep: EntryPoint, legacy: bool) -> None:
        dist = getattr(ep, "dist", None)
        where = f"{dist.name} {dist.version}" if dist is not None else "?"
        source = f"entry point {ep.group}:{ep.name} = {ep.value} ({where})"
        if legacy:
            self.load(_LegacyTasks(ep), name=ep.name, source=source)
        else:
            self.load(_EntryPointRegister(ep), name=ep.name, source=source)

    def _add(self, info: PluginInfo, contribution: Contribution) -> None:
        if contribution.kind not in self._by_kind:
            raise ValueError(f"unknown kind of contribution {contribution.kind!r}")
        table = self._by_kind[contribution.kind]
        existing = table.get(contribution.name)
        if existing is not None and contribution.kind in ("task_kind", "trigger_type", "command", "service", "settings"):
            raise PluginError(
                f"{contribution.kind.replace('_', ' ')} {contribution.name!r} is already registered by plugin "
                f"{existing.ref.plugin!r}"
            )
        info.contributions.append(contribution)
        table[contribution.name] = contribution

    # -- reading ------------------------------------------------------------------------------------

    def find(self, kind: str, name: str) -> Contribution | None:
        """The contribution ``name`` of ``kind``; loads entry points on a miss."""
        found = self._by_kind[kind].get(name)
        if found is None and not self._external_loaded:
            self.load_external()
            found = self._by_kind[kind].get(name)
        return found

    def all(self, kind: str) -> list[Contribution]:
        """Every contribution of ``kind`` (entry points included), in registration order."""
        self.load_external()
        return list(self._by_kind[kind].values())

    def names(self, kind: str) -> list[str]:
        return sorted(c.name for c in self.all(kind))

    def infos(self, load: bool = True) -> list[PluginInfo]:
        """Every plugin, loading the entry points first (unless ``load`` is false: then the
        plugins loaded so far, the built-ins at least)."""
        if load:
            self.load_external()
        return list(self._infos)

    def __iter__(self) -> Iterator[PluginInfo]:
        return iter(self.infos())


class _EntryPointRegister:
    """An entry point naming ``register`` (``pkg.mod:register``) or a module that has one."""

    def __init__(self, ep: EntryPoint):
        self.ep = ep

    def __call__(self, api: PluginAPI) -> None:
        loaded = self.ep.load()
        register: Callable[[PluginAPI], None] | None = loaded if callable(loaded) else getattr(loaded, "register", None)
        if register is None:
            raise PluginError(f"{self.ep.value} has no register(hub) function")
        register(api)


class _LegacyTasks:
    """A ``hub.tasks`` entry point: ``register(registry)`` calling ``registry.add(Kind)``. The
    object it is given is also a full :class:`PluginAPI`, so a package whose installed metadata
    still names this group but whose ``register`` is already a plugin's keeps working."""

    def __init__(self, ep: EntryPoint):
        self.ep = ep

    def __call__(self, api: PluginAPI) -> None:
        self.ep.load()(_LegacyRegistry(api))


class _LegacyRegistry:
    def __init__(self, api: PluginAPI):
        self._api = api

    def add(self, kind: Any) -> None:
        self._api.task_kind(kind.type, kind)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._api, name)


@lru_cache(maxsize=1)
def default_plugins() -> Plugins:
    """The process's plugins: the built-ins now, entry points when first needed."""
    return Plugins()
