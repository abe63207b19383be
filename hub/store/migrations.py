"""Schema migrations (Alembic): a newer hub opens a database an older one wrote.

The schema is made of version histories (:mod:`hub.store.branches`): the store's own tables
(``hub/store/versions``) and one per plugin that declares ``hub.migrations(...)``, each an Alembic
version location with its own version table (``alembic_version_<name>``), so a plugin ships, adds
and drops its history without touching anyone else's.

- A database already at every head costs one query to open (no Alembic import, no table module).
- A fresh database gets every table at once from the table modules (``create_all``) and each
  history is stamped at its head, as Alembic's cookbook advises; ``tests/store/test_migrations.py`` checks that
  running the scripts from nothing gives the same schema.
- An older database is moved forward by each history's scripts, in one transaction under a lock
  (PostgreSQL: an advisory lock; SQLite: ``BEGIN IMMEDIATE``), so processes starting together
  migrate once. A database of the hand-written migrations (a ``schema_version`` table, versions
  1-6; hub 0.1 made version 5) is adopted: the first script of each history brings its tables to the 0.1
  schema whatever version made them, creating those that are missing.

Run by :meth:`hub.store.store.Store.open` (``hub serve``, ``hub worker``, ``hub run``) and by
``hub db upgrade``. The one-query check covers the plugins loaded so far: a process that has not
read the entry points (the hub used as a library, running core tasks) does not import every
connector to open its database; the commands read every plugin before they open it.
"""

from __future__ import annotations

import importlib
import logging
from collections.abc import Callable
from functools import lru_cache
from typing import TYPE_CHECKING, Any

from sqlalchemy import Connection, Engine, MetaData, Table, inspect, text
from sqlalchemy.exc import DBAPIError

from hub.store.branches import CORE, Branch, SchemaError, heads, plugin_branches, unmanaged_table_modules

if TYPE_CHECKING:
    from alembic.script import ScriptDirectory

log = logging.getLogger(__name__)
if logging.getLogger("alembic.runtime.migration").level == logging.NOTSET:
    # "Context impl SQLiteImpl." on every start that migrates: the store logs what was done instead
    logging.getLogger("alembic.runtime.migration").setLevel(logging.WARNING)

LEGACY_TABLE = "schema_version"
LEGACY_LATEST = 6
"""The last version of the hand-written migrations. Every history's first script brings a database
of versions 1-5 (hub 0.1 made version 5) to the 0.1 schema; version 6 (approval edit revisions,
after 0.1) is the approvals history's second script, which adds only what is missing."""
PG_LOCK = 7272001  # the key the hand-written migrations locked too: an old and a new hub never migrate at once

__all__ = ["SchemaError", "migrate", "upgrade", "upgrade_branch", "is_current", "database_heads", "expected_heads", "script"]


def migrate(engine: Engine, *, force: bool = False) -> list[str]:
    """Bring the database to every history's head; returns what was done (for the log). Without
    ``force``, a database already there costs one query."""
    # the plugins loaded so far: a process that has not read the entry points yet (the hub used
    # as a library, running core tasks) does not import every connector to open its database
    if not force and is_current(engine, plugin_branches(load=False)):
        return []
    branches = plugin_branches()
    with engine.begin() as conn:
        if conn.dialect.name == "postgresql":
            conn.exec_driver_sql(f"SELECT pg_advisory_xact_lock({PG_LOCK})")
        elif conn.dialect.name == "sqlite":
            conn.exec_driver_sql("BEGIN IMMEDIATE")  # the writer lock, held to the commit
        return upgrade(conn, branches)


def is_current(engine: Engine, branches: list[Branch]) -> bool:
    """Whether every history is at its head: one query (a missing version table says no)."""
    expected = {}
    for branch in branches:
        found = heads(branch)
        if found is None:
            return False
        expected[branch.version_table] = set(found)
    return database_heads(engine, list(expected)) == expected


