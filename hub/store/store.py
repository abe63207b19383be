"""The store: every read and write of flows, executions, step runs, logs and blobs.

One class, two databases: SQLite (WAL, the embedded default) and PostgreSQL, through the same
SQLAlchemy Core statements. Writes are short transactions committed before the engine moves on,
which is what makes an execution resumable.

:class:`Store` is made of one part per concern, each in its own module: flow revisions
(:mod:`hub.store.flows`), executions (:mod:`hub.store.executions`), step runs and log lines
(:mod:`hub.store.steps`) and blobs (:mod:`hub.store.blobs`), over the tables and prebuilt
statements of :mod:`hub.store.statements`. The names callers use are all importable from here.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from hub.store import migrations
from hub.store.engines import open_engines
from hub.store.executions import ExecutionStore
from hub.store.flows import FlowStore
from hub.store.ids import new_id, owner_is_alive, process_owner, this_owner
from hub.store.statements import (
    BLOBS,
    EXECUTIONS,
    FLOWS,
    LOGS,
    STEPS,
    AlongWrite,
    Conflict,
    EndWrite,
    param_mark,
    set_step_contexts,
)
from hub.store.steps import StepStore

if TYPE_CHECKING:
    from hub.settings import HubSettings

log = logging.getLogger(__name__)

__all__ = [
    "BLOBS", "EXECUTIONS", "FLOWS", "LOGS", "STEPS", "AlongWrite", "Conflict", "EndWrite", "Store", "new_id",
    "owner_is_alive", "param_mark", "process_owner", "set_step_contexts", "this_owner",
]


class Store(FlowStore, ExecutionStore, StepStore):
    """Persistence for the engine and the API. Create with :meth:`open`."""

    @classmethod
    def open(cls, url: str, inline_limit: int = 64 * 1024, migrate: bool = True) -> Store:
        engine, auto = open_engines(url)
        store = cls(engine, inline_limit, auto)
        if migrate:
            store.migrate()
        return store

    @classmethod
    def from_settings(cls, settings: HubSettings) -> Store:
        """The store the settings name (``HUB_DATABASE_URL``, else SQLite under ``HUB_HOME``)."""
        return cls.open(settings.resolved_database_url(), settings.inline_output_limit)

    def migrate(self, force: bool = False) -> list[str]:
        """Bring the schema to every history's head (:mod:`hub.store.migrations`): one query when
        it is there already (unless ``force``), else one locked transaction."""
        done = migrations.migrate(self.engine, force=force)
        for line in done:
            log.info("store: %s", line)
        return done

