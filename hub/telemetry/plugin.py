"""Built-in plugin: the hub's own span store, the trace API and ``hub trace``."""

from __future__ import annotations

from hub.core.plugins import PluginAPI


def register(hub: PluginAPI) -> None:
    hub.tables("hub.telemetry.tables")
    hub.migrations("hub.telemetry:migrations")
    hub.router("hub.api.traces:router")
    hub.command("trace", "hub.telemetry.cli:trace")
    hub.settings("telemetry", "hub.telemetry.settings:TelemetrySettings")
