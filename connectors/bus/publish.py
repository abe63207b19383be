"""What the publish tasks (kafka.produce, nats.publish, amqp.publish, mqtt.publish) share.

Every one waits for the broker's acknowledgement and returns it as the step's output. A step
run again after a crash (its output was not checkpointed) must not publish twice: the
acknowledgement is recorded under the step's idempotency key once the broker gave it, and a
re-run answers that record instead of publishing again. Where the bus deduplicates by itself
(NATS ``Nats-Msg-Id``) the task also hands it the key; every message carries the key in a
header (``hub-idempotency-key``) so that consumers can deduplicate what a crash between the
broker's ack and the record could still repeat.
"""

from __future__ import annotations

import json
import time
from typing import Any

from pydantic import Field
from sqlalchemy import insert, select
from sqlalchemy.exc import IntegrityError

from connectors.bus.tables import BUS_PUBLISHES as PUBLISHES
from hub.core.tasks import Params, TaskContext

KEY_HEADER = "hub-idempotency-key"


class MessageParams(Params):
    """The message part of every publish task."""

    body: Any = Field(description="The payload: text as is, bytes as is, anything else as JSON.")
    headers: dict[str, Any] = Field(default_factory=dict, description="Message headers (values sent as text).")


def encode_body(body: Any) -> bytes:
    """Text as UTF-8, anything else (dicts, lists, numbers, booleans, null) as JSON."""
    if isinstance(body, bytes):
        return body
    if isinstance(body, str):
        return body.encode()
    return json.dumps(body, separators=(",", ":"), default=str).encode()


def earlier_ack(ctx: TaskContext) -> dict[str, Any] | None:
    """The broker's ack of this step's message when an earlier run of the step published it."""
    if ctx.store is None:
        return None
    with ctx.store.engine.connect() as conn:
        row = conn.execute(select(PUBLISHES.c.ack).where(PUBLISHES.c.idempotency_key == ctx.idempotency_key)).first()
    if row is None:
        return None
    ctx.log(f"{ctx.task_id}: an earlier run of this step already published it; not publishing again")
    return dict(row[0])


def remember_ack(ctx: TaskContext, bus: str, destination: str, ack: dict[str, Any]) -> dict[str, Any]:
    """Record the broker's ack of this step's message; returns it (the step's output)."""
    if ctx.store is None:
        return ack
    try:
        with ctx.store.engine.begin() as conn:
            conn.execute(insert(PUBLISHES).values(
                idempotency_key=ctx.idempotency_key, execution_id=ctx.execution_id, bus=bus,
                destination=destination, ack=ack, created_at=time.time(),
            ))
    except IntegrityError:
        pass  # a concurrent run of the same step recorded it first
    return ack
