"""Built-in plugin: schedule, webhook, redis_stream, file and flow triggers, and their service."""

from __future__ import annotations

from hub.core.plugins import PluginAPI

TYPES = {"schedule": "Schedule", "webhook": "Webhook", "redis_stream": "RedisStream", "file": "File",
         "flow": "FlowDone"}


def register(hub: PluginAPI) -> None:
    for name, cls in TYPES.items():
        hub.trigger_type(name, f"hub.triggers.types:{cls}")
    hub.tables("hub.triggers.tables")
    hub.migrations("hub.triggers:migrations")
    hub.router("hub.api.triggers:router")
    hub.lifespan("hub.triggers.service:start")
