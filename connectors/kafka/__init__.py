"""Kafka: the ``kafka`` trigger (a consumer group) and the ``kafka.produce`` task kind.

Importing this package is cheap; aiokafka loads when a trigger runs or the task is used.
"""

from __future__ import annotations

from typing import Any


def register(registry: Any) -> None:
    from connectors.kafka.tasks import Produce

    registry.add(Produce)
