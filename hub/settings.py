"""Settings from the environment (``HUB_*``): read once when the process starts, then handed down.

One object holds them all. :class:`HubSettings` is its core section (where state lives, the
queue, the folders); every feature or plugin adds a section of its own (``HUB_LLM_*``,
``HUB_APPROVAL_*``, ``HUB_SLACK_*`` ...), a pydantic-settings class declared by a plugin
(``hub.settings(name, "module:Class")``) or listed in :data:`APP_SECTIONS`. Code reaches a section
through the one object it was given::

    settings = load_settings()                  # at start-up: core + every section, all checked
    slack = settings.section(SlackSettings)     # later, anywhere the settings were handed to
    engine = Engine(store, settings)            # ... ctx.settings in a task, engine.settings

:func:`load_settings` reports every problem at once, one line each naming its variable, as
:class:`~hub.errors.InvalidSettings`. :func:`misspelled` finds ``HUB_*`` variables that are
nobody's setting but look like one (``HUB_APROVAL_SECRET``).
"""

from __future__ import annotations

import difflib
import logging
import re
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any, Literal, TypeVar, cast

from pydantic import AliasChoices, Field, PrivateAttr, ValidationError, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict
from pydantic_settings import SettingsError as SourceError

from hub.core.plugins import Ref
from hub.errors import InvalidSettings

S = TypeVar("S", bound=BaseSettings)
log = logging.getLogger(__name__)

APP_SECTIONS: dict[str, str] = {"api": "hub.api.settings:ApiSettings"}
"""Sections of the app layer (the HTTP service), as ``"module:Class"``. Every feature and connector
declares its own as a plugin, ``hub.settings(name, "module:Class")`` (see :mod:`hub.core.plugins`)."""

OTHER_VARIABLES = frozenset({"HUB_DEBUG", "HUB_URL", "HUB_API_KEY", "HUB_WORKER_METRICS_PORT"})
"""``HUB_*`` variables read outside the sections: tracebacks of internal errors, the server and key
the client commands (``hub deploy``) talk to, options of one command (``hub worker --metrics-port``)."""
OTHER_PREFIXES = ("HUB_SECRET_", "HUB_TEST_")
"""Families of variables that are not settings: ``secret('NAME')`` values, the test suite's."""


class HubSettings(BaseSettings):
    """The core settings, and the process's one settings object: the other sections hang off it.

    The embedded default needs none of it: state goes to ``.hub/hub.db`` (SQLite) under the
    current directory and executions run in process.
    """

    model_config = SettingsConfigDict(env_prefix="HUB_", extra="ignore")

    home: Path = Field(Path(".hub"), description="Directory for the SQLite file, blobs and outbox.")
    database_url: str | None = Field(
        None, description="SQLAlchemy URL; default sqlite:///<home>/hub.db. PostgreSQL: postgresql+psycopg://..."
    )
    redis_url: str | None = Field(
        None, description="Redis URL (redis://, rediss:// or unix://); when set, executions are queued on arq."
    )
    queue_name: str = Field("hub:queue", description="The arq queue (Redis key) of this deployment.")
    secrets_file: Path | None = Field(
        None, description="A NAME=value file read by secret('NAME'); default <home>/secrets.env."
    )
    flows_dir: Path = Field(Path("flows"), description="Folder of flow files loaded at start-up.")
    prompts_dir: Path = Field(Path("prompts"), description="Folder of prompt files.")
    evals_dir: Path = Field(Path("evals"), description="Folder of eval files the API runs.")
    inline_output_limit: int = Field(
        64 * 1024, description="Step outputs larger than this many bytes of JSON are stored as blobs."
    )
    max_concurrency: int = Field(64, description="Executions run at once by one in-process queue.")
    subflow_max_depth: int = Field(
        10, ge=1, description="How deep subflows may nest (a subflow step past it fails the execution)."
    )
    expression_cache_size: int = Field(
        20_000, ge=1,
        description="Compiled expressions a process keeps (least recently used dropped first; about 3-4 KB "
        "each). Give it at least the number of distinct expressions of the flows a process runs: "
        "hub_expression_cache_hit_ratio on /metrics says whether it is enough.",
    )
    python_modules: str | None = Field(
        None,
        description="Modules `python` tasks may call, comma-separated (`shop` allows shop and shop.*; "
        "`*` allows any). Default: the project's own modules, those found under the current directory "
        "(not in a virtual environment, not the hub's own packages).",
    )
    log_format: Literal["text", "json"] = Field(
        "text",
        description="`json`: one JSON object per log line with the execution, flow, trace and span ids "
        "(hub serve, hub worker, hub run); `text`: lines for a terminal.",
    )
    protected_labels: str = Field(
        "production",
        description="Comma-separated prompt labels that move only with a passing eval comparison or --force --reason.",
    )

    _sections: dict[type[BaseSettings], BaseSettings] = PrivateAttr(default_factory=dict)

    @field_validator("redis_url")
    @classmethod
    def _redis_scheme(cls, value: str | None) -> str | None:
        if value and not value.startswith(("redis://", "rediss://", "unix://")):
            raise ValueError(f"{value!r} is not a Redis URL: write redis://host:6379/0 (or rediss://, unix://)")
        return value or None

    def resolved_database_url(self) -> str:
        if self.database_url:
            return self.database_url
        return f"sqlite:///{self.home / 'hub.db'}"

    def protected(self) -> frozenset[str]:
        """The protected prompt labels (``HUB_PROTECTED_LABELS``; empty: none)."""
        return frozenset(p.strip() for p in self.protected_labels.split(",") if p.strip())

    def resolved_secrets_file(self) -> Path:
        return self.secrets_file or self.home / "secrets.env"

    def section(self, cls: type[S]) -> S:
        """The section ``cls`` of these settings: the one :func:`load_settings` checked, or (settings
        made without it, as tests and embedders do) one read from the environment on first use."""
        found = self._sections.get(cls)
        if found is None:
            found = self._sections[cls] = cls()
        return cast(S, found)

    def with_sections(self, *sections: BaseSettings) -> HubSettings:
        """Use these section objects instead of reading them from the environment; returns self."""
        for section in sections:
            self._sections[type(section)] = section
        return self


