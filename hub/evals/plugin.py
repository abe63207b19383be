"""Built-in plugin: prompt evals (``hub eval``), their runs and the eval API."""

from __future__ import annotations

from hub.core.plugins import PluginAPI


def register(hub: PluginAPI) -> None:
    hub.tables("hub.evals.tables")
    hub.migrations("hub.evals:migrations")
    hub.router("hub.api.evals:router")
    hub.command("eval", "hub.evals.cli:eval_group")
    hub.service("online_scoring", "hub.evals.online:install")  # scores sampled production calls
