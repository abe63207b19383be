"""MQTT: the ``mqtt`` trigger (a persistent QoS 1 session) and the ``mqtt.publish`` task kind.

Importing this package is cheap: the client library loads when a trigger runs or the task is used.
"""

from __future__ import annotations

from hub.core.plugins import PluginAPI


def register(hub: PluginAPI) -> None:
    """The mqtt connector's contributions (entry point ``hub.plugins``)."""
    hub.trigger_type("mqtt", "connectors.mqtt.trigger:MqttTrigger")
    hub.task_kind("mqtt.publish", "connectors.mqtt.tasks:Publish")
    hub.tables("connectors.bus.tables")  # the publish records, shared by the four buses
    hub.migrations("connectors.bus:migrations", name="bus")
