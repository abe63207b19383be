"""The schema's version histories ("branches"): the store's own and one per plugin that declares
migrations, each an Alembic version location with its own version table.

Finding where a database stands costs no Alembic import: the heads of a history are read from
its revision scripts' ``revision = ...`` and ``down_revision = ...`` lines (a script written
otherwise makes :func:`heads` give up, and the caller asks Alembic instead).
"""

from __future__ import annotations

import ast
import importlib.util
import logging
import re
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

log = logging.getLogger(__name__)

CORE_LOCATION = "hub.store:versions"
VERSION_TABLE_PREFIX = "alembic_version_"
_ASSIGNMENT = re.compile(r"^(revision|down_revision)\s*(?::[^=\n]*)?=\s*(.+?)\s*$", re.MULTILINE)
_SCRIPT = re.compile(r"^(?!\.#|__init__)[^/]*\.py$")


class SchemaError(Exception):
    """The database cannot be brought to this hub's schema (a newer hub wrote it, a script is broken)."""


@dataclass(frozen=True)
class Branch:
    """One version history: its name, the folder of its revision scripts and its table modules."""

    name: str
    location: str
    plugin: str
    table_modules: tuple[str, ...] = ()

    @property
    def version_table(self) -> str:
        return VERSION_TABLE_PREFIX + self.name

    @property
    def directory(self) -> Path:
        return location_directory(self.location)


CORE = Branch("core", CORE_LOCATION, "core", ("hub.store.tables", "hub.store.auth_tables"))


@lru_cache(maxsize=64)
def location_directory(location: str) -> Path:
    """The folder ``"package:folder"`` (or ``"package"``) names, found without importing the package."""
    package, _, folder = location.partition(":")
    try:
        spec = importlib.util.find_spec(package)
    except (ImportError, ValueError) as exc:
        raise SchemaError(f"migrations {location!r}: cannot find package {package!r}: {exc}") from exc
    if spec is None or not spec.submodule_search_locations:
        raise SchemaError(f"migrations {location!r}: {package!r} is not an installed package")
    directory = Path(next(iter(spec.submodule_search_locations)))
    directory = directory / folder if folder else directory
    if not directory.is_dir():
        raise SchemaError(f"migrations {location!r}: no folder {directory}")
    return directory


def plugin_branches(load: bool = True) -> list[Branch]:
    """The store's history and every plugin's, in the order plugins registered them (the
    built-ins first): a plugin's tables may refer to the core's, never the other way round.
    Without ``load``, only the plugins loaded so far (entry points are read on first need)."""
    from hub.core.plugins import default_plugins

    modules: dict[str, list[str]] = {}
    declared: dict[str, tuple[str, list[str]]] = {}  # history -> (location, plugins declaring it)
    for info in default_plugins().infos(load=load):
        if info.error is not None:
            continue
        for c in info.contributions:
            if c.kind == "tables":
                modules.setdefault(info.name, []).append(c.name)
            elif c.kind == "migrations":
                declared.setdefault(c.name, (c.options["location"], []))[1].append(info.name)
    found = [CORE]
    for name, (location, owners) in declared.items():
        owned = tuple(dict.fromkeys(m for owner in owners for m in modules.get(owner, ())))
        try:
            location_directory(location)
        except SchemaError as exc:  # a broken plugin: reported, the others' histories still run
            log.error("plugin %s: %s; its tables are not migrated", owners[0], exc)
            continue
        found.append(Branch(name, location, owners[0], owned))
    return found


def unmanaged_table_modules(branches: list[Branch]) -> list[str]:
    """Table modules of plugins that declare no migrations: created when missing, never altered."""
    from hub.core.plugins import default_plugins

    managed = {m for b in branches for m in b.table_modules}
    return [c.name for c in default_plugins().all("tables") if c.name not in managed]


def heads(branch: Branch) -> tuple[str, ...] | None:
    """The newest revisions of a history, read from its scripts; None when a script is not in the
    plain form (Alembic then reads them)."""
    return _heads(branch.directory)


@lru_cache(maxsize=64)
def _heads(directory: Path) -> tuple[str, ...] | None:
    revisions: set[str] = set()
    parents: set[str] = set()
    for path in directory.iterdir():
        if not _SCRIPT.match(path.name):
            continue
        found = dict(_ASSIGNMENT.findall(path.read_text(encoding="utf-8")))
        try:
            revision = ast.literal_eval(found["revision"])
            down = ast.literal_eval(found.get("down_revision", "None"))
        except (KeyError, ValueError, SyntaxError):
            return None
        if not isinstance(revision, str):
            return None
        downs = (down,) if isinstance(down, str) else tuple(down or ())
        if not all(isinstance(d, str) for d in downs):
            return None
        revisions.add(revision)
        parents.update(downs)
    return tuple(sorted(revisions - parents))