def section_classes() -> dict[str, type[BaseSettings]]:
    """Every settings section by name: the app's and each plugin's. A section whose module does not
    import is left out with an error in the log naming its plugin (the others keep working)."""
    from hub.core.plugins import PluginError, default_plugins

    targets: list[tuple[str, Any]] = [(name, Ref(target, "hub")) for name, target in APP_SECTIONS.items()]
    targets += [(c.name, c.ref) for c in default_plugins().all("settings")]
    out: dict[str, type[BaseSettings]] = {}
    for name, ref in targets:
        try:
            out[name] = ref.load()
        except PluginError as exc:
            log.error("settings section %r not read: %s", name, exc)
    return out


def load_settings() -> HubSettings:
    """The core and every registered section, read from the environment and checked.

    A section may define ``check(self) -> None`` for what its fields cannot say alone (the LLM
    section loads its models file); a ``ValueError`` from it is a problem like any other. Raises
    :class:`~hub.errors.InvalidSettings` with every problem found, one line each.
    """
    problems: list[str] = []
    core = _build(HubSettings, problems)
    sections: list[BaseSettings] = []
    for cls in section_classes().values():
        section = _build(cls, problems)
        if section is None:
            continue
        sections.append(section)
        check = getattr(section, "check", None)
        if callable(check):
            try:
                check()
            except ValueError as exc:
                problems.append(" ".join(str(exc).split()))
    if problems or core is None:
        raise InvalidSettings(problems)
    return core.with_sections(*sections)


def _build(cls: type[S], problems: list[str]) -> S | None:
    try:
        return cls()
    except (ValidationError, SourceError) as exc:
        problems.extend(describe(exc, cls))
        return None


_FIELD_IN_SOURCE_ERROR = re.compile(r'field "([^"]+)"')


def describe(exc: Exception, cls: type[BaseSettings]) -> list[str]:
    """``exc`` (raised building ``cls`` from the environment) as one line per problem, each
    beginning with the variable: ``invalid setting HUB_REDIS_URL: 'x' is not a Redis URL``."""
    if isinstance(exc, ValidationError):
        lines = []
        for error in exc.errors():
            loc = [str(part) for part in error["loc"]]
            name = variable(cls, loc[0]) if loc else cls.__name__
            inner = f"{'.'.join(loc[1:])}: " if len(loc) > 1 else ""
            lines.append(f"invalid setting {name}: {inner}{error['msg'].removeprefix('Value error, ')}")
        return lines
    found = _FIELD_IN_SOURCE_ERROR.search(str(exc))
    name = variable(cls, found.group(1)) if found else cls.__name__
    return [f"invalid setting {name}: not valid JSON ({exc.__cause__ or exc})"]


def variable(cls: type[BaseSettings], field: str) -> str:
    """The environment variable that sets ``field`` of ``cls`` (its alias, when it has one)."""
    names = variables_of(cls).get(field)
    if names:
        return names[0]
    return (str(cls.model_config.get("env_prefix") or "") + field).upper()


def variables_of(cls: type[BaseSettings]) -> dict[str, list[str]]:
    """Each field of ``cls`` with the environment variables that set it."""
    prefix = str(cls.model_config.get("env_prefix") or "").upper()
    out: dict[str, list[str]] = {}
    for name, info in cls.model_fields.items():
        alias = info.validation_alias
        if isinstance(alias, AliasChoices):
            out[name] = [str(choice).upper() for choice in alias.choices]
        elif isinstance(alias, str):
            out[name] = [alias.upper()]
        else:
            out[name] = [prefix + name.upper()]
    return out


def known_variables() -> set[str]:
    """Every ``HUB_*`` variable a setting reads, of the core and every installed section."""
    classes: list[type[BaseSettings]] = [HubSettings, *section_classes().values()]
    known = set(OTHER_VARIABLES)
    for cls in classes:
        for names in variables_of(cls).values():
            known.update(names)
    return known


def misspelled(environ: Mapping[str, str], known: Iterable[str] | None = None) -> list[str]:
    """A warning for each ``HUB_*`` variable in ``environ`` that no setting reads but that is close
    to one that does (a typo would otherwise be silently ignored)."""
    names = sorted(known if known is not None else known_variables())
    upper = set(names)
    out = []
    for given in sorted(environ):
        key = given.upper()
        if not key.startswith("HUB_") or key in upper or key.startswith(OTHER_PREFIXES):
            continue
        close = difflib.get_close_matches(key, names, n=1, cutoff=0.8)
        if close:
            out.append(f"{given} is not a setting of the hub (ignored); did you mean {close[0]}?")
    return out

