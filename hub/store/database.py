"""A store's database, open and at its schema's head, with the full :class:`~hub.store.store.Store`
on it made only when something asks for more than the engine.

``hub eval`` of a prompt reads and writes prompt, call and eval tables through the engine alone;
opening a :class:`Database` instead of a Store spares it importing the statement modules and table
classes of executions, steps and flows (a flow target, or a task reading a blob, still gets them).
"""

from __future__ import annotations

import logging
import threading
from typing import TYPE_CHECKING, Any

from hub.store import migrations
from hub.store.base import StoreBase
from hub.store.engines import open_engines

if TYPE_CHECKING:

    from hub.settings import HubSettings
    from hub.store.store import Store

log = logging.getLogger(__name__)


class Database(StoreBase):
    """The engines of a store, migrated on open; a :class:`hub.core.tasks.TaskStore`, and on
    SQLite a model call's record goes through its writer connection as through a Store's."""

    def __init__(self, url: str, inline_limit: int = 64 * 1024):
        engine, auto = open_engines(url)
        super().__init__(engine, inline_limit, auto)
        self._store: Store | None = None
        self._lock = threading.Lock()
        for line in migrations.migrate(self.engine):
            log.info("store: %s", line)

    @classmethod
    def from_settings(cls, settings: HubSettings) -> Database:
        """The database the settings name (``HUB_DATABASE_URL``, else SQLite under ``HUB_HOME``)."""
        return cls(settings.resolved_database_url(), settings.inline_output_limit)

    def store(self) -> Store:
        """The full store on these engines, made (and its modules imported) on first use."""
        with self._lock:
            if self._store is None:
                from hub.store.store import Store

                self._store = Store(self.engine, self.inline_limit, self.auto)
                self._store.writer_lock = self.writer_lock  # one order for this process's writes on SQLite
            return self._store

    # -- what a task may use (hub.core.tasks.TaskStore) ------------------------------------------

    def put_blob(self, data: bytes, execution_id: str | None = None, content_type: str = "application/json") -> str:
        return self.store().put_blob(data, execution_id, content_type)

    def get_blob(self, blob_id: str) -> bytes:
        return self.store().get_blob(blob_id)

    def get_execution(self, execution_id: str) -> dict[str, Any]:
        return self.store().get_execution(execution_id)

    def get_flow_source(self, namespace: str, flow_id: str, revision: int | None = None) -> tuple[int, str]:
        return self.store().get_flow_source(namespace, flow_id, revision)

    def close(self) -> None:
        """Both writer connections (this one's and the full store's) given back, then the pools disposed."""
        if self._store is not None:
            self._store.close_writer()
        super().close()
