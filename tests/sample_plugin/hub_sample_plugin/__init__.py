"""A third-party hub plugin, packaged and installed like any other (see docs/plugins.md).

It adds a task kind (``sample.greet``), a trigger type (``sample.ticker``), a command
(``hub sample``), an API route (``GET /v1/sample/kinds``) and a table with its Alembic
migrations (``sample_greetings``, history ``sample``). Nothing here is imported until
used: ``register`` only names things.
"""

from __future__ import annotations

from typing import Any


def register(hub: Any) -> None:
    hub.task_kind("sample.greet", "hub_sample_plugin.tasks:Greet")
    hub.trigger_type("sample.ticker", "hub_sample_plugin.ticker:Ticker")
    hub.command("sample", "hub_sample_plugin.cli:sample")
    hub.router("hub_sample_plugin.api:router")
    hub.tables("hub_sample_plugin.tables")
    hub.migrations("hub_sample_plugin:migrations")
