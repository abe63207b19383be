"""Kafka: the ``kafka`` trigger (a consumer group) and the ``kafka.produce`` task kind.

Importing this package is cheap: the client library loads when a trigger runs or the task is used.
"""

from __future__ import annotations

from hub.core.plugins import PluginAPI


def register(hub: PluginAPI) -> None:
    """The kafka connector's contributions (entry point ``hub.plugins``)."""
    hub.trigger_type("kafka", "connectors.kafka.trigger:KafkaTrigger")
    hub.task_kind("kafka.produce", "connectors.kafka.tasks:Produce")
    hub.tables("connectors.bus.tables")  # the publish records, shared by the four buses
    hub.migrations("connectors.bus:migrations", name="bus")
