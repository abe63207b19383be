"""Create a feature's tables when missing, once per engine (a store opened before the feature loaded)."""

from __future__ import annotations

import weakref
from typing import Any

from sqlalchemy import Table, inspect
from sqlalchemy.exc import DBAPIError

_READY: weakref.WeakKeyDictionary[Any, set[str]] = weakref.WeakKeyDictionary()


def ensure_tables(engine: Any, *tables: Table) -> None:
    """Create these tables when missing (once per engine).

    The store's ``migrate()`` creates them too when this module was imported before it ran; this
    makes a feature (the LLM layer, the prompt registry, evals) work on a store that was opened
    before the feature was loaded.
    """
    ready = _READY.setdefault(engine, set())
    for table in tables:
        if table.name in ready:
            continue
        try:
            table.create(engine, checkfirst=True)
        except DBAPIError:
            # another process created it between the check and the create
            if not inspect(engine).has_table(table.name):
                raise
        ready.add(table.name)