def database_heads(bind: Engine | Connection, version_tables: list[str]) -> dict[str, set[str]] | None:
    """The revisions each version table holds, in one query; None when one of them is missing."""
    sql = " UNION ALL ".join(f"SELECT '{t}', version_num FROM {t}" for t in version_tables)
    found: dict[str, set[str]] = {t: set() for t in version_tables}
    try:
        if isinstance(bind, Connection):
            with bind.begin_nested():
                rows = bind.exec_driver_sql(sql).all()
        else:
            with bind.connect() as conn:
                rows = conn.exec_driver_sql(sql).all()
    except DBAPIError:
        return None
    for table, revision in rows:
        found[table].add(revision)
    return found


def upgrade(conn: Connection, branches: list[Branch]) -> list[str]:
    """Move every history to its head, in the caller's transaction (which holds the lock)."""
    present = set(inspect(conn).get_table_names())
    done = _adopting(conn, present)
    if not done and "executions" not in present and CORE.version_table not in present:
        return _create(conn, branches)
    for branch in branches:
        done += upgrade_branch(conn, branch)
    return done + _create_unmanaged(conn, branches)


def _adopting(conn: Connection, present: set[str]) -> list[str]:
    """A database of the hand-written migrations: say so, or refuse one newer than they went."""
    if LEGACY_TABLE not in present or CORE.version_table in present:
        return []
    row = conn.execute(text(f"SELECT version FROM {LEGACY_TABLE} WHERE id = 1")).first()
    version = int(row[0]) if row else 1
    if version > LEGACY_LATEST:
        raise SchemaError(f"the database has schema version {version}, newer than this hub knows; upgrade hub")
    return [f"adopting a database of schema version {version} (hub 0.1's migrations) into Alembic"]


def _create(conn: Connection, branches: list[Branch]) -> list[str]:
    modules = _import_modules([m for b in branches for m in b.table_modules] + unmanaged_table_modules(branches))
    every = list(dict.fromkeys(t for m in modules for t in tables_of(m)))
    _add_referenced(every, every)
    by_metadata: dict[MetaData, list[Table]] = {}
    for table in every:
        by_metadata.setdefault(table.metadata, []).append(table)
    for metadata, tables in by_metadata.items():  # in each, ``create_all`` orders them by foreign key
        metadata.create_all(conn, tables=tables)
    for branch in branches:
        stamp(conn, branch, expected_heads(branch))
    return ["created the schema at " + ", ".join(f"{b.name} {'+'.join(expected_heads(b)) or '-'}" for b in branches)]


def expected_heads(branch: Branch) -> tuple[str, ...]:
    """The heads of a history: read from its scripts, or by Alembic when they are not plain."""
    found = heads(branch)
    return found if found is not None else tuple(sorted(script(branch).get_heads()))


def stamp(conn: Connection, branch: Branch, revisions: tuple[str, ...]) -> None:
    """Record that the database is at ``revisions`` of this history (its tables were just made),
    in a version table as Alembic makes it. Plain SQL: a fresh database stamps every history,
    and compiling a table's DDL each time would cost more than creating it."""
    table = branch.version_table
    conn.exec_driver_sql(f"CREATE TABLE IF NOT EXISTS {table} (version_num VARCHAR(32) NOT NULL, "
                         f"CONSTRAINT {table}_pkc PRIMARY KEY (version_num))")
    conn.exec_driver_sql(f"DELETE FROM {table}")
    if revisions:
        mark = "?" if conn.dialect.paramstyle == "qmark" else "%s"
        conn.exec_driver_sql(f"INSERT INTO {table} (version_num) VALUES ({mark})", [(r,) for r in revisions])


def upgrade_branch(conn: Connection, branch: Branch) -> list[str]:
    from alembic.config import Config
    from alembic.runtime.environment import EnvironmentContext
    from alembic.util.exc import CommandError

    scripts = script(branch)
    done: list[str] = []

    def steps(revision: Any, _context: Any) -> Any:
        return scripts._upgrade_revs("heads", revision)

    def applied(ctx: Any, step: Any, heads: Any, run_args: Any) -> None:
        done.append(f"{branch.name}: upgraded to {step.up_revision_id} ({(step.up_revision.doc or '').strip()})")

    try:
        with EnvironmentContext(Config(), scripts, fn=steps, destination_rev="heads") as env:
            env.configure(connection=conn, version_table=branch.version_table, on_version_apply=applied)
            with env.begin_transaction():
                env.run_migrations()
    except CommandError as exc:
        raise SchemaError(
            f"schema history {branch.name!r} (plugin {branch.plugin}): {exc}. A database a newer hub or "
            f"plugin upgraded needs that version here too"
        ) from exc
    except SchemaError:
        raise
    except Exception as exc:  # a script that fails: nothing of the migration is kept (one transaction)
        raise SchemaError(f"schema history {branch.name!r} (plugin {branch.plugin}) at {branch.location}: "
                          f"{type(exc).__name__}: {exc}") from exc
    return done


