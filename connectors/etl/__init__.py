"""ETL tasks: ``etl.extract``, ``etl.transform`` and ``etl.load``.

Rows move in batches and pass between steps as dataset artifacts (see :mod:`connectors.etl.dataset`).
"""

from __future__ import annotations

from hub.core.plugins import PluginAPI


def register(hub: PluginAPI) -> None:
    """The ETL connector's contributions (entry point ``hub.plugins``)."""
    hub.task_kind("etl.extract", "connectors.etl.extract:Extract")
    hub.task_kind("etl.transform", "connectors.etl.transform:Transform")
    hub.task_kind("etl.load", "connectors.etl.load:Load")
