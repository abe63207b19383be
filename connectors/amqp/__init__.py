"""AMQP 0-9-1 (RabbitMQ): the ``amqp`` trigger (a queue consumer) and the ``amqp.publish`` task kind.

Importing this package is cheap; aio-pika loads when a trigger runs or the task is used.
"""

from __future__ import annotations

from typing import Any


def register(registry: Any) -> None:
    from connectors.amqp.tasks import Publish

    registry.add(Publish)