@lru_cache(maxsize=64)
def _script_directory(directory: str) -> ScriptDirectory:
    from alembic.script import ScriptDirectory

    return ScriptDirectory(directory, version_locations=[directory])


def script(branch: Branch) -> ScriptDirectory:
    """Alembic's view of a history's scripts (loaded once per process)."""
    return _script_directory(str(branch.directory))


def _create_unmanaged(conn: Connection, branches: list[Branch]) -> list[str]:
    """Tables of plugins without migrations: created when missing (never altered)."""
    modules = unmanaged_table_modules(branches)
    tables = [t for m in _import_modules(modules) for t in tables_of(m)]
    from hub.store.tables import METADATA

    _add_referenced(tables, [*METADATA.tables.values(), *tables])
    missing = [t for t in tables if not inspect(conn).has_table(t.name)]
    for table in missing:
        table.create(conn, checkfirst=True)
    return [f"created table {t.name} (a plugin without migrations)" for t in missing]


def _add_referenced(tables: list[Table], known: list[Table]) -> None:
    """Copy into each table's metadata the ``known`` tables its foreign keys name from another
    one: a plugin's SQLModel table may reference ``executions.id``, and the hub's tables are Core
    tables of their own metadata, which the DDL of the plugin's table must find."""
    by_name = {t.name: t for t in known}
    for table in tables:
        for key in table.foreign_keys:
            name = key.target_fullname.rpartition(".")[0]
            if name not in table.metadata.tables and name in by_name:
                by_name[name].to_metadata(table.metadata)


def tables_of(module: Any) -> list[Table]:
    """The tables a ``hub.tables`` module declares: SQLAlchemy ``Table`` objects (the hub's own
    modules: a worker then never imports the ORM or SQLModel) or SQLModel models, defined there
    or imported into it (a package whose ``__init__`` imports its models)."""
    found = []
    for value in vars(module).values():
        if isinstance(value, Table):
            found.append(value)
        elif isinstance(value, type):
            table = getattr(value, "__table__", None)
            if isinstance(table, Table):
                found.append(table)
    return found


def _import_modules(names: list[str], importer: Callable[[str], Any] = importlib.import_module) -> list[Any]:
    modules = []
    for name in dict.fromkeys(names):
        try:
            modules.append(importer(name))
        except Exception as exc:  # a broken plugin's tables: its plugin is already reported
            log.error("tables of %s not created: %s: %s", name, type(exc).__name__, exc)
    return modules


def describe(engine: Engine) -> list[dict[str, Any]]:
    """Where the database stands in each history (``hub db current``): its revisions (None when
    its version table is missing), the heads of the scripts, and a one-word state."""
    branches = plugin_branches()
    with engine.connect() as conn:
        present = set(inspect(conn).get_table_names())
    rows = []
    for branch in branches:
        found = None
        if branch.version_table in present:
            found = (database_heads(engine, [branch.version_table]) or {}).get(branch.version_table, set())
        expected = expected_heads(branch)
        known = {s.revision for s in script(branch).walk_revisions()} if found and found - set(expected) else set()
        state = ("missing" if found is None else "current" if found == set(expected)
                 else "newer" if found - known - set(expected) else "behind")
        rows.append({"history": branch.name, "plugin": branch.plugin, "location": branch.location,
                     "database": sorted(found) if found is not None else None, "heads": list(expected), "state": state})
    return rows


def history(branch: Branch) -> list[dict[str, Any]]:
    """A history's revisions, newest first (``hub db history``)."""
    return [{"revision": s.revision, "down_revision": s.down_revision, "doc": (s.doc or "").strip()}
            for s in script(branch).walk_revisions()]
