"""AMQP 0-9-1 (RabbitMQ): the ``amqp`` trigger (a queue consumer) and the ``amqp.publish`` task kind.

Importing this package is cheap: the client library loads when a trigger runs or the task is used.
"""

from __future__ import annotations

from hub.core.plugins import PluginAPI


def register(hub: PluginAPI) -> None:
    """The amqp connector's contributions (entry point ``hub.plugins``)."""
    hub.trigger_type("amqp", "connectors.amqp.trigger:AmqpTrigger")
    hub.task_kind("amqp.publish", "connectors.amqp.tasks:Publish")
    hub.tables("connectors.bus.tables")  # the publish records, shared by the four buses
    hub.migrations("connectors.bus:migrations", name="bus")
