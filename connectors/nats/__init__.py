"""NATS JetStream: the ``nats`` trigger (a durable pull consumer) and the ``nats.publish`` task kind.

Importing this package is cheap; nats-py loads when a trigger runs or the task is used.
"""

from __future__ import annotations

from typing import Any


def register(registry: Any) -> None:
    from connectors.nats.tasks import Publish

    registry.add(Publish)
