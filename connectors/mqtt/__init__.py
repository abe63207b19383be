"""MQTT: the ``mqtt`` trigger (a persistent QoS 1 session) and the ``mqtt.publish`` task kind.

Importing this package is cheap; aiomqtt loads when a trigger runs or the task is used.
"""

from __future__ import annotations

from typing import Any


def register(registry: Any) -> None:
    from connectors.mqtt.tasks import Publish

    registry.add(Publish)
