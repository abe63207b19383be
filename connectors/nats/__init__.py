"""NATS JetStream: the ``nats`` trigger (a durable pull consumer) and the ``nats.publish`` task kind.

Importing this package is cheap: the client library loads when a trigger runs or the task is used.
"""

from __future__ import annotations

from hub.core.plugins import PluginAPI


def register(hub: PluginAPI) -> None:
    """The nats connector's contributions (entry point ``hub.plugins``)."""
    hub.trigger_type("nats", "connectors.nats.trigger:NatsTrigger")
    hub.task_kind("nats.publish", "connectors.nats.tasks:Publish")
    hub.tables("connectors.bus.tables")  # the publish records, shared by the four buses
    hub.migrations("connectors.bus:migrations", name="bus")
